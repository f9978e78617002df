# The waits run in Node with their own timers, and tests want a `timeout=` argument on each
# call (the Node error then says what the value was), so ASYNC109 does not apply here.
"""Drive stock Node Yjs clients (yjs, y-websocket, y-prosemirror, socket.io-client) from pytest.

One Node process (``tests/node/yclient.mjs``) hosts many named clients. The process
speaks JSON lines: commands on its stdin, replies and events on its stdout, logs on
its stderr (kept and appended to every error raised here).

Example::

    async with NodeYjs() as node:
        a = await node.connect("a", url="ws://127.0.0.1:3001/ws/notes", room=note_id,
                               token=token)
        b = await node.connect("b", url=..., room=note_id, token=token)
        await a.wait_synced()
        await b.wait_synced()
        await a.insert("hello")
        await b.wait_text(equals="hello")

Every wait is bounded by a timeout and is event driven on the Node side; nothing
here sleeps to synchronise. Node modules must be installed first:
``npm ci --prefix tests/node``.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import contextlib
import json
import logging
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any

__all__ = ["NODE_DIR", "NodeYjs", "NodeYjsError", "YClient"]

NODE_DIR = Path(__file__).resolve().parent.parent / "node"
SCRIPT = NODE_DIR / "yclient.mjs"

log = logging.getLogger("yjs_node")

#: default bound (seconds) of a wait on a condition
DEFAULT_WAIT = 10.0
#: default bound (seconds) of a plain command round trip
DEFAULT_CALL = 15.0
#: extra time the Python side gives a Node-side wait, so Node's clearer error wins
_WAIT_MARGIN = 5.0

Json = Any
EventPredicate = Callable[[dict[str, Any]], bool]


class NodeYjsError(RuntimeError):
    """A command failed, a wait timed out, or the Node process misbehaved."""


class NodeYjs:
    """One ``node yclient.mjs`` process hosting many named Yjs clients."""

    def __init__(
        self,
        *,
        node: str = "node",
        script: Path = SCRIPT,
        env: dict[str, str] | None = None,
        call_timeout: float = DEFAULT_CALL,
        start_timeout: float = 30.0,
        fail_on_uncaught: bool = True,
        stderr_lines: int = 400,
    ) -> None:
        self._node = node
        self._script = script
        self._env = env
        self.call_timeout = call_timeout
        self._start_timeout = start_timeout
        self.fail_on_uncaught = fail_on_uncaught
        self._proc: asyncio.subprocess.Process | None = None
        self._next_id = 0
        self._pending: dict[int, asyncio.Future[Json]] = {}
        self._waiters: list[tuple[EventPredicate, asyncio.Future[dict[str, Any]]]] = []
        self._buffer: list[dict[str, Any]] = []
        self._stderr: collections.deque[str] = collections.deque(maxlen=stderr_lines)
        self._tasks: list[asyncio.Task[None]] = []
        self._dead: str | None = None
        self._clients: dict[str, YClient] = {}
        #: every event received, in order
        self.events: list[dict[str, Any]] = []
        #: uncaught exceptions reported by the Node process
        self.uncaught: list[str] = []
        #: the ``ready`` event (pid, node and package versions)
        self.info: dict[str, Any] = {}

    # -- lifecycle ---------------------------------------------------------

    async def start(self) -> NodeYjs:
        """Spawn the Node process and wait until it reports ready."""
        if self._proc is not None:
            raise NodeYjsError("already started")
        node_bin = shutil.which(self._node)
        if node_bin is None:
            raise NodeYjsError(f"Node.js executable {self._node!r} not found on PATH")
        marker = self._script.parent / "node_modules" / "y-websocket" / "package.json"
        if not marker.is_file():
            raise NodeYjsError(
                f"{marker.parent.parent} is missing or incomplete: run "
                f"`npm ci --prefix {self._script.parent}` (tests/node) before the interop tests"
            )
        env = dict(os.environ if self._env is None else self._env)
        env.setdefault("NODE_NO_WARNINGS", "1")
        self._proc = await asyncio.create_subprocess_exec(
            node_bin,
            str(self._script),
            cwd=str(self._script.parent),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env,
            limit=256 * 1024 * 1024,
        )
        self._tasks = [
            asyncio.create_task(self._read_stdout(), name="yclient-stdout"),
            asyncio.create_task(self._read_stderr(), name="yclient-stderr"),
        ]
        try:
            self.info = await self.wait_event(
                lambda e: e["event"] == "ready", timeout=self._start_timeout
            )
        except BaseException:
            await self.close()
            raise
        return self

    async def close(self) -> None:
        """Ask the Node process to exit (kill it if it does not) and stop reading it."""
        proc = self._proc
        if proc is None:
            return
        if proc.returncode is None and self._dead is None:
            with contextlib.suppress(Exception):
                await self.call("exit", timeout=5.0)
        if proc.returncode is None:
            try:
                await asyncio.wait_for(proc.wait(), 5.0)
            except TimeoutError:
                proc.kill()
                await proc.wait()
        for task in self._tasks:
            with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(task, 5.0)
        self._fail_all("the Node process was closed")

    async def __aenter__(self) -> NodeYjs:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()
        if exc_type is None and self.fail_on_uncaught and self.uncaught:
            raise NodeYjsError(
                "uncaught exception(s) in the Node clients:\n"
                + "\n---\n".join(self.uncaught)
                + self._stderr_suffix()
            )

    # -- raw protocol ------------------------------------------------------

    async def call(
        self, cmd: str, client: str | None = None, *, timeout: float | None = None, **args: Json
    ) -> Json:
        """Run one command; return its result or raise NodeYjsError (also on timeout)."""
        proc = self._proc
        if proc is None or proc.stdin is None:
            raise NodeYjsError("the Node process is not started")
        if self._dead is not None:
            raise NodeYjsError(f"the Node process is gone: {self._dead}{self._stderr_suffix()}")
        self._next_id += 1
        msg_id = self._next_id
        msg: dict[str, Json] = {"id": msg_id, "cmd": cmd, **args}
        if client is not None:
            msg["client"] = client
        fut: asyncio.Future[Json] = asyncio.get_running_loop().create_future()
        self._pending[msg_id] = fut
        bound = self.call_timeout if timeout is None else timeout
        try:
            proc.stdin.write(json.dumps(msg).encode() + b"\n")
            await proc.stdin.drain()
            return await asyncio.wait_for(fut, bound)
        except TimeoutError:
            raise NodeYjsError(
                f"command {cmd!r} (client {client!r}) got no reply within {bound} s"
                + self._stderr_suffix()
            ) from None
        except (BrokenPipeError, ConnectionResetError) as err:
            raise NodeYjsError(f"the Node process is gone ({err}){self._stderr_suffix()}") from None
        finally:
            self._pending.pop(msg_id, None)

    async def wait_event(
        self, predicate: EventPredicate, timeout: float = DEFAULT_WAIT, *, consume: bool = True
    ) -> dict[str, Any]:
        """Return the first not yet consumed event matching ``predicate``.

        Events are buffered from the start, so an event that arrived before this
        call still counts. With ``consume`` (default) the event is taken out of the
        buffer, so the next call returns the next matching one.
        """
        for i, event in enumerate(self._buffer):
            if predicate(event):
                if consume:
                    del self._buffer[i]
                return event
        if self._dead is not None:
            raise NodeYjsError(f"the Node process is gone: {self._dead}{self._stderr_suffix()}")
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        entry = (predicate, fut)
        self._waiters.append(entry)
        try:
            event = await asyncio.wait_for(fut, timeout)
        except TimeoutError:
            recent = [e for e in self.events[-20:] if e.get("event") != "ready"]
            raise NodeYjsError(
                f"no matching event within {timeout} s; recent events: {_short(recent)}"
                + self._stderr_suffix()
            ) from None
        finally:
            with contextlib.suppress(ValueError):
                self._waiters.remove(entry)
        if not consume:
            self._buffer.append(event)
        return event

    def client_events(self, name: str, kind: str | None = None) -> list[dict[str, Any]]:
        """All events seen so far for one client (optionally of one kind)."""
        return [
            e
            for e in self.events
            if e.get("client") == name and (kind is None or e.get("event") == kind)
        ]

    def stderr(self) -> str:
        """The last lines the Node process wrote to stderr."""
        return "\n".join(self._stderr)

    # -- clients -------------------------------------------------------------

    async def connect(
        self,
        name: str,
        *,
        url: str,
        room: str,
        token: str | None = None,
        params: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
        protocols: list[str] | None = None,
        connect: bool = True,
        reconnect: bool = True,
        max_backoff_ms: int | None = None,
        resync_interval_ms: int | None = None,
        awareness_events: bool = False,
        wait_synced: bool = False,
        timeout: float = DEFAULT_WAIT,
    ) -> YClient:
        """Create client ``name``: a Y.Doc plus a stock ``WebsocketProvider(url, room, doc)``.

        ``token`` goes into the query string (``?token=``), ``headers`` into the HTTP
        upgrade request. ``reconnect=False`` stops the provider's automatic reconnect
        at the first close by the server. ``wait_synced`` waits for the first sync.
        """
        args: dict[str, Json] = {
            "url": url,
            "room": room,
            "connect": connect,
            "reconnect": reconnect,
            "awareness_events": awareness_events,
        }
        optional = {
            "token": token,
            "params": params,
            "headers": headers,
            "protocols": protocols,
            "max_backoff_ms": max_backoff_ms,
            "resync_interval_ms": resync_interval_ms,
        }
        args.update({k: v for k, v in optional.items() if v is not None})
        result = await self.call("connect", name, **args)
        c = YClient(self, name, int(result["client_id"]))
        self._clients[name] = c
        if wait_synced:
            await c.wait_synced(timeout=timeout)
        return c

    async def create(self, name: str) -> YClient:
        """Create client ``name`` with a Y.Doc but no provider (offline doc, socket.io only)."""
        result = await self.call("create", name)
        c = YClient(self, name, int(result["client_id"]))
        self._clients[name] = c
        return c

    async def sio_connect(
        self,
        name: str,
        url: str,
        *,
        token: str | None = None,
        auth: dict[str, Json] | None = None,
        path: str | None = None,
        transports: list[str] | None = None,
        timeout: float = DEFAULT_WAIT,
    ) -> YClient:
        """Open a socket.io-client connection for client ``name`` (created if needed).

        Raises NodeYjsError if the server refuses the connection (``connect_error``).
        """
        args: dict[str, Json] = {"url": url, "timeout_ms": int(timeout * 1000)}
        optional = {"token": token, "auth": auth, "path": path, "transports": transports}
        args.update({k: v for k, v in optional.items() if v is not None})
        await self.call("sio_connect", name, timeout=timeout + _WAIT_MARGIN, **args)
        if name not in self._clients:
            client_id = await self.call("client_id", name)
            self._clients[name] = YClient(self, name, int(client_id))
        return self._clients[name]

    def client(self, name: str) -> YClient:
        """The wrapper of an existing client."""
        return self._clients[name]

    # -- internals -------------------------------------------------------------

    def _stderr_suffix(self) -> str:
        text = self.stderr()
        return f"\n--- node stderr (last lines) ---\n{text}" if text else ""

    def _dispatch(self, msg: dict[str, Any]) -> None:
        if "id" in msg and "event" not in msg:
            fut = self._pending.get(msg["id"])
            if fut is None or fut.done():
                return
            if msg.get("ok"):
                fut.set_result(msg.get("result"))
            else:
                fut.set_exception(NodeYjsError(str(msg.get("error"))))
            return
        self.events.append(msg)
        if msg.get("event") == "uncaught":
            self.uncaught.append(str(msg.get("error")))
        for entry in list(self._waiters):
            predicate, fut = entry
            if fut.done():
                continue
            try:
                matched = predicate(msg)
            except Exception as err:  # a broken predicate fails its own wait
                fut.set_exception(err)
                continue
            if matched:
                fut.set_result(msg)
                self._waiters.remove(entry)
                return
        self._buffer.append(msg)

    async def _read_stdout(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        stdout = self._proc.stdout
        try:
            while line := await stdout.readline():
                try:
                    msg = json.loads(line)
                except ValueError:
                    self._stderr.append(f"[non-JSON on stdout] {line.decode(errors='replace')}")
                    continue
                if isinstance(msg, dict):
                    self._dispatch(msg)
        finally:
            rc = await self._proc.wait()
            self._dead = f"exited with code {rc}"
            self._fail_all(f"the Node process {self._dead}")

    async def _read_stderr(self) -> None:
        assert self._proc is not None and self._proc.stderr is not None
        while line := await self._proc.stderr.readline():
            text = line.decode(errors="replace").rstrip("\n")
            self._stderr.append(text)
            log.debug("node: %s", text)

    def _fail_all(self, why: str) -> None:
        err = f"{why}{self._stderr_suffix()}"
        for fut in self._pending.values():
            if not fut.done():
                fut.set_exception(NodeYjsError(err))
        for _, fut in self._waiters:
            if not fut.done():
                fut.set_exception(NodeYjsError(err))
        self._waiters.clear()


class YClient:
    """A named client inside a NodeYjs process (Y.Doc, provider, awareness, socket.io)."""

    def __init__(self, node: NodeYjs, name: str, client_id: int) -> None:
        self.node = node
        self.name = name
        #: the Y.Doc's clientID (the key of this client's awareness state)
        self.client_id = client_id
        self._closes_taken = 0
        self._denials_taken = 0

    def __repr__(self) -> str:
        return f"YClient({self.name!r}, client_id={self.client_id})"

    async def call(self, cmd: str, *, timeout: float | None = None, **args: Json) -> Json:
        """Run a command for this client."""
        return await self.node.call(cmd, self.name, timeout=timeout, **args)

    async def wait(self, what: str, *, timeout: float = DEFAULT_WAIT, **cond: Json) -> Json:
        """Wait (event driven, in Node) until condition ``what`` holds; return its value."""
        args = {k: v for k, v in cond.items() if v is not None}
        return await self.call(
            "wait",
            what=what,
            timeout_ms=int(timeout * 1000),
            timeout=timeout + _WAIT_MARGIN,
            **args,
        )

    # -- connection -------------------------------------------------------------

    async def wait_synced(self, timeout: float = DEFAULT_WAIT) -> None:
        """Wait until the provider has completed the sync handshake."""
        await self.wait("synced", timeout=timeout, equals=True)

    async def wait_status(self, status: str, timeout: float = DEFAULT_WAIT) -> None:
        """Wait for provider status ``connected``, ``connecting`` or ``disconnected``."""
        await self.wait("status", timeout=timeout, equals=status)

    async def wait_closed(
        self, timeout: float = DEFAULT_WAIT, *, count: int | None = None
    ) -> tuple[int, str]:
        """Return ``(code, reason)`` of a close by the server.

        Without ``count``: the next close this wrapper has not returned yet (the
        first call returns the first close ever seen, even one that happened before
        the call). ``count=n`` returns the n-th close of this client.
        """
        n = self._closes_taken + 1 if count is None else count
        close = await self.wait("closed", timeout=timeout, count=n)
        self._closes_taken = max(self._closes_taken, n)
        return int(close["code"]), str(close["reason"])

    async def wait_permission_denied(
        self, timeout: float = DEFAULT_WAIT, *, count: int | None = None
    ) -> str:
        """Return the reason of a y-protocols auth "permission denied" message (cf. wait_closed)."""
        n = self._denials_taken + 1 if count is None else count
        reason = await self.wait("permission_denied", timeout=timeout, count=n)
        self._denials_taken = max(self._denials_taken, n)
        return str(reason)

    async def info(self) -> dict[str, Any]:
        """Status, synced, should_connect, url, closes, permission_denied of this client."""
        return dict(await self.call("info"))

    async def disconnect(self) -> None:
        """``provider.disconnect()``: close the socket, no automatic reconnect."""
        await self.call("disconnect")

    async def reconnect(
        self,
        *,
        token: str | None = None,
        params: dict[str, str] | None = None,
        reconnect: bool | None = None,
    ) -> None:
        """``provider.connect()``, optionally with a new token / params / reconnect policy."""
        args = {"token": token, "params": params, "reconnect": reconnect}
        await self.call("reconnect", **{k: v for k, v in args.items() if v is not None})

    async def destroy(self) -> None:
        """Destroy provider, socket.io connection and doc; the name can then be reused."""
        await self.call("destroy")
        self.node._clients.pop(self.name, None)

    # -- Y.Text ------------------------------------------------------------------

    async def insert(self, text: str, index: int | None = None, *, field: str = "text") -> int:
        """Insert into ``doc.getText(field)`` (at the end by default); return the new length."""
        args: dict[str, Json] = {"field": field, "text": text}
        if index is not None:
            args["index"] = index
        return int(await self.call("insert", **args))

    async def delete(self, index: int, length: int, *, field: str = "text") -> int:
        """Delete a range of ``doc.getText(field)``; return the new length."""
        return int(await self.call("delete", field=field, index=index, length=length))

    async def type(
        self,
        text: str,
        index: int | None = None,
        *,
        field: str = "text",
        interval_ms: int = 0,
        timeout: float | None = None,
    ) -> int:
        """Type ``text`` one character (one transaction, one update) at a time."""
        args: dict[str, Json] = {"field": field, "text": text, "interval_ms": interval_ms}
        if index is not None:
            args["index"] = index
        return int(await self.call("type", timeout=timeout, **args))

    async def text(self, field: str = "text") -> str:
        """Current content of ``doc.getText(field)``."""
        return str(await self.call("text", field=field))

    async def wait_text(
        self,
        *,
        equals: str | None = None,
        contains: str | None = None,
        min_length: int | None = None,
        field: str = "text",
        timeout: float = DEFAULT_WAIT,
    ) -> str:
        """Wait until ``doc.getText(field)`` equals / contains / is at least so long."""
        return str(
            await self.wait(
                "text",
                timeout=timeout,
                field=field,
                equals=equals,
                contains=contains,
                min_length=min_length,
            )
        )

    # -- ProseMirror (Y.XmlFragment) --------------------------------------------------

    async def pm_set(self, doc_json: dict[str, Any], *, field: str = "prosemirror") -> None:
        """Replace the editor content with ProseMirror JSON (y-prosemirror updateYFragment)."""
        await self.call("pm_set", field=field, json=doc_json)

    async def pm_insert_text(
        self, text: str, *, at: str | int = "end", field: str = "prosemirror"
    ) -> None:
        """Insert text via an editor transaction.

        ``at``: ``"end"`` (end of the last textblock), ``"new_paragraph"``, or a PM position.
        """
        await self.call("pm_insert_text", field=field, text=text, at=at)

    async def pm_type(
        self,
        text: str,
        *,
        at: str | int = "end",
        field: str = "prosemirror",
        interval_ms: int = 0,
        timeout: float | None = None,
    ) -> None:
        """Type into the editor one character (one transaction) at a time."""
        await self.call(
            "pm_type", timeout=timeout, field=field, text=text, at=at, interval_ms=interval_ms
        )

    async def pm_get(self, field: str = "prosemirror", *, raw: bool = False) -> dict[str, Any]:
        """The fragment as ProseMirror JSON (yXmlFragmentToProsemirrorJSON).

        Empty ``attrs`` objects and ``marks`` lists are dropped unless ``raw``.
        """
        return dict(await self.call("pm_get", field=field, raw=raw))

    async def pm_text(self, field: str = "prosemirror") -> str:
        """Plain text of the fragment: blocks joined by newlines, mentions as ``@label``."""
        return str(await self.call("pm_text", field=field))

    async def wait_pm_text(
        self,
        *,
        equals: str | None = None,
        contains: str | None = None,
        min_length: int | None = None,
        field: str = "prosemirror",
        timeout: float = DEFAULT_WAIT,
    ) -> str:
        """Wait until the fragment's plain text equals / contains / is at least so long."""
        return str(
            await self.wait(
                "pm_text",
                timeout=timeout,
                field=field,
                equals=equals,
                contains=contains,
                min_length=min_length,
            )
        )

    async def wait_pm(
        self, equals: dict[str, Any], *, field: str = "prosemirror", timeout: float = DEFAULT_WAIT
    ) -> dict[str, Any]:
        """Wait until the fragment's ProseMirror JSON deep-equals ``equals`` (both normalised
        as in pm_get); return it."""
        return dict(await self.wait("pm", timeout=timeout, field=field, equals=equals))

    async def pm_cursor(
        self, anchor: int, head: int | None = None, *, field: str = "prosemirror"
    ) -> None:
        """Publish a y-prosemirror cursor (awareness ``cursor`` as relative positions)."""
        args: dict[str, Json] = {"field": field, "anchor": anchor}
        if head is not None:
            args["head"] = head
        await self.call("pm_cursor", **args)

    # -- awareness -----------------------------------------------------------------

    async def awareness_set(self, state: dict[str, Any] | None) -> None:
        """``awareness.setLocalState(state)`` (None removes this client's presence)."""
        await self.call("awareness_set", state=state)

    async def awareness_set_field(self, field: str, value: Json) -> None:
        """``awareness.setLocalStateField(field, value)``."""
        await self.call("awareness_set_field", field=field, value=value)

    async def awareness_get(self) -> dict[int, Any]:
        """All awareness states this client knows, keyed by clientID (its own included)."""
        states = await self.call("awareness_get")
        return {int(k): v for k, v in states.items()}

    async def wait_awareness(
        self,
        *,
        count: int | None = None,
        contains: dict[str, Any] | None = None,
        client_id: int | None = None,
        absent: bool = False,
        timeout: float = DEFAULT_WAIT,
    ) -> dict[int, Any]:
        """Wait for an awareness condition; return all known states.

        ``count``: exact number of known states (own included). ``contains``: some
        *other* client's state (or ``client_id``'s) includes these keys/values
        (recursive subset match). ``client_id`` alone: that state exists;
        with ``absent=True``: it does not.
        """
        states = await self.wait(
            "awareness",
            timeout=timeout,
            count=count,
            contains=contains,
            client_id=client_id,
            absent=absent or None,
        )
        return {int(k): v for k, v in states.items()}

    # -- raw Yjs state -----------------------------------------------------------------

    async def state_update(self, state_vector: bytes | None = None) -> bytes:
        """``Y.encodeStateAsUpdate(doc[, state_vector])``."""
        args: dict[str, Json] = {}
        if state_vector is not None:
            args["state_vector"] = base64.b64encode(state_vector).decode()
        return base64.b64decode(await self.call("state_update", **args))

    async def state_vector(self) -> bytes:
        """``Y.encodeStateVector(doc)``."""
        return base64.b64decode(await self.call("state_vector"))

    async def apply_update(self, update: bytes) -> None:
        """``Y.applyUpdate(doc, update)`` (the provider then sends it to the server)."""
        await self.call("apply_update", base64=base64.b64encode(update).decode())

    # -- socket.io ---------------------------------------------------------------------

    async def sio_emit(
        self, event: str, data: Json = None, *, ack: bool = False, timeout: float = DEFAULT_WAIT
    ) -> Json:
        """Emit a socket.io event; with ``ack`` wait for and return the server's ack."""
        args: dict[str, Json] = {"event": event, "ack": ack, "timeout_ms": int(timeout * 1000)}
        if data is not None:
            args["data"] = data
        return await self.call("sio_emit", timeout=timeout + _WAIT_MARGIN, **args)

    async def wait_sio_event(
        self,
        name: str,
        *,
        contains: dict[str, Any] | None = None,
        count: int = 1,
        timeout: float = DEFAULT_WAIT,
    ) -> list[Any]:
        """Wait until socket.io event ``name`` was received ``count`` times (optionally with a
        first argument matching ``contains``); return the arguments of that occurrence."""
        return list(
            await self.wait("sio_event", timeout=timeout, name=name, contains=contains, count=count)
        )

    async def sio_disconnect(self) -> None:
        """Close this client's socket.io connection."""
        await self.call("sio_disconnect")


def _short(value: Any, limit: int = 2000) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= limit else text[:limit] + f"... ({len(text)} chars)"
