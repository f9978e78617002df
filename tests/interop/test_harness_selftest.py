"""Self-test of the Node Yjs client harness against a reference y-websocket server.

The reference is pycrdt-websocket (``pycrdt.websocket``: WebsocketServer behind its
ASGIServer) under uvicorn, in-process on a free port. It serves every path as a
room, so ``WebsocketProvider('ws://127.0.0.1:PORT/ws/notes', room, doc)`` (which
connects to ``/ws/notes/{room}``) works just as against syncd.

Needs the Node clients: ``npm ci --prefix tests/node``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qs

import pytest
import socketio
import uvicorn
from pycrdt import write_message
from pycrdt.websocket import ASGIServer, WebsocketServer, exception_logger

from tests.support.yjs_node import NodeYjs, NodeYjsError

pytestmark = pytest.mark.interop

log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


@contextlib.asynccontextmanager
async def serve_asgi(app: ASGIApp) -> AsyncIterator[int]:
    """Serve an ASGI app with uvicorn in this event loop; yield its port."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))  # the kernel picks a free port; uvicorn serves this socket
    server = uvicorn.Server(
        uvicorn.Config(app, log_level="warning", lifespan="off", timeout_graceful_shutdown=5)
    )
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        async with asyncio.timeout(10):
            while not server.started:  # uvicorn offers no startup event to await
                if task.done():
                    task.result()  # raises the startup error
                    raise RuntimeError("uvicorn stopped during startup")
                await asyncio.sleep(0.01)
        yield sock.getsockname()[1]
    finally:
        server.should_exit = True
        with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError):
            await asyncio.wait_for(task, 10)
        sock.close()


class ScriptedRooms:
    """Wraps the reference server; a few room names make it misbehave on purpose.

    - ``close-CODE``: accept, then close with CODE; the reason echoes what the client
      sent (``auth=<Authorization header> token=<query token>``).
    - ``reject``: refuse the WebSocket handshake (HTTP 403, before accept).
    - ``deny-*``: send the y-protocols auth message "permission denied" right after
      accepting, then serve the room normally.

    It also starts each room before handing a connection to pycrdt-websocket, one at
    a time: pycrdt-websocket 0.16 starts a new room once per concurrent first
    connection, and all but the first of those connections then hang forever.
    """

    def __init__(self, inner: ASGIServer, ws_server: WebsocketServer) -> None:
        self.inner = inner
        self.ws_server = ws_server
        self.room_start_lock = asyncio.Lock()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "websocket":
            return await self.inner(scope, receive, send)
        room = scope["path"].rsplit("/", 1)[-1]
        if room.startswith("close-"):
            await receive()  # websocket.connect
            await send({"type": "websocket.accept"})
            headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
            query = parse_qs(scope["query_string"].decode())
            reason = f"auth={headers.get('authorization')} token={query.get('token', [None])[0]}"
            code = int(room.removeprefix("close-"))
            await send({"type": "websocket.close", "code": code, "reason": reason})
            return None
        if room == "reject":
            await receive()
            await send({"type": "websocket.close", "code": 4403})
            return None
        async with self.room_start_lock:
            await self.ws_server.get_room(scope["path"])
        if room.startswith("deny-"):

            async def send_then_deny(message: Message) -> None:
                await send(message)
                if message["type"] == "websocket.accept":
                    auth = bytes([2, 0]) + write_message(b"permission denied")
                    await send({"type": "websocket.send", "bytes": auth})

            return await self.inner(scope, receive, send_then_deny)
        return await self.inner(scope, receive, send)


@pytest.fixture
async def ref_server() -> AsyncIterator[str]:
    """pycrdt-websocket under uvicorn; yields the provider base URL ``ws://.../ws/notes``."""
    ws_server = WebsocketServer(exception_handler=exception_logger, log=log)
    ws_task = asyncio.create_task(ws_server.start())
    await asyncio.wait_for(ws_server.started.wait(), 10)
    try:
        async with serve_asgi(ScriptedRooms(ASGIServer(ws_server), ws_server)) as port:
            yield f"ws://127.0.0.1:{port}/ws/notes"
    finally:
        with contextlib.suppress(RuntimeError, asyncio.TimeoutError):
            await asyncio.wait_for(ws_server.stop(), 10)
        ws_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await ws_task


@pytest.fixture
async def node() -> AsyncIterator[NodeYjs]:
    async with NodeYjs() as n:
        yield n


async def test_two_clients_converge_on_text(ref_server: str, node: NodeYjs) -> None:
    a = await node.connect("a", url=ref_server, room="room1", wait_synced=True)
    b = await node.connect("b", url=ref_server, room="room1", wait_synced=True)

    await a.insert("hello")
    assert await b.wait_text(equals="hello") == "hello"

    # concurrent edits from both sides converge to the same string
    await asyncio.gather(a.insert(" world"), b.insert("> ", 0))
    final = await a.wait_text(min_length=len("> hello world"))
    await b.wait_text(equals=final)
    assert sorted(final) == sorted("> hello world")

    # typing character by character (one update per keystroke) and deleting
    await b.type("!!!")
    await a.wait_text(equals=final + "!!!")
    await a.delete(0, 2)
    assert await b.wait_text(equals=final[2:] + "!!!") == final[2:] + "!!!"
    assert await a.text() == await b.text()


async def test_late_joiner_gets_full_state(ref_server: str, node: NodeYjs) -> None:
    a = await node.connect("a", url=ref_server, room="late")
    await a.wait_synced()
    await a.type("typed before anyone else came")
    await a.insert("second field", field="other")

    late = await node.connect("late", url=ref_server, room="late", wait_synced=True)
    # synced only means the server's state at handshake time arrived; a's last
    # updates may still have been in flight then, so wait for the content
    await late.wait_text(equals="typed before anyone else came")
    await late.wait_text(field="other", equals="second field")
    assert await late.state_vector() == await a.state_vector()


async def test_prosemirror_fragment_roundtrip(ref_server: str, node: NodeYjs) -> None:
    a = await node.connect("a", url=ref_server, room="pm", wait_synced=True)
    b = await node.connect("b", url=ref_server, room="pm", wait_synced=True)
    doc = {
        "type": "doc",
        "content": [
            {
                "type": "heading",
                "attrs": {"level": 1},
                "content": [{"type": "text", "text": "Call"}],
            },
            {
                "type": "paragraph",
                "content": [
                    {"type": "text", "text": "Ping "},
                    {"type": "mention", "attrs": {"id": "u-42", "label": "Ada"}},
                    {"type": "text", "text": " about it", "marks": [{"type": "strong"}]},
                ],
            },
        ],
    }
    await a.pm_set(doc)
    assert await b.wait_pm(doc) == doc
    assert await b.pm_text() == "Call\nPing @Ada about it"

    # typing into the last paragraph from the other side, char by char
    await b.pm_type("!?")
    text = await a.wait_pm_text(equals="Call\nPing @Ada about it!?")
    assert text.endswith("!?")
    await a.pm_insert_text("Next step", at="new_paragraph")
    await b.wait_pm_text(contains="\nNext step")
    assert await a.pm_get() == await b.pm_get()


async def test_awareness_is_relayed(ref_server: str, node: NodeYjs) -> None:
    a = await node.connect("a", url=ref_server, room="aw", wait_synced=True)
    b = await node.connect("b", url=ref_server, room="aw", wait_synced=True)

    await a.awareness_set({"user": {"name": "Ada", "color": "#f00"}})
    states = await b.wait_awareness(client_id=a.client_id, contains={"user": {"name": "Ada"}})
    assert states[a.client_id]["user"]["color"] == "#f00"

    await a.awareness_set_field("status", "editing")
    await b.wait_awareness(contains={"status": "editing", "user": {"name": "Ada"}})

    await a.pm_set(
        {
            "type": "doc",
            "content": [{"type": "paragraph", "content": [{"type": "text", "text": "abc"}]}],
        }
    )
    await a.pm_cursor(2, 3)
    states = await b.wait_awareness(client_id=a.client_id, contains={"cursor": {}})
    assert set(states[a.client_id]["cursor"]) == {"anchor", "head"}

    # a client that leaves is removed from the others' awareness
    await a.destroy()
    await b.wait_awareness(client_id=a.client_id, absent=True)


async def test_close_and_reconnect_events(ref_server: str, node: NodeYjs) -> None:
    a = await node.connect("a", url=ref_server, room="rc", wait_synced=True)
    await a.insert("x")
    await a.disconnect()
    await a.wait_status("disconnected")
    await a.reconnect()
    await a.wait_synced()
    assert (await a.info())["status"] == "connected"
    assert node.client_events("a", "status")


async def test_unreachable_server_reports_close(node: NodeYjs) -> None:
    with socket.socket() as s:  # a port with nothing listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    c = await node.connect(
        "c", url=f"ws://127.0.0.1:{port}/ws/notes", room="nothing", reconnect=False
    )
    code, _reason = await c.wait_closed(timeout=10)
    assert code == 1006
    info = await c.info()
    assert info["should_connect"] is False
    assert info["status"] == "disconnected"


async def test_errors_are_clear(ref_server: str, node: NodeYjs) -> None:
    a = await node.connect("a", url=ref_server, room="err", wait_synced=True)
    with pytest.raises(NodeYjsError, match=r"timed out after 200 ms.*current value: \"\""):
        await a.wait_text(equals="never", timeout=0.2)
    with pytest.raises(NodeYjsError, match="unknown client"):
        await node.call("text", "ghost")
    with pytest.raises(NodeYjsError, match="unknown command"):
        await node.call("no_such_command")
    with pytest.raises(NodeYjsError, match="already exists"):
        await node.connect("a", url=ref_server, room="err")


async def test_close_codes_reach_the_client(ref_server: str, node: NodeYjs) -> None:
    # 4400-4499: y-websocket v3 stops reconnecting on its own (its `closed` event)
    c = await node.connect(
        "c",
        url=ref_server,
        room="close-4403",
        token="tok-1",
        headers={"Authorization": "Bearer hdr-1"},
    )
    assert await c.wait_closed() == (4403, "auth=Bearer hdr-1 token=tok-1")
    await node.wait_event(lambda e: e["event"] == "terminal-close" and e["client"] == "c")
    assert (await c.info())["should_connect"] is False

    # other codes: the provider reconnects by itself ...
    r = await node.connect("r", url=ref_server, room="close-1013", max_backoff_ms=100)
    assert (await r.wait_closed())[0] == 1013
    assert (await r.wait_closed())[0] == 1013  # the second close is a second connection
    await r.disconnect()

    # ... unless the harness is told not to
    n = await node.connect("n", url=ref_server, room="close-1013", reconnect=False)
    assert (await n.wait_closed())[0] == 1013
    info = await n.info()
    assert info["should_connect"] is False
    assert len(info["closes"]) == 1


async def test_rejected_handshake_is_1006(ref_server: str, node: NodeYjs) -> None:
    # a close before accept becomes an HTTP 403: the client never sees a close code
    c = await node.connect("c", url=ref_server, room="reject", reconnect=False)
    assert (await c.wait_closed())[0] == 1006
    err = await node.wait_event(lambda e: e["event"] == "connection-error")
    assert "403" in err["message"]


async def test_permission_denied_is_observed(ref_server: str, node: NodeYjs) -> None:
    c = await node.connect("c", url=ref_server, room="deny-1")
    assert await c.wait_permission_denied() == "permission denied"
    await c.wait_synced()  # the stock handler only logs; the connection goes on
    event = await node.wait_event(lambda e: e["event"] == "permission-denied")
    assert event == {
        "event": "permission-denied",
        "client": "c",
        "reason": "permission denied",
        "count": 1,
    }
    assert "Permission denied" in node.stderr()  # y-websocket's console.warn, on stderr


async def test_many_clients_many_edits(ref_server: str, node: NodeYjs) -> None:
    clients = await asyncio.gather(
        *(node.connect(f"c{i}", url=ref_server, room="load", wait_synced=True) for i in range(20))
    )
    await asyncio.gather(*(c.type(chr(ord("a") + i) * 50) for i, c in enumerate(clients)))
    final = await clients[0].wait_text(min_length=20 * 50, timeout=30)
    await asyncio.gather(*(c.wait_text(equals=final, timeout=30) for c in clients))
    assert sorted(final) == sorted("".join(chr(ord("a") + i) * 50 for i in range(20)))


async def test_socketio_client(node: NodeYjs) -> None:
    sio = socketio.AsyncServer(async_mode="asgi")

    @sio.event
    async def connect(sid: str, environ: dict[str, Any], auth: dict[str, Any] | None) -> None:
        if not auth or auth.get("token") != "good":
            raise socketio.exceptions.ConnectionRefusedError("bad token")

    @sio.on("note:join")
    async def join(sid: str, data: dict[str, Any]) -> dict[str, Any]:
        await sio.enter_room(sid, data["noteId"])
        await sio.emit(
            "note:user-joined", {"noteId": data["noteId"], "sid": sid}, to=data["noteId"]
        )
        return {"ok": True}

    async with serve_asgi(socketio.ASGIApp(sio)) as port:
        url = f"http://127.0.0.1:{port}"
        c = await node.sio_connect("s", url, token="good")
        assert await c.sio_emit("note:join", {"noteId": "n1"}, ack=True) == {"ok": True}
        args = await c.wait_sio_event("note:user-joined", contains={"noteId": "n1"})
        assert args[0]["noteId"] == "n1"
        with pytest.raises(NodeYjsError, match="bad token"):
            await node.sio_connect("bad", url, token="nope")
        await c.sio_disconnect()
