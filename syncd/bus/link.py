"""A bare connection to a single Redis that reads a whole batch of replies in C.

The appender sends a turn as one `MULTI` block: a reply per queued command (`QUEUED`) and
then `EXEC`'s, 2-3 per doc. Read one by one through redis-py's `Connection.read_response`
(its layers of timeouts, push handling and error mapping around the hiredis parser) they
cost ~1.6 us each, more than the Lua script the block replaced saved Redis per doc. Here
the bytes that arrive are fed to a `hiredis.Reader` and every complete reply is taken off
it in one loop.

Only what that needs: RESP2 (no pushes can arrive in between), `AUTH` and `SELECT` from
the URL, TLS with the default context for `rediss://`, a unix socket for `unix://` (its
database as `?db=N`, as redis-py reads it). `usable(url)` says whether a URL is one of
those; any other (options in the query string) stays on redis-py's connection, which the
appender falls back to.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from typing import Any
from urllib.parse import unquote, urlsplit

import hiredis
from redis.exceptions import AuthenticationError, ConnectionError, ResponseError


def usable(url: str) -> bool:
    """Whether `RawLink` can connect to `url` exactly as redis-py would."""
    parts = urlsplit(url)
    if parts.fragment or (parts.username and parts.password is None):
        return False  # how redis-py reads `redis://name@host` is its own affair
    if parts.scheme == "unix":
        return bool(parts.path) and _unix_db(parts.query) is not None
    if parts.scheme not in ("redis", "rediss") or parts.query:
        return False
    path = parts.path.strip("/")
    return not path or path.isdigit()


def _unix_db(query: str) -> str | None:
    """The database a `unix://` URL's query names ("" for none), None for any other query."""
    if not query:
        return ""
    name, equals, value = query.partition("=")
    return value if name == "db" and equals and value.isdigit() else None


class RawLink(asyncio.Protocol):
    """One connection; `exchange` writes packed commands and returns their replies (an
    error reply as a `ResponseError`, not raised). Any failure of the connection raises
    `ConnectionError`, after which the link is closed and must not be used again.

    An `asyncio.Protocol` rather than streams: the bytes that arrive go to the parser in
    `data_received`, and the waiting turn is woken once, when its last reply is complete
    (no stream buffer, no wake-up per partial read). The bound on an exchange (`limit`) is
    one timer that re-arms itself at the deadline of the exchange then in flight, not a
    timer (`asyncio.timeout`) made and cancelled per turn."""

    def __init__(self) -> None:
        self._transport: asyncio.Transport | None = None
        self._parser = hiredis.Reader(replyError=ResponseError)
        self.closed = False
        #: the exchange in flight: its future, the replies so far, how many it waits for
        self._waiter: asyncio.Future[list[Any]] | None = None
        self._replies: list[Any] = []
        self._count = 0
        #: loop time by which the exchange in flight must be answered (None: unbounded)
        self._deadline: float | None = None
        self._watch: asyncio.TimerHandle | None = None

    @classmethod
    async def open(cls, url: str) -> RawLink:
        parts = urlsplit(url)
        unix = parts.scheme == "unix"
        loop = asyncio.get_running_loop()
        link = cls()
        try:
            if unix:
                await loop.create_unix_connection(lambda: link, parts.path)
            else:
                context = ssl.create_default_context() if parts.scheme == "rediss" else None
                await loop.create_connection(
                    lambda: link, parts.hostname or "localhost", parts.port or 6379, ssl=context
                )
        except OSError as exc:
            where = parts.path if unix else parts.hostname
            raise ConnectionError(f"connecting to Redis at {where}: {exc}") from exc
        hello: list[tuple[bytes | str, ...]] = []
        if parts.password is not None:
            user = unquote(parts.username) if parts.username else None
            password = unquote(parts.password)
            hello.append((b"AUTH", user, password) if user else (b"AUTH", password))
        db = _unix_db(parts.query) if unix else parts.path.strip("/")
        if db and int(db):
            hello.append((b"SELECT", db))
        if hello:
            packed = b"".join(hiredis.pack_command(c) for c in hello)  # type: ignore[arg-type]
            for reply in await link.exchange(packed, len(hello)):
                if isinstance(reply, ResponseError):
                    link.close()
                    raise AuthenticationError(str(reply))
        return link

    @property
    def alive(self) -> bool:
        """False once closed, or once Redis closed its side (seen by the loop while idle)."""
        transport = self._transport
        return not (self.closed or transport is None or transport.is_closing())

    async def exchange(self, packed: bytes, count: int, limit: float | None = None) -> list[Any]:
        """The replies of the `count` commands in `packed`; `TimeoutError` (the link
        closed) when they are not all in within `limit` seconds."""
        transport = self._transport
        if self.closed or transport is None:
            raise ConnectionError("Redis connection closed")
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[list[Any]] = loop.create_future()
        self._waiter, self._replies, self._count = waiter, [], count
        if limit is not None:
            self._deadline = loop.time() + limit
            if self._watch is None:
                self._watch = loop.call_at(self._deadline, self._check)
        try:
            transport.write(packed)
            return await waiter
        except BaseException:
            self.close()  # replies left unread would answer the next exchange's commands
            raise
        finally:
            self._deadline = None

    def _check(self) -> None:
        """The watch timer: fail the exchange in flight past its deadline, else wait for
        the deadline of the one in flight (none in flight: no timer until the next)."""
        self._watch = None
        deadline = self._deadline
        if deadline is None or self._waiter is None:
            return
        loop = asyncio.get_running_loop()
        if loop.time() < deadline:
            self._watch = loop.call_at(deadline, self._check)
            return
        self._fail(TimeoutError("Redis did not answer the exchange in time"))
        self.close()

    # -- asyncio.Protocol ----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        parser = self._parser
        waiter = self._waiter
        try:
            parser.feed(data)
            if waiter is None:
                if parser.gets() is not False:  # a reply nothing asked for
                    raise hiredis.ProtocolError("unexpected reply")
                return
            replies = self._replies
            reply = parser.gets()
            while reply is not False:
                replies.append(reply)
                if len(replies) == self._count:
                    self._waiter = None
                    if not waiter.done():
                        waiter.set_result(replies)
                    return
                reply = parser.gets()
        except hiredis.ProtocolError as exc:
            self._fail(ConnectionError(f"Redis connection lost: {exc}"))
            self.close()

    def eof_received(self) -> bool:
        return False  # close: `connection_lost` follows

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._fail(ConnectionError(f"Redis connection lost: {exc or 'closed by Redis'}"))
        if self._watch is not None:
            self._watch.cancel()
            self._watch = None

    def _fail(self, error: Exception) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(error)

    def write(self, packed: bytes) -> None:
        """Send without reading a reply: for a connection told `CLIENT REPLY OFF`, whose
        commands get none (the appender's notices)."""
        transport = self._transport
        if self.closed or transport is None:
            raise ConnectionError("Redis connection closed")
        transport.write(packed)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._fail(ConnectionError("Redis connection closed"))
            if self._transport is not None:
                with contextlib.suppress(Exception):
                    self._transport.close()
