"""Helpers of the scaled tests: clients that type unique markers, the test's own view of
what Redis and Postgres hold of a doc, and waits on conditions with a deadline."""

from __future__ import annotations

import asyncio
import contextlib
import random
import re
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TypeVar

import httpx
from pycrdt import Doc, Text
from redis.asyncio import Redis

from syncd.bus.compaction import Compactor
from syncd.bus.connect import open_redis
from syncd.bus.keys import Keys
from syncd.storage import Store, open_store
from syncd.storage.records import Snapshot
from tests.support.polling import eventually
from tests.support.server import make_token
from tests.support.yjs_node import NodeYjs, YClient

T = TypeVar("T")

MARKER = re.compile(r"<(c\d+):(\d+)>")


def markers(text: str) -> set[str]:
    """The unique insert markers (`<c3:17>`) in a text."""
    return {match.group(0) for match in MARKER.finditer(text)}


def marker_counts(text: str) -> Counter[str]:
    """How often each marker occurs (an insert must show exactly once)."""
    return Counter(match.group(0) for match in MARKER.finditer(text))


def received(name: str, text: str) -> set[str]:
    """The markers in client `name`'s text that other clients typed: what it was sent."""
    return {m for m in markers(text) if not m.startswith(f"<{name}:")}


class Typist:
    """Inserts unique markers `<name:i>` into a client's Y.Text until stopped, at the start
    or the end (never inside another marker, so markers stay whole), paced by `pace`."""

    def __init__(self, client: YClient, *, pace: float = 0.03, seed: int = 0) -> None:
        self.client = client
        self.pace = pace
        #: markers inserted so far (the next one is `<name:count>`)
        self.count = 0
        self._random = random.Random(f"{seed}-{client.name}")
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> Typist:
        self._task = asyncio.get_running_loop().create_task(self._run())
        return self

    async def stop(self) -> None:
        """Stop typing; raises what made typing fail, if anything did."""
        self._stop.set()
        if self._task is not None:
            await asyncio.wait_for(self._task, 30.0)

    async def typed_more(self, more: int, *, timeout: float = 30.0) -> None:
        """Wait until `more` markers are typed from now on."""
        target = self.count + more
        await eventually(self._progress(target), timeout=timeout, what=f"{self.client.name} typing")

    def _progress(self, target: int) -> Callable[[], Awaitable[bool]]:
        async def check() -> bool:
            if self._task is not None and self._task.done():
                self._task.result()  # raise the typing failure here
            return self.count >= target

        return check

    async def _run(self) -> None:
        while not self._stop.is_set():
            index = 0 if self._random.random() < 0.3 else None
            await self.client.insert(f"<{self.client.name}:{self.count}>", index)
            self.count += 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), self.pace)


async def stop_all(typists: Iterable[Typist]) -> None:
    await asyncio.gather(*(t.stop() for t in typists))


async def texts(clients: Sequence[YClient]) -> dict[str, str]:
    """Every client's current text, by client name."""
    values = await asyncio.gather(*(c.text() for c in clients))
    return {c.name: value for c, value in zip(clients, values, strict=True)}


async def converged(clients: Sequence[YClient], *, timeout: float = 30.0) -> str:
    """Wait until every client holds the same text and state vector; return the text."""

    last: dict[str, str] = {}

    async def same() -> tuple[str] | None:
        values = await texts(clients)
        vectors = await asyncio.gather(*(c.state_vector() for c in clients))
        last.update(values)
        if len(set(values.values())) == 1 and len(set(vectors)) == 1:
            return (next(iter(values.values())),)
        return None

    try:
        (text,) = await eventually(same, timeout=timeout, what="clients converging", every=0.1)
    except AssertionError as error:
        lengths = {name: len(value) for name, value in last.items()}
        raise AssertionError(f"{error}; text lengths {lengths}; texts {last!r:.3000}") from None
    return text


# -- what the deployment stores -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Stored:
    """A doc as a fresh instance would load it: the snapshot, then the stream after it."""

    snapshot: Snapshot | None
    #: stream entries after the snapshot's position: (id, update)
    tail: list[tuple[bytes, bytes]]
    #: the Y.Text `text` of snapshot + tail
    text: str
    #: the Y.Text `text` of the snapshot alone
    snapshot_text: str


def doc_text(updates: Iterable[bytes], field: str = "text") -> str:
    """The content of Y.Text `field` after applying `updates` to an empty doc."""
    doc = Doc()
    for update in updates:
        doc.apply_update(update)
    return str(doc.get(field, type=Text))


class Backing:
    """The test's own connections to a deployment's Postgres and Redis."""

    def __init__(self, store: Store, redis: Redis, keys: Keys) -> None:
        self.store = store
        self.redis = redis
        self.keys = keys

    async def read(self, doc_id: str) -> Stored:
        """Snapshot + stream tail, read the way `RedisBus.load` does (again if a compaction
        moved the snapshot meanwhile)."""
        for _ in range(10):
            snapshot = await self.store.load_snapshot(doc_id)
            position = snapshot.position if snapshot is not None else ""
            start = f"({position}" if position else "-"
            entries = await self.redis.xrange(self.keys.updates(doc_id), min=start, max="+")
            again = await self.store.load_snapshot(doc_id)
            if (again.position if again is not None else "") == position:
                break
        else:
            raise AssertionError(f"doc {doc_id}: the snapshot kept moving while reading it")
        tail = [(entry_id, fields[b"u"]) for entry_id, fields in entries]
        base = [snapshot.state] if snapshot is not None else []
        return Stored(
            snapshot=snapshot,
            tail=tail,
            text=doc_text([*base, *(update for _, update in tail)]),
            snapshot_text=doc_text(base),
        )

    async def stream_ids(self, doc_id: str) -> list[bytes]:
        """Ids of every entry in the doc's stream, oldest first."""
        return [entry_id for entry_id, _ in await self.redis.xrange(self.keys.updates(doc_id))]

    async def xlen(self, doc_id: str) -> int:
        return int(await self.redis.xlen(self.keys.updates(doc_id)))

    def compactor(self, **options: int) -> Compactor:
        """A compactor of the test's own, configured as the instances' unless `options`
        say otherwise (it takes the same lease they take)."""
        return Compactor(self.redis, self.store, "test-compactor", self.keys, **options)


@contextlib.asynccontextmanager
async def open_backing(
    database_url: str, redis_url: str, prefix: str, *, cluster: bool = False
) -> AsyncIterator[Backing]:
    """A `Backing` over the deployment's database and Redis, with its key prefix (as the
    `redis_prefix` fixture gives it; `start_scaled` strips the trailing colon); with
    `cluster`, `redis_url` is a node of a Redis Cluster."""
    redis = (
        open_redis(redis_url.replace("redis+cluster://", "redis://"), cluster=True)
        if cluster
        else Redis.from_url(redis_url)
    )
    try:
        async with open_store(database_url, migrate=False, pool_size=2) as store:
            yield Backing(store, redis, Keys(prefix.rstrip(":")))
    finally:
        await redis.aclose()


# -- instances ----------------------------------------------------------------------------


async def readyz(http_url: str) -> tuple[int, dict[str, object]]:
    """Status code and body of an instance's `/readyz`."""
    async with httpx.AsyncClient(base_url=http_url, timeout=10.0) as client:
        response = await client.get("/readyz")
    return response.status_code, response.json()


async def wait_ready(
    http_urls: Iterable[str], *, ready: bool, timeout: float = 30.0
) -> list[dict[str, object]]:
    """Wait until every instance's `/readyz` says ready (200) or not ready (503); return
    the bodies that said so."""
    want = 200 if ready else 503
    bodies = []
    for url in http_urls:

        async def check(url: str = url) -> dict[str, object] | None:
            status, body = await readyz(url)
            return body if status == want else None

        bodies.append(await eventually(check, timeout=timeout, what=f"{url}/readyz {want}"))
    return bodies


async def connect_many(
    node: NodeYjs,
    url: str,
    note_id: str,
    *,
    count: int,
    prefix: str,
    max_backoff_ms: int | None = None,
) -> list[YClient]:
    """`count` stock clients named `<prefix><i>`, each synced before the next connects (so
    a round-robin balancer spreads them in order)."""
    token = make_token("owner")
    return [
        await node.connect(
            f"{prefix}{i}",
            url=url,
            room=note_id,
            token=token,
            max_backoff_ms=max_backoff_ms,
            wait_synced=True,
            timeout=20,
        )
        for i in range(count)
    ]
