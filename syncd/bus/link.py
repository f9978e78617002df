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

#: bytes asked of the socket per read
READ_SIZE = 65536


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


class RawLink:
    """One connection; `exchange` writes packed commands and returns their replies (an
    error reply as a `ResponseError`, not raised). Any failure of the connection raises
    `ConnectionError`, after which the link is closed and must not be used again."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer
        self._parser = hiredis.Reader(replyError=ResponseError)
        self.closed = False

    @classmethod
    async def open(cls, url: str) -> RawLink:
        parts = urlsplit(url)
        unix = parts.scheme == "unix"
        try:
            if unix:
                reader, writer = await asyncio.open_unix_connection(parts.path)
            else:
                context = ssl.create_default_context() if parts.scheme == "rediss" else None
                reader, writer = await asyncio.open_connection(
                    parts.hostname or "localhost", parts.port or 6379, ssl=context
                )
        except OSError as exc:
            where = parts.path if unix else parts.hostname
            raise ConnectionError(f"connecting to Redis at {where}: {exc}") from exc
        link = cls(reader, writer)
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
        return not (self.closed or self._reader.at_eof() or self._writer.is_closing())

    async def exchange(self, packed: bytes, count: int) -> list[Any]:
        replies: list[Any] = []
        parser = self._parser
        try:
            self._writer.write(packed)
            while True:
                reply = parser.gets()
                while reply is not False:
                    replies.append(reply)
                    if len(replies) == count:
                        return replies
                    reply = parser.gets()
                data = await self._reader.read(READ_SIZE)
                if not data:
                    raise ConnectionError("Redis closed the connection")
                parser.feed(data)
        except (OSError, hiredis.ProtocolError) as exc:
            self.close()
            raise ConnectionError(f"Redis connection lost: {exc}") from exc
        except BaseException:
            self.close()  # replies left unread would answer the next exchange's commands
            raise

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            with contextlib.suppress(Exception):
                self._writer.close()
