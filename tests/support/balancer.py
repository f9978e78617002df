"""A plain TCP load balancer for tests: "any number of instances behind a plain load
balancer, no sticky sessions".

Each new connection goes to the next backend in round-robin order; a backend whose connect
fails (an instance that was killed) is skipped. Bytes are copied both ways until either side
closes, then both are closed: the balancer knows nothing of HTTP or WebSocket, so a stock
y-websocket client whose instance dies sees its socket close and reconnects through the
balancer to a live one by itself.

Example::

    async with Balancer([a.port, b.port]) as lb:
        await node.connect("c", url=lb.ws_url, room=note_id, token=token)
        lb.active  # open connections per backend port
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
from collections.abc import Sequence
from types import TracebackType

__all__ = ["Balancer"]

CHUNK = 64 * 1024


class Balancer:
    """Round-robin TCP forwarding from one free port on `host` to the backend ports."""

    def __init__(
        self, backends: Sequence[int], *, host: str = "127.0.0.1", connect_timeout: float = 2.0
    ) -> None:
        #: backend ports, in round-robin order; may be changed while running
        self.backends = list(backends)
        self.host = host
        self.connect_timeout = connect_timeout
        #: open connections per backend port
        self.active: collections.Counter[int] = collections.Counter()
        #: the backend port of every connection forwarded so far, in accept order
        self.routed: list[int] = []
        #: connections refused (no backend accepted them, or the balancer was paused)
        self.refused = 0
        #: while True, new connections are closed at once; open ones go on
        self.paused = False
        self._next = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the balancer is not started")
        return int(self._server.sockets[0].getsockname()[1])

    @property
    def http_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def ws_url(self) -> str:
        """The base URL a stock `WebsocketProvider` takes (the note id is appended)."""
        return f"ws://{self.host}:{self.port}/ws/notes"

    async def start(self) -> Balancer:
        self._server = await asyncio.start_server(self._accepted, self.host, 0)
        return self

    def pause(self) -> None:
        """Refuse new connections (clients retry with their backoff) until `resume`."""
        self.paused = True

    def resume(self) -> None:
        self.paused = False

    async def close(self) -> None:
        """Stop listening and close every forwarded connection."""
        if self._server is not None:
            self._server.close()
        for writer in list(self._writers):
            writer.close()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 5.0)
            self._server = None

    async def __aenter__(self) -> Balancer:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def _accepted(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.get_running_loop().create_task(self._forward(reader, writer))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _open_backend(
        self,
    ) -> tuple[int, asyncio.StreamReader, asyncio.StreamWriter] | None:
        """Connect to the next backend that accepts, in round-robin order."""
        ports = list(self.backends)
        for step in range(len(ports)):
            index = (self._next + step) % len(ports)
            try:
                reader, writer = await asyncio.wait_for(
                    asyncio.open_connection(self.host, ports[index]), self.connect_timeout
                )
            except (OSError, TimeoutError):
                continue
            self._next = (index + 1) % len(ports)
            return ports[index], reader, writer
        return None

    async def _forward(
        self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter
    ) -> None:
        self._writers.add(client_writer)
        try:
            backend = None if self.paused else await self._open_backend()
            if backend is None:
                self.refused += 1
                return
            port, backend_reader, backend_writer = backend
            self._writers.add(backend_writer)
            self.routed.append(port)
            self.active[port] += 1
            try:
                await _copy_both_ways(client_reader, client_writer, backend_reader, backend_writer)
            finally:
                self.active[port] -= 1
                await _close(backend_writer)
                self._writers.discard(backend_writer)
        finally:
            await _close(client_writer)
            self._writers.discard(client_writer)


async def _copy_both_ways(
    a_reader: asyncio.StreamReader,
    a_writer: asyncio.StreamWriter,
    b_reader: asyncio.StreamReader,
    b_writer: asyncio.StreamWriter,
) -> None:
    """Copy until either direction ends (EOF or error); the caller then closes both."""
    loop = asyncio.get_running_loop()
    pipes = {
        loop.create_task(_copy(a_reader, b_writer)),
        loop.create_task(_copy(b_reader, a_writer)),
    }
    try:
        await asyncio.wait(pipes, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for pipe in pipes:
            pipe.cancel()
        for pipe in pipes:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await pipe


async def _copy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError, OSError):
        while data := await reader.read(CHUNK):
            writer.write(data)
            await writer.drain()


async def _close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(ConnectionError, OSError, TimeoutError):
        await asyncio.wait_for(writer.wait_closed(), 2.0)
