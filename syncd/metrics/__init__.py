"""Prometheus metric objects of syncd, in one registry every module reports to.

Import the objects below and update them; `render` produces the `/metrics` text. When
`PROMETHEUS_MULTIPROC_DIR` is set (several worker processes), prometheus-client keeps the
values in files there and `render` merges every process's files; gauges then add up the
live processes' values.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.metrics_core import Metric

from syncd.metrics._batched import BatchedCounter, BatchedHistogram, flush_batched

_LATENCY = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)

# -- connections and rooms -------------------------------------------------------------
WS_CONNECTIONS = Gauge(
    "syncd_ws_connections_open", "Open y-websocket connections", multiprocess_mode="livesum"
)
ROOMS = Gauge("syncd_rooms_open", "Docs loaded in memory", multiprocess_mode="livesum")
WS_MESSAGES = Counter(
    "syncd_ws_messages_total",
    "y-websocket frames by direction and message type",
    ["direction", "type"],
)
WS_BYTES = Counter(
    "syncd_ws_bytes_total",
    "y-websocket frame bytes by direction and message type",
    ["direction", "type"],
)
WS_CLOSES = Counter("syncd_ws_closes_total", "Connections closed by the server, by code", ["code"])
PROTOCOL_ERRORS = Counter(
    "syncd_protocol_errors_total",
    "y-websocket frames refused (connection closed), by message type and kind: malformed "
    "(not the wire format), limit (over a cap of the frame walker), too_large (frame size), "
    "missing (more held updates waiting for missing structs than a connection may keep), "
    "rejected (pycrdt refused what the walker let through)",
    ["type", "kind"],
)

# -- docs ------------------------------------------------------------------------------
UPDATES_APPLIED = Counter(
    "syncd_updates_applied_total",
    "Yjs updates applied to loaded docs (local: clients' updates made on this instance, "
    "counted once durable; remote: bus entries, one per flush of another instance)",
    ["origin"],
)
FANOUT_SECONDS = Histogram(
    "syncd_fanout_latency_seconds",
    "From an update being applied to its frame being sent to every peer",
    ["scope"],
    buckets=_LATENCY,
)
STORAGE_SECONDS = Histogram(
    "syncd_storage_seconds",
    "Durations of doc storage operations",
    ["operation"],
    buckets=_LATENCY,
)
SNAPSHOT_SECONDS = Histogram(
    "syncd_snapshot_seconds",
    "Durations of compactions into the stored snapshot",
    buckets=_LATENCY,
)
#: what the room's flush and the storage decorator update once per room per loop turn,
#: batched (`syncd.metrics._batched`): exact at every scrape of this process
APPLIED_LOCAL = BatchedCounter(UPDATES_APPLIED.labels("local"))
FANOUT_LOCAL = BatchedHistogram(FANOUT_SECONDS.labels("local"), _LATENCY)
#: the scaled bus's reader, once per stream per read (`syncd.bus.reader`)
FANOUT_REMOTE = BatchedHistogram(FANOUT_SECONDS.labels("remote"), _LATENCY)
STORAGE_APPEND = BatchedHistogram(STORAGE_SECONDS.labels("append"), _LATENCY)
VERSIONS = Counter("syncd_versions_total", "Note versions stored, by kind", ["kind"])

# -- presence and sessions -------------------------------------------------------------
PRESENCE_BACKLOG = Gauge(
    "syncd_presence_backlog",
    "Notes whose presence and session bookkeeping is pending or under way",
    multiprocess_mode="livesum",
)
PRESENCE_PASSES = Counter(
    "syncd_presence_passes_total", "Passes of the presence and session bookkeeping"
)
PRESENCE_DROPPED = Counter(
    "syncd_presence_dropped_total",
    "Presence and session changes dropped because the bookkeeping backlog was full",
)

# -- jobs, caches, limits, HTTP --------------------------------------------------------
JOBS = Counter(
    "syncd_jobs_total", "Background jobs finished, by queue and outcome", ["queue", "outcome"]
)
JOB_SECONDS = Histogram("syncd_job_seconds", "Background job durations", ["queue"])
CACHE_REQUESTS = Counter(
    "syncd_cache_requests_total",
    "Cache look-ups by cache and result (hit, miss, shared: joined a miss under way)",
    ["cache", "result"],
)
RATE_LIMITED = Counter(
    "syncd_rate_limited_total", "Requests and connections refused by a rate limit", ["limit"]
)
HTTP_REQUESTS = Counter(
    "syncd_http_requests_total",
    "HTTP requests by method, route template and status",
    ["method", "route", "status"],
)
HTTP_SECONDS = Histogram(
    "syncd_http_request_seconds",
    "HTTP request durations by method and route template",
    ["method", "route"],
    buckets=_LATENCY,
)
EVENTS = Counter("syncd_events_total", "Note events published, by kind", ["kind"])
EVENTS_DROPPED = Counter(
    "syncd_events_dropped_total",
    "Note events a queued subscriber could not take (its queue full), by subscriber",
    ["subscriber"],
)
WEBHOOKS = Counter(
    "syncd_webhook_deliveries_total",
    "Webhook delivery attempts by event type and outcome: delivered (2xx), retried (an "
    "attempt failed, another follows after backoff), failed (the last attempt failed)",
    ["type", "outcome"],
)
WEBHOOKS_DISABLED = Counter(
    "syncd_webhook_endpoints_disabled_total",
    "Webhook endpoints disabled after SYNCD_WEBHOOK_DISABLE_AFTER failed deliveries in a row",
)
WEBHOOK_LATENCY = Histogram(
    "syncd_webhook_latency_seconds",
    "Time from sending a webhook to its receiver's response",
    buckets=_LATENCY,
)
# -- AMQP (RABBITMQ_URL) -----------------------------------------------------------------
AMQP_PUBLISHED = Counter(
    "syncd_amqp_published_total", "Messages sent to the AMQP exchange (confirmed or not)"
)
AMQP_CONFIRMED = Counter(
    "syncd_amqp_confirmed_total", "Messages the broker confirmed (then removed from the outbox)"
)
AMQP_RETURNED = Counter(
    "syncd_amqp_returned_total",
    "Messages the broker returned as unroutable (no queue bound for their routing key)",
)
AMQP_DROPPED = Counter(
    "syncd_amqp_dropped_total",
    "Messages not put in the AMQP outbox because it held SYNCD_AMQP_OUTBOX_MAX already",
)
AMQP_OUTBOX_DEPTH = Gauge(
    "syncd_amqp_outbox_depth",
    "Messages waiting in the AMQP outbox for the broker's confirm",
    multiprocess_mode="livemax",
)
AMQP_CONNECTED = Gauge(
    "syncd_amqp_connected",
    "1 while this instance's connection to the AMQP broker is up",
    multiprocess_mode="livemax",
)
AMQP_RECONNECTS = Counter(
    "syncd_amqp_reconnects_total", "Connections to the AMQP broker made again after a loss"
)
ERRORS = Counter(
    "syncd_errors_total",
    "Errors caught, logged and carried on from, by component",
    ["component"],
)

_SYNC_KINDS = {0: "sync_step1", 1: "sync_step2", 2: "update"}
_KINDS = {1: "awareness", 2: "auth", 3: "query_awareness"}


def frame_type(frame: bytes) -> str:
    """The y-websocket message type of a frame, from its first bytes (no parsing)."""
    if not frame:
        return "empty"
    if frame[0] == 0:
        return _SYNC_KINDS.get(frame[1], "sync_other") if len(frame) > 1 else "sync_other"
    return _KINDS.get(frame[0], "other")


#: frames counted since the last flush, by (direction, type): [frames, bytes]. A plain
#: addition per frame; the Prometheus counters (a lock each) are updated in batches.
_pending_frames: dict[tuple[str, str], list[int]] = {}


def count_frame(direction: str, kind: str, size: int) -> None:
    """Count one WebSocket frame; cheap, as it runs for every frame sent and received."""
    entry = _pending_frames.get((direction, kind))
    if entry is None:
        entry = _pending_frames[(direction, kind)] = [0, 0]
    entry[0] += 1
    entry[1] += size


def pending_entry(direction: str, kind: str) -> list[int]:
    """The [frames, bytes] `count_frame(direction, kind, ...)` adds to, for a caller that
    counts one kind of frame itself (two additions, no call). Entries are never removed:
    `flush_pending` zeroes them in place."""
    entry = _pending_frames.get((direction, kind))
    if entry is None:
        entry = _pending_frames[(direction, kind)] = [0, 0]
    return entry


#: the last frame `count_sent` counted and its entry: a fan-out pass sends one frame
#: object to every peer, so its type is read once per pass, not once per peer
_last_sent: tuple[bytes, list[int]] = (b"", [0, 0])


def count_sent(frame: bytes) -> None:
    """`count_frame("out", frame_type(frame), len(frame))`, cheaper for the same frame
    object sent to many peers in a row."""
    global _last_sent
    last, entry = _last_sent
    if last is not frame:  # `_last_sent` holds `last`, so no new frame can have its id
        kind = ("out", frame_type(frame))
        found = _pending_frames.get(kind)
        if found is None:
            found = _pending_frames[kind] = [0, 0]
        entry = found
        _last_sent = (frame, entry)
    entry[0] += 1
    entry[1] += len(frame)


def count_sent_many(frame: bytes, copies: int) -> None:
    """`count_sent(frame)` `copies` times in one call: a fan-out pass counts what it
    wrote once, not once per peer (`syncd.room.fanout`)."""
    global _last_sent
    last, entry = _last_sent
    if last is not frame:
        kind = ("out", frame_type(frame))
        found = _pending_frames.get(kind)
        if found is None:
            found = _pending_frames[kind] = [0, 0]
        entry = found
        _last_sent = (frame, entry)
    entry[0] += copies
    entry[1] += copies * len(frame)


#: the last frames `count_sent_all` counted and their entries with each frame's size
_last_sent_all: tuple[tuple[bytes, ...], tuple[tuple[list[int], int], ...]] = ((), ())


def count_sent_all(frames: tuple[bytes, ...]) -> None:
    """`count_sent` for each of `frames`, cheaper for the same tuple sent to many peers
    in a row: a pass that sends every peer an update and a cursor move alternates two
    frames, so `count_sent`'s one-frame memo missed on every frame."""
    global _last_sent_all
    last, counts = _last_sent_all
    if last is not frames:  # `_last_sent_all` holds `last`: no new tuple can have its id
        found = []
        for frame in frames:
            kind = ("out", frame_type(frame))
            entry = _pending_frames.get(kind)
            if entry is None:
                entry = _pending_frames[kind] = [0, 0]
            found.append((entry, len(frame)))
        counts = tuple(found)
        _last_sent_all = (frames, counts)
    for entry, size in counts:
        entry[0] += 1
        entry[1] += size


def flush_pending() -> None:
    """Move the pending frame counts and batched metrics into the Prometheus values."""
    flush_batched()
    for (direction, kind), entry in _pending_frames.items():
        if entry[0]:
            WS_MESSAGES.labels(direction, kind).inc(entry[0])
            WS_BYTES.labels(direction, kind).inc(entry[1])
            entry[0] = entry[1] = 0


@contextlib.asynccontextmanager
async def frame_flusher(interval: float = 1.0) -> AsyncIterator[None]:
    """Flush frame counts and batched metrics every `interval` seconds (and at exit), so
    other processes' scrapes in multi-process mode lag by at most that; a scrape of this
    process is exact."""

    async def flush_forever() -> None:
        while True:
            await asyncio.sleep(interval)
            flush_pending()

    task = asyncio.get_running_loop().create_task(flush_forever())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        flush_pending()


def render(multiproc_dir: Path | None) -> tuple[bytes, str]:
    """The exposition text and its content type."""
    flush_pending()
    if multiproc_dir is None:
        return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=str(multiproc_dir))
    return generate_latest(registry), CONTENT_TYPE_LATEST


class _Family:
    """One metric family as a collector, so `generate_latest` (public API) formats it alone."""

    def __init__(self, family: Metric) -> None:
        self._family = family

    def collect(self) -> list[Metric]:
        return [self._family]


async def render_in_slices(
    multiproc_dir: Path | None, slice_seconds: float = 0.0005
) -> tuple[bytes, str]:
    """`render` for the event loop that serves the rooms: the same text, formatted one
    metric family at a time with a loop turn between two once about `slice_seconds` of CPU
    is spent. Formatting every family in one go took 2-6 ms of CPU per scrape, held every
    delivery behind it (bench/loop_turns.py). Multi-process mode merges files in one
    collector and is rendered at once, as before."""
    if multiproc_dir is not None:
        return render(multiproc_dir)
    flush_pending()
    parts: list[bytes] = []
    clock = time.thread_time
    start = clock()
    for family in REGISTRY.collect():  # the registry's lock is not held while it yields
        parts.append(generate_latest(_Family(family)))
        if clock() - start >= slice_seconds:
            await asyncio.sleep(0)
            start = clock()
    return b"".join(parts), CONTENT_TYPE_LATEST


def process_exited(multiproc_dir: Path | None) -> None:
    """Drop this process's live gauges from the merged view (multi-process mode)."""
    if multiproc_dir is not None:
        multiprocess.mark_process_dead(os.getpid(), path=str(multiproc_dir))
