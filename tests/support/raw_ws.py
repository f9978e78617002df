"""A raw y-websocket connection from Python, for sending what no stock client would."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from syncd.protocol import Message, parse_message


async def open_raw(
    url: str, *, token: str | None = None, headers: Sequence[tuple[str, str]] = ()
) -> ClientConnection:
    """Open a WebSocket to `url` (token as `?token=`), without the Yjs handshake."""
    target = f"{url}?token={token}" if token else url
    return await connect(target, additional_headers=list(headers), max_size=None, open_timeout=10)


async def expect_close(ws: ClientConnection, timeout: float = 10.0) -> tuple[int, str]:
    """Read until the server closes; return its close code and reason."""
    async with asyncio.timeout(timeout):
        try:
            while True:
                await ws.recv()
        except ConnectionClosed as closed:
            received = closed.rcvd
            if received is None:
                return 1006, ""
            return received.code, received.reason


async def recv_message(ws: ClientConnection, timeout: float = 10.0) -> Message:
    async with asyncio.timeout(timeout):
        frame = await ws.recv()
    assert isinstance(frame, bytes), frame
    return parse_message(frame)
