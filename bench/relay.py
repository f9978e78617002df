"""The bare relay: the ceiling of syncd's stack, for the load benchmark (bench/README.md).

Starlette + uvicorn (`websockets-sansio`, uvloop, httptools: syncd's own configuration),
reading raw ASGI messages as syncd does. Each binary frame a client sends is relayed,
byte for byte, to every other connection of the same room (`/ws/notes/{room}`), one
awaited send after the other: no CRDT, no storage, no merging, no auth.

Handshake: the relay holds no document, so it answers a sync step 1 itself with an empty
sync step 2 to its sender only, and does not relay step 1 (other clients would answer it
with their whole state). A client therefore sees itself synced at once; the load generator
connects every client of a room before anyone types, so nobody misses an update.
Everything else (updates, step 2, awareness) goes to everyone else in the room.

    python bench/relay.py --port 3003
"""

from __future__ import annotations

import argparse
import importlib.util
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute

Message = MutableMapping[str, Any]
Send = Callable[[Message], Awaitable[None]]
Receive = Callable[[], Awaitable[Message]]

#: messageSync, syncStep2, an empty update (var-uint8-array of [0, 0])
EMPTY_STEP2 = bytes([0, 1, 2, 0, 0])


class Relay:
    """Rooms of connections (their ASGI `send` callables); relays every frame to the rest."""

    def __init__(self) -> None:
        self.rooms: dict[str, set[Send]] = {}

    async def __call__(self, scope: MutableMapping[str, Any], receive: Receive, send: Send) -> None:
        if (await receive())["type"] != "websocket.connect":
            return
        await send({"type": "websocket.accept"})
        room_id: str = scope["path_params"]["room"]
        peers = self.rooms.setdefault(room_id, set())
        peers.add(send)
        try:
            await self._pump(peers, receive, send)
        finally:
            peers.discard(send)
            if not peers:
                self.rooms.pop(room_id, None)

    async def _pump(self, peers: set[Send], receive: Receive, send: Send) -> None:
        while True:
            event = await receive()
            if event["type"] == "websocket.disconnect":
                return
            data = event.get("bytes")
            if not data:
                continue
            if data[0] == 0 and len(data) > 1 and data[1] == 0:
                await send({"type": "websocket.send", "bytes": EMPTY_STEP2})
                continue
            outgoing = {"type": "websocket.send", "bytes": data}
            for other in list(peers):  # a copy: the set changes while a send waits
                if other is send:
                    continue
                try:
                    await other(outgoing)
                except Exception:  # that peer is gone; its own task cleans up
                    peers.discard(other)


def create_app() -> Starlette:
    """The relay as an ASGI app: one WebSocket route, nothing else."""
    return Starlette(routes=[WebSocketRoute("/ws/notes/{room:path}", Relay())])


def main() -> None:
    """Serve the relay with syncd's uvicorn settings."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=3003)
    args = parser.parse_args()
    uvicorn.run(
        create_app(),
        host=args.host,
        port=args.port,
        log_level="warning",
        ws="websockets-sansio",
        ws_per_message_deflate=False,
        loop="uvloop" if importlib.util.find_spec("uvloop") else "asyncio",
        http="httptools" if importlib.util.find_spec("httptools") else "h11",
        lifespan="off",
        # uvicorn otherwise waits for every open WebSocket before it exits on SIGTERM
        timeout_graceful_shutdown=5,
    )


if __name__ == "__main__":
    main()
