"""The live state of one doc on this instance: the pycrdt Doc, its awareness, its peers.

Writes take this path: a peer's update is applied to the doc at once (so a sync step 1
answered right after already includes it), queued, and a single flush task per room then
(1) merges everything queued during the last event-loop turns into one update and appends
it to the durable log, and only after that (2) sends that update as one frame per peer.
Merging the updates of one turn is what makes fan-out cheap: one encode, one log row and
one write per peer per turn instead of one per update per peer.

A peer's update that needs structs the doc lacks (a stock client typing right after it
reconnects, before its sync step 2 has brought its offline edits) is held for that peer,
neither applied, logged nor relayed, and applied once an update from anyone brings what it
needs; a peer holding more than its bounds allow is closed with 4400.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine, Sequence
from contextlib import AbstractContextManager
from typing import Any

from pycrdt import Doc

from syncd import metrics
from syncd.protocol import (
    DEFAULT_MAX_MESSAGE_BYTES,
    Auth,
    Awareness,
    Message,
    ProtocolError,
    QueryAwareness,
    SyncStep1,
    SyncStep2,
    SyncUpdate,
    UpdateShape,
    YLimits,
    check_dependencies,
    check_splits,
    check_state_vector,
    check_update,
    encode_awareness,
    encode_awareness_update,
    encode_permission_denied,
    encode_sync_step1,
    encode_sync_step2,
    encode_update,
    parse_awareness_update,
    plain_keystroke,
    read_state_vector,
    surrogate_pairs,
)
from syncd.protocol.close_codes import CLOSE_INTERNAL_ERROR, CLOSE_NOT_FOUND, CLOSE_TRY_AGAIN
from syncd.room import fanout as _fanout
from syncd.room.apply import apply_update
from syncd.room.awareness import AwarenessTable
from syncd.room.backend import DocBackend, DocGone
from syncd.room.frames import FramePlan, sole_origin
from syncd.room.pacing import DEFAULT_PASS_BURST, DEFAULT_PASS_INTERVAL, PassPacer
from syncd.room.passes import PassScheduler, scheduler_for
from syncd.room.peer import Peer
from syncd.updates import EMPTY_UPDATE, merge

log = logging.getLogger(__name__)

EMPTY_STATE_VECTOR = b"\x00"
#: origin of updates that did not come from a local peer (REST edits, other instances)
SERVER = None
#: counted once durable: an update the room applied is appended exactly once (batched:
#: these run every flush, see `syncd.metrics._batched`)
_APPLIED_LOCAL = metrics.APPLIED_LOCAL
_FANOUT_LOCAL = metrics.FANOUT_LOCAL


#: how many of a peer's updates may wait for their dependencies at once (a stock client
#: only holds back what it types between connecting and sending its sync step 2)
DEFAULT_MAX_HELD_UPDATES = 256
#: the messages that write; a tuple, not `SyncUpdate | SyncStep2`, which builds a union
#: object on every call (about 0.5 µs per keystroke)
_WRITES = (SyncUpdate, SyncStep2)
#: y-websocket's messageSync: the first byte of every sync frame (awareness is 1)
_SYNC_FRAME = 0


class RoomLimits:
    """Per-room bounds, taken from the settings by whoever builds rooms."""

    __slots__ = (
        "max_awareness_bytes",
        "max_awareness_ids",
        "max_held_bytes",
        "max_held_updates",
        "pass_burst",
        "pass_interval",
        "send_timeout",
        "yjs",
    )

    def __init__(
        self,
        *,
        max_awareness_bytes: int = 64 * 1024,
        max_awareness_ids: int = 8,
        send_timeout: float = 5.0,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
        max_held_updates: int = DEFAULT_MAX_HELD_UPDATES,
        pass_interval: float = DEFAULT_PASS_INTERVAL,
        pass_burst: int = DEFAULT_PASS_BURST,
    ) -> None:
        self.max_awareness_bytes = max_awareness_bytes
        self.max_awareness_ids = max_awareness_ids
        self.send_timeout = send_timeout
        #: caps of the walk every state vector and update from a peer takes first
        self.yjs = YLimits.for_message_bytes(max_message_bytes)
        #: bounds of what one peer may have waiting for missing structs (see `HeldUpdates`)
        self.max_held_updates = max_held_updates
        self.max_held_bytes = max_message_bytes
        #: spacing of a busy room's fan-out passes (see `syncd.room.pacing`; 0: none)
        self.pass_interval = pass_interval
        self.pass_burst = pass_burst


class HeldUpdates:
    """A peer's updates that need structs the room does not have yet, oldest first.

    Yjs keeps such an update pending until its dependencies arrive; pycrdt 0.14 can
    crash the process integrating pending structs, so the room keeps them itself and
    hands each to pycrdt only once everything it needs is in the doc. Nothing held is
    logged or relayed: it does not exist for anyone else until it is applied.
    """

    __slots__ = ("bytes", "updates")

    def __init__(self) -> None:
        self.updates: list[tuple[bytes, UpdateShape]] = []
        self.bytes = 0


def _refused(exc: BaseException, what: str) -> ProtocolError:
    """What pycrdt raised on a peer's data, as the error that closes that peer alone.

    pycrdt raises ValueError for data it cannot decode, and a Rust panic surfaces as
    pyo3's PanicException, a BaseException: both are the peer's fault once the walker
    let the frame through, so neither may reach the event loop as a traceback.
    """
    return ProtocolError(f"{what} rejected by pycrdt: {type(exc).__name__}: {exc}", kind="rejected")


def _is_pycrdt_failure(exc: BaseException) -> bool:
    return isinstance(exc, Exception) or type(exc).__name__ == "PanicException"


#: stands for a peer that is the origin of none of a pass's frames
_NOBODY = object()
#: what `_deliver_now` returns when every peer took its frames (never appended to)
_NO_SENDS: list[tuple[Peer, tuple[bytes, ...]]] = []
#: a pass taken from the queues: its local updates (origin, update), relays, the local
#: updates merged (None if there were none) and when the first of them was queued
_Taken = tuple[
    list[tuple[Peer | None, bytes]], list[tuple[Peer | None, bytes]], bytes | None, float
]


def _frames_for(
    peer: object,
    updates: list[tuple[Peer | None, bytes]],
    plan: FramePlan | None,
    others: list[tuple[Peer | None, bytes]],
) -> tuple[bytes, ...]:
    """What one pass sends `peer`, in order: relayed updates, the turn's merged update,
    then awareness; nothing that `peer` itself sent (its awareness comes back to it only
    as the echo the room queued with no origin)."""
    frames = [f for origin, f in updates if origin is not peer]
    if plan is not None and peer is not plan.sole_origin:
        frames.append(plan.frame)
    frames.extend(f for origin, f in others if origin is not peer)
    return tuple(frames)


def _send_now(peer: Peer, frames: tuple[bytes, ...]) -> bool:
    """Write all of `frames` to `peer`'s connection without waiting, as one transport
    write when there are several; False: none was written (the caller awaits them)."""
    if len(frames) == 1:
        return peer.channel.send_now(frames[0])
    return peer.channel.send_all_now(frames)


class Room:
    """One doc's live state. Created and unloaded by the `RoomRegistry` only."""

    def __init__(self, doc_id: str, backend: DocBackend, limits: RoomLimits | None = None) -> None:
        self.doc_id = doc_id
        self.doc: Doc[Any] = Doc()
        self.peers: set[Peer] = set()
        self.awareness = AwarenessTable()
        #: connections and API calls currently using the room; unload waits for zero
        self.holds = 0
        #: changed since the last checkpoint (snapshot + note metadata)
        self.dirty = False
        self.last_editor: str | None = None
        self._backend = backend
        self._limits = limits or RoomLimits()
        self._pending: list[tuple[Peer | None, bytes]] = []
        self._relays: list[tuple[Peer | None, bytes]] = []
        self._flush_task: asyncio.Task[None] | None = None
        #: queued on the loop's pass scheduler (`syncd.room.passes`), which is cached here
        self._scheduled = False
        self._passes: PassScheduler | None = None
        #: the pass the scheduler took and has not finished yet
        self._taken: _Taken | None = None
        #: None while pacing is off (the default): no pacer call on every pass
        self._pacer = (
            PassPacer(self._limits.pass_interval, self._limits.pass_burst)
            if self._limits.pass_interval > 0
            else None
        )
        #: every pass in the room's own task, as before the scheduler: a paced room, or a
        #: backend with no group commit, made without awaiting (`appends_now`: SQLite) or
        #: awaited once for a turn's rooms (`groups_appends`: Redis)
        self._own_task = self._pacer is not None or not (
            getattr(backend, "appends_now", False) or getattr(backend, "groups_appends", False)
        )
        self._applied = 0
        self._remote_changes = 0
        self._batch_started = 0.0
        self._full_state: tuple[int, bytes] | None = None
        #: the sync step 1 frame `join` sends, with the `_changes()` and doc it is of
        self._step1: tuple[int, Doc[Any], bytes] | None = None
        self._journaled = 0
        #: set when the log catches up; made only when someone waits (a joiner's sync step
        #: 2), not once per flush
        self._progress: asyncio.Event | None = None
        #: the note was deleted: nothing more is stored or relayed
        self.gone = False
        self._closing: set[asyncio.Task[None]] = set()
        #: the doc's state vector as a dict, for the dependency check of peers' updates;
        #: kept up to date from their checked blocks (decoding the doc's state for every
        #: keystroke cost a third of the throughput of a 50-writer room), dropped when
        #: anything else changes the doc
        self._clocks: dict[int, int] | None = None
        #: updates of peers waiting for missing structs, by peer (only peers holding any)
        self._held: dict[Peer, HeldUpdates] = {}
        #: (client, clock) of the second UTF-16 unit of every character outside the BMP
        #: in the doc: no update may split an item there (see `check_splits`)
        self._pairs: set[tuple[int, int]] = set()
        #: remote updates applied before `load` (the bus subscribes first), kept in case
        #: `load` has to start from a fresh Doc
        self._before_load: list[bytes] | None = []

    # -- loading -------------------------------------------------------------------------

    def load(self, updates: Sequence[bytes]) -> None:
        """Apply stored updates (snapshot, then the log's tail) before anyone joins.

        In one transaction, or, if pycrdt refuses that, in one each, as they were applied
        live: between transactions yrs collects deleted items, and an item whose parent
        was collected by then is fine live yet refused while the parent is still there
        (see `syncd.updates`). Raises what pycrdt raises if that fails too.
        """
        self._clocks = None
        stored = [update for update in updates if update and update != EMPTY_UPDATE]
        early, self._before_load = self._before_load, None
        try:
            with self.doc.transaction(origin="load"):
                for update in stored:
                    self.doc.apply_update(update)
        except BaseException as exc:
            if not _is_pycrdt_failure(exc):
                raise
            metrics.ERRORS.labels("room_load").inc()
            log.warning(
                "room %s: stored updates do not apply in one transaction (%s: %.200s); "
                "applying them one by one",
                self.doc_id,
                type(exc).__name__,
                exc,
            )
            # the failed transaction may have applied part of them: start afresh, with
            # what other instances sent meanwhile after them
            self.doc = Doc()
            for update in [*stored, *(early or [])]:
                self.doc.apply_update(update)
        for update in stored:
            self._note_pairs(update)

    # -- peers ---------------------------------------------------------------------------

    def join(self, peer: Peer) -> list[bytes]:
        """Add a peer; return the frames the stock handshake starts with (sync step 1 and
        the awareness states already known)."""
        self.peers.add(peer)
        # The step 1 frame is cached like `_sync_step2`'s full state, until the doc changes:
        # a join storm on an unchanged doc encodes it once. Were it ever stale, it would
        # only make the client send updates the doc already has.
        changes = self._changes()
        step1 = self._step1
        if step1 is None or step1[0] != changes or step1[1] is not self.doc:
            step1 = self._step1 = (changes, self.doc, encode_sync_step1(self.doc.get_state()))
        frames = [step1[2]]
        states = self.awareness.snapshot()
        if states:
            frames.append(encode_awareness(encode_awareness_update(states)))
        return frames

    def leave(self, peer: Peer) -> None:
        """Remove a peer; its awareness states are removed for everyone else."""
        self.peers.discard(peer)
        # What it held is dropped: the server's state vector lacks it, so the client's
        # sync step 2 sends it again when it reconnects.
        self._held.pop(peer, None)
        removals = self.awareness.remove_peer(peer)
        if removals:
            payload = encode_awareness_update(removals)
            self._backend.publish_awareness(self.doc_id, payload)
            if self.peers:
                self._relays.append((peer, encode_awareness(payload)))
                self._schedule_flush()

    # -- messages from peers -------------------------------------------------------------

    def burst(self) -> AbstractContextManager[object]:
        """One doc transaction around the messages of one read from a peer (`handle` each
        inside it): their updates are integrated and committed once, not once each. An
        update refused halfway leaves the ones before it applied and queued."""
        return self.doc.transaction()

    @property
    def durable(self) -> bool:
        """Every update applied so far is in the durable log (`wait_durable` would not wait)."""
        return self._journaled >= self._applied

    def handle(self, peer: Peer, message: Message) -> list[bytes]:
        """Process one parsed message from `peer`; return the frames to answer it with.

        Raises `ProtocolError` when the message cannot be applied (pycrdt rejects the
        update, awareness over its bound): the caller closes that connection only.
        """
        if type(message) is SyncUpdate or isinstance(message, _WRITES):
            return self.handle_update(peer, message.update)
        if type(message) is Awareness:  # a cursor move: the next most frequent
            self._handle_awareness(peer, message.payload)
            return []
        if isinstance(message, SyncStep1):
            check_state_vector(message.state_vector, self._limits.yjs)
            try:
                return [self._sync_step2(message.state_vector)]
            except BaseException as exc:
                if not _is_pycrdt_failure(exc):
                    raise
                raise _refused(exc, "state vector") from None
        if isinstance(message, QueryAwareness):
            states = self.awareness.snapshot()
            return [encode_awareness(encode_awareness_update(states))] if states else []
        if isinstance(message, Auth):
            return []  # clients have nothing to tell the server through auth messages
        raise ProtocolError(f"unexpected message {type(message).__name__}")

    def _sync_step2(self, state_vector: bytes) -> bytes:
        """Answer a sync step 1. A new client (empty state vector) gets the whole doc; that
        frame is cached until the doc changes, so a join storm encodes it once."""
        if state_vector != EMPTY_STATE_VECTOR:
            return encode_sync_step2(self.doc.get_update(state_vector))
        changes = self._changes()
        if self._full_state is None or self._full_state[0] != changes:
            self._full_state = (changes, encode_sync_step2(self.doc.get_update()))
        return self._full_state[1]

    def _changes(self) -> int:
        """Counts every change to the doc (local, remote, loaded)."""
        return self._applied + self._remote_changes

    def handle_update(self, peer: Peer, update: bytes) -> list[bytes]:
        """`handle(peer, SyncUpdate(update))`, without the message object (a keystroke's
        path: `SyncEndpoint.receive_frame`); also what `handle` does with a write."""
        if not peer.can_write:
            if peer.denied_sent:
                return []
            peer.denied_sent = True
            return [encode_permission_denied("permission denied")]
        if update == EMPTY_UPDATE:
            return []
        ids = plain_keystroke(update)
        if ids is not None and self._apply_keystroke(peer, update, ids):
            return []
        shape = check_update(update, self._limits.yjs)
        clocks = self._current_clocks()
        try:
            check_dependencies(shape, clocks)
        except ProtocolError as exc:
            if exc.kind != "missing":
                raise
            self._hold(peer, update, shape)
            return []
        self._apply_checked(peer, update, shape, clocks)
        self._release_held()
        return []

    def _apply_keystroke(
        self, peer: Peer, update: bytes, ids: tuple[int, int, int, int, int, int, int]
    ) -> bool:
        """Apply a plain keystroke (`plain_keystroke`: its `ids`) if it needs nothing the
        doc lacks and splits no character; False: it was not applied, the general path
        (`check_update`, `check_dependencies`, `check_splits`) decides, as it does for
        every other update.

        The same decisions as that path, made from the IDs alone: no `UpdateShape`,
        no dependency walk over its dicts, which cost more per keystroke than pycrdt's
        apply of it. With no surrogate pair in the update and no delete set, what is left
        to check is that its structs start at or before the doc's clock for the client,
        that its origins are in the doc or the update, and that neither origin is a split
        point at a low surrogate the doc holds.
        """
        client, start, end, left, left_clock, right, right_clock = ids
        clocks = self._clocks
        if clocks is None:
            clocks = self._current_clocks()
        have = clocks.get(client, 0)
        if start > have:
            return False  # held (or refused) by the general path
        # an origin must be in the doc or in the update (`check_dependencies`)
        top = end if end > have else have
        if left_clock >= (top if left == client else clocks.get(left, 0)):
            return False
        if right >= 0 and right_clock >= (top if right == client else clocks.get(right, 0)):
            return False
        pairs = self._pairs
        if pairs and (
            (left, left_clock + 1) in pairs or (right >= 0 and (right, right_clock) in pairs)
        ):
            return False  # `check_splits` refuses it
        # `_integrate`, inlined: drops the clocks (pycrdt may fail halfway), applies, queues
        self._clocks = None
        try:
            apply_update(self.doc, update)
        except BaseException as exc:
            if not _is_pycrdt_failure(exc):
                raise
            raise _refused(exc, "update") from None
        self._queue(update, origin=peer)
        if have < end:
            clocks[client] = end
        self._clocks = clocks
        peer.updates_in += 1
        peer.bytes_in += len(update)
        self.last_editor = peer.user_id
        if self._held:
            self._release_held()
        return True

    def _current_clocks(self) -> dict[int, int]:
        clocks = self._clocks
        if clocks is None:
            clocks = read_state_vector(self.doc.get_state())
        return clocks

    def _apply_checked(
        self, peer: Peer, update: bytes, shape: UpdateShape, clocks: dict[int, int]
    ) -> None:
        """Apply a peer's update whose dependencies the doc holds (`clocks`: its state)."""
        check_splits(shape, self._pairs, clocks)
        self._integrate(update, origin=peer)  # drops the clocks: pycrdt may fail halfway
        if shape.pairs:
            self._pairs |= shape.pairs
        # Nothing was left pending (that is what the check ensured), so every block of
        # the update is now in the doc.
        for client, (_, end) in shape.blocks.items():
            if clocks.get(client, 0) < end:
                clocks[client] = end
        self._clocks = clocks
        peer.updates_in += 1
        peer.bytes_in += len(update)
        self.last_editor = peer.user_id

    def _hold(self, peer: Peer, update: bytes, shape: UpdateShape) -> None:
        """Keep an update until its dependencies arrive; refuse it past the peer's bounds."""
        held = self._held.get(peer)
        if held is None:
            held = self._held[peer] = HeldUpdates()
        if (
            len(held.updates) >= self._limits.max_held_updates
            or held.bytes + len(update) > self._limits.max_held_bytes
        ):
            self._held.pop(peer, None)
            raise ProtocolError(
                f"more than {len(held.updates)} updates ({held.bytes} bytes) waiting for "
                "structs the server does not have",
                kind="missing",
            )
        held.updates.append((update, shape))
        held.bytes += len(update)

    def _release_held(self) -> None:
        """Apply every held update whose dependencies the doc now holds, each peer's in
        the order it sent them, until none more can be (one may unblock another's)."""
        progress = bool(self._held)
        while progress:
            progress = False
            for peer in list(self._held):
                held = self._held.get(peer)
                if held is None:
                    continue
                waiting: list[tuple[bytes, UpdateShape]] = []
                for update, shape in held.updates:
                    clocks = self._current_clocks()
                    try:
                        check_dependencies(shape, clocks)
                    except ProtocolError:
                        waiting.append((update, shape))
                        continue
                    try:
                        self._apply_checked(peer, update, shape, clocks)
                    except ProtocolError as exc:
                        self._refuse_held(peer, exc)
                        break
                    progress = True
                else:
                    if not waiting:
                        del self._held[peer]
                    elif len(waiting) != len(held.updates):
                        held.updates = waiting
                        held.bytes = sum(len(update) for update, _ in waiting)

    def held(self, peer: Peer) -> int:
        """How many of `peer`'s updates wait for structs the doc lacks."""
        held = self._held.get(peer)
        return len(held.updates) if held is not None else 0

    def _refuse_held(self, peer: Peer, exc: ProtocolError) -> None:
        """pycrdt refused a held update once its dependencies came: close its sender."""
        self._held.pop(peer, None)
        metrics.PROTOCOL_ERRORS.labels("update", exc.kind).inc()
        log.info("room %s: closing a peer whose held update was refused: %s", self.doc_id, exc)
        self._drop(peer, exc.close_code, "update rejected")

    def handle_awareness(self, peer: Peer, payload: bytes, frame: bytes) -> None:
        """`handle(peer, Awareness(payload))` of a cursor move as received: `frame`, the
        message `payload` came in (`parse_message` took it: a canonical length, nothing
        after the payload), is `encode_awareness(payload)` byte for byte, so it is
        relayed as it is when the room takes every entry (no frame built per move)."""
        self._handle_awareness(peer, payload, frame)

    def _handle_awareness(self, peer: Peer, payload: bytes, frame: bytes | None = None) -> None:
        if len(payload) > self._limits.max_awareness_bytes:
            raise ProtocolError("awareness update over its size limit")
        entries = parse_awareness_update(payload)
        accepted = self.awareness.apply(peer, entries, max_ids=self._limits.max_awareness_ids)
        if not accepted:
            return
        if len(accepted) != len(entries):
            payload = encode_awareness_update(accepted)
            frame = None
        self._backend.publish_awareness(self.doc_id, payload)
        # Sent back to its sender too, as the reference server does: a stock client that
        # hears nothing for 30 s reconnects, and its own 15 s awareness renewal echoed back
        # is what keeps an idle client in an otherwise quiet room connected.
        self._relays.append((None, encode_awareness(payload) if frame is None else frame))
        self._schedule_flush()

    # -- updates from anywhere -----------------------------------------------------------

    def apply(
        self, update: bytes, *, origin: Peer | None = SERVER, editor: str | None = None
    ) -> None:
        """Apply an update made here (a server-side edit, one posted over REST) and queue
        it for the durable log and for every peer but its origin.

        Walked and checked like a peer's: pycrdt must never get an update it would keep
        pending, and with no connection to hold it for, one that needs structs the doc
        lacks is refused (`ProtocolError`, kind "missing").
        """
        shape = self._check(update)
        self._integrate(update, origin=origin, editor=editor)
        if shape.pairs:
            self._pairs |= shape.pairs
        self._release_held()

    def check(self, update: bytes) -> None:
        """Raise `ProtocolError` unless `update` is well formed, within the walker's caps
        and applicable to this doc now: what must hold before pycrdt is given it, here or
        in a scratch doc (the content guard tries updates on a copy)."""
        self._check(update)

    def _check(self, update: bytes) -> UpdateShape:
        shape = check_update(update, self._limits.yjs)
        clocks = self._current_clocks()
        check_dependencies(shape, clocks)
        check_splits(shape, self._pairs, clocks)
        return shape

    def _note_pairs(self, update: bytes) -> None:
        """Remember where a trusted update (stored, remote, made here by pycrdt) holds
        characters outside the BMP."""
        try:
            pairs = surrogate_pairs(update)
        except ProtocolError as exc:
            metrics.ERRORS.labels("room_walk").inc()
            log.warning("room %s: a trusted update does not walk: %s", self.doc_id, exc)
            return
        if pairs:
            self._pairs |= pairs

    def record_local(
        self, update: bytes, *, origin: Peer | None = SERVER, editor: str | None = None
    ) -> None:
        """Queue an update already applied to `self.doc` (e.g. by a server-side edit made
        in a transaction) for the durable log and every peer but its origin."""
        self._note_pairs(update)
        self._queue(update, origin=origin, editor=editor)
        self._release_held()

    def _integrate(
        self, update: bytes, *, origin: Peer | None = SERVER, editor: str | None = None
    ) -> None:
        self._clocks = None
        try:
            apply_update(self.doc, update)
        except BaseException as exc:
            if not _is_pycrdt_failure(exc):
                raise
            raise _refused(exc, "update") from None
        self._queue(update, origin=origin, editor=editor)

    def _queue(
        self, update: bytes, *, origin: Peer | None = SERVER, editor: str | None = None
    ) -> None:
        self._clocks = None
        if not self._pending:
            self._batch_started = time.perf_counter()
        self._pending.append((origin, update))
        self._applied += 1
        self.dirty = True
        if editor is not None:
            self.last_editor = editor
        if self._flush_task is None and not self._scheduled and self._taken is None:
            self._schedule_flush()  # else a pass to come takes this update too

    def apply_remote(self, updates: Sequence[bytes]) -> None:
        """Updates another instance made durable: apply and relay, never re-append.

        What pycrdt refuses (ValueError, RuntimeError, a Rust panic) is dropped with one
        log line and counted: it must neither kill the bus reader nor stop the others.
        """
        self._clocks = None
        frames: list[bytes] = []
        for update in updates:
            try:
                self.doc.apply_update(update)
            except BaseException as exc:
                if not _is_pycrdt_failure(exc):
                    raise
                metrics.ERRORS.labels("remote_update").inc()
                log.warning(
                    "room %s: dropping a remote update pycrdt rejects: %s: %.200s",
                    self.doc_id,
                    type(exc).__name__,
                    exc,
                )
                continue
            self._note_pairs(update)
            if self._before_load is not None:
                self._before_load.append(update)
            frames.append(update)
        self._remote_changes += 1
        if frames:
            self.dirty = True
            try:
                relay = merge(frames)
            except BaseException as exc:
                if not _is_pycrdt_failure(exc):
                    raise
                metrics.ERRORS.labels("remote_update").inc()
                log.warning(
                    "room %s: remote updates do not merge (%s); relaying them one by one",
                    self.doc_id,
                    type(exc).__name__,
                )
                self._relays.extend((None, encode_update(update)) for update in frames)
            else:
                self._relays.append((None, encode_update(relay)))
            self._schedule_flush()
        # other instances' updates may be what a peer's held updates wait for
        self._release_held()

    def apply_remote_awareness(self, payload: bytes) -> None:
        """An awareness update from another instance: remember it for joiners, relay it."""
        try:
            entries = parse_awareness_update(payload)
        except ProtocolError:
            log.warning("room %s: dropping a malformed remote awareness update", self.doc_id)
            return
        accepted = self.awareness.apply_remote(entries)
        if accepted and self.peers:
            self._relays.append((None, encode_awareness(encode_awareness_update(accepted))))
            self._schedule_flush()

    # -- durability and fan-out ----------------------------------------------------------

    async def wait_durable(self) -> None:
        """Wait until every update applied so far is in the durable log.

        A sync step 2 reflects the whole doc, so it is only sent once what it contains can
        no longer be lost; otherwise a joiner could hold an update that a crash then drops.
        """
        target = self._applied
        while self._journaled < target:
            if self._progress is None:
                self._progress = asyncio.Event()
            await self._progress.wait()

    @property
    def idle(self) -> bool:
        """Nothing queued and no flush running."""
        return (
            self._flush_task is None
            and not self._scheduled
            and self._taken is None
            and not self._pending
            and not self._relays
        )

    async def drain(self) -> None:
        """Wait until everything queued has been logged and delivered."""
        while True:
            if self._flush_task is not None:
                await asyncio.shield(self._flush_task)
            elif self._scheduled and self._passes is not None:
                await asyncio.shield(self._passes.ran())
            elif self._taken is not None and self._passes is not None:
                await self._passes.landed()  # a group append (`append_group`) in flight
            else:
                return

    def _schedule_flush(self) -> None:
        # A running flush task takes whatever is queued meanwhile; otherwise the loop's
        # pass scheduler runs this room's pass on the next turn, with every other room
        # dirtied in this one (see `syncd.room.passes`): no task per room per pass. While
        # a group append of this room's last pass is in flight (`_taken`), what arrives
        # waits for it: `finish_pass` schedules it.
        if self._flush_task is None and not self._scheduled and self._taken is None:
            if self._own_task:
                self._start_task(self._flush())
                return
            self._scheduled = True
            passes = self._passes
            if passes is None:
                passes = self._passes = scheduler_for(asyncio.get_running_loop())
            passes.add(self)

    # -- the pass scheduler's side (`syncd.room.passes.PassRoom`) ------------------------

    def pass_backend(self) -> object:
        return self._backend

    def take_pass(self) -> bytes | bool | None:
        """Take what is queued for a pass the scheduler runs now: the merged update it
        must append (None if there is nothing to append), or False if this room runs the
        pass in its own task instead (its note deleted, or nothing left to do)."""
        self._scheduled = False
        if self._flush_task is not None or not (self._pending or self._relays):
            return False
        if self.gone:
            # its appends fail (the note is deleted): never in a group, where that failure
            # would send every other room of the turn to its own task
            self._start_task(self._flush())
            return False
        batch, self._pending = self._pending, []
        relays, self._relays = self._relays, []
        merged = None
        if batch:
            # One update for the whole batch, merged once: it is what the log stores (one
            # row or stream entry per pass, not per keystroke) and what every peer is sent.
            merged = batch[0][1] if len(batch) == 1 else merge([u for _, u in batch])
        self._taken = (batch, relays, merged, self._batch_started)
        return merged

    def finish_pass(self, appended: bool) -> None:
        """The scheduler's group commit took this room's merged update (`appended`; also
        True when there was none to append): deliver it now. Otherwise the room's own
        task appends it, retrying, and delivers it then. What was queued while a group
        append was in flight gets its pass on the next turn."""
        taken, self._taken = self._taken, None
        if taken is None:
            return
        if not appended:
            self._start_task(self._flush(taken))
            return
        batch, relays, merged, started = taken
        if batch:
            self._journaled_now(len(batch))
        if not self.gone:
            outbox = self._deliver_now(batch, merged, relays)
            if outbox:
                # a paused socket: the rest of this pass, and any later one, in a task
                self._start_task(self._flush(None, outbox, taken))
                return
            if batch:
                _FANOUT_LOCAL.observe(time.perf_counter() - started)
        if self._pending or self._relays:
            self._schedule_flush()

    def _start_task(self, flush: Coroutine[Any, Any, None]) -> None:
        self._flush_task = asyncio.get_running_loop().create_task(flush)

    def _journaled_now(self, count: int) -> None:
        self._journaled += count
        _APPLIED_LOCAL.inc(count)
        progress, self._progress = self._progress, None
        if progress is not None:
            progress.set()

    async def _flush(
        self,
        taken: _Taken | None = None,
        outbox: list[tuple[Peer, tuple[bytes, ...]]] | None = None,
        delivering: _Taken | None = None,
    ) -> None:
        """The room's own flush task, for what the pass scheduler could not finish
        without awaiting: `taken`, a pass whose append is still to be made, or `outbox`,
        the sends of the pass `delivering` that a paused socket did not take; then every
        pass queued meanwhile, until nothing is left."""
        pacer = self._pacer
        loop = asyncio.get_running_loop()
        try:
            if outbox is not None and delivering is not None:
                await self._send_outbox(outbox)
                if delivering[0]:
                    _FANOUT_LOCAL.observe(time.perf_counter() - delivering[3])
            elif taken is not None:
                await self._run_pass(taken)
            while self._pending or self._relays:
                if pacer is not None:
                    # A busy room waits here for its next pass (a quiet one never does),
                    # and whatever arrives meanwhile rides along: fewer, fuller passes.
                    delay = pacer.wait(loop.time())
                    if delay:
                        await asyncio.sleep(delay)
                    pacer.start(loop.time())
                batch, self._pending = self._pending, []
                relays, self._relays = self._relays, []
                merged = None
                if batch:
                    merged = batch[0][1] if len(batch) == 1 else merge([u for _, u in batch])
                await self._run_pass((batch, relays, merged, self._batch_started))
        finally:
            self._flush_task = None

    async def _run_pass(self, taken: _Taken) -> None:
        batch, relays, merged, started = taken
        if merged is not None:
            await self._append_durably([merged])
            self._journaled_now(len(batch))
        if not self.gone:
            await self._deliver(batch, merged, relays)
            if batch:
                _FANOUT_LOCAL.observe(time.perf_counter() - started)

    async def _append_durably(self, updates: list[bytes]) -> None:
        """Append to the log, retrying with capped backoff: an update already applied here
        is never dropped, and never fanned out before it is stored."""
        delay = 0.05
        while True:
            try:
                await self._backend.append(self.doc_id, updates)
                return
            except asyncio.CancelledError:
                raise
            except DocGone:
                log.info("room %s: note deleted; %d updates dropped", self.doc_id, len(updates))
                self.gone = True
                for peer in list(self.peers):
                    await peer.channel.close(CLOSE_NOT_FOUND, "note deleted")
                return
            except Exception:
                metrics.ERRORS.labels("room_append").inc()
                log.exception(
                    "room %s: appending %d updates failed; retrying in %.2fs",
                    self.doc_id,
                    len(updates),
                    delay,
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def _deliver(
        self,
        batch: list[tuple[Peer | None, bytes]],
        merged: bytes | None,
        relays: list[tuple[Peer | None, bytes]],
    ) -> None:
        outbox = self._deliver_now(batch, merged, relays)
        if outbox:
            await self._send_outbox(outbox)

    def _deliver_now(
        self,
        batch: list[tuple[Peer | None, bytes]],
        merged: bytes | None,
        relays: list[tuple[Peer | None, bytes]],
    ) -> list[tuple[Peer, tuple[bytes, ...]]]:
        """Send the pass to every peer whose socket takes it now; return the sends that
        have to be awaited (paused sockets, or a server other than uvicorn)."""
        if not self.peers:
            return _NO_SENDS
        if not relays and merged is not None:
            # The common pass: the turn's keystrokes, one frame for everyone. (No
            # `closed` check per peer: `send_now` drops what a closed channel is sent.)
            # Nothing is allocated per pass unless a peer's socket did not take it.
            frame = encode_update(merged)
            sole = batch[0][0] if len(batch) == 1 else sole_origin(batch)
            unsent, failed = _fanout.fan_out(self.peers, sole, frame)
            if failed is not None:
                self._drop_failed(failed)
            if unsent is None:
                return _NO_SENDS
            single = (frame,)
            return [(peer, single) for peer in unsent]
        for origin, _ in relays:
            if origin is not None:
                break
        else:
            return self._deliver_shared(batch, merged, relays)
        plan = FramePlan(batch, merged) if merged is not None else None
        outbox = []
        failed = []
        # Relayed remote updates go first: a local update of this pass may have been
        # held until one of them arrived, while none of them can depend on this
        # pass's local updates (those reach the bus only now, in `_flush`). Awareness
        # goes last, as before, so a cursor never arrives ahead of the text it is in.
        updates = [(origin, f) for origin, f in relays if f[0] == _SYNC_FRAME]
        others = [(origin, f) for origin, f in relays if f[0] != _SYNC_FRAME]
        # Every peer that is the origin of none of them gets the same frames: one
        # tuple, built once (the transport joins it once for all of them too).
        origins: set[Peer | None] = {origin for origin, _ in relays}
        if plan is not None:
            origins.add(plan.sole_origin)
        shared = _frames_for(_NOBODY, updates, plan, others)
        for peer in self.peers:
            frames = shared if peer not in origins else _frames_for(peer, updates, plan, others)
            if not frames or peer.channel.closed:
                continue
            try:
                if _send_now(peer, frames):
                    continue
            except (ConnectionError, RuntimeError, OSError):
                failed.append(peer)
                continue
            outbox.append((peer, frames))
        if failed:
            self._drop_failed(failed)
        return outbox

    def _deliver_shared(
        self,
        batch: list[tuple[Peer | None, bytes]],
        merged: bytes | None,
        relays: list[tuple[Peer | None, bytes]],
    ) -> list[tuple[Peer, tuple[bytes, ...]]]:
        """`_deliver_now` of a pass whose relays all come from no peer (a cursor move's
        echo, other instances' updates, a leaver's removals): every peer gets the same
        frames but the sole origin of the turn's update, who gets them without it. Both
        tuples are built once per pass (the common pass of a room with cursors: an update
        and a cursor move), and each goes to the transport as one write."""
        updates = [f for _, f in relays if f[0] == _SYNC_FRAME]
        others = [f for _, f in relays if f[0] != _SYNC_FRAME]
        mine = (*updates, *others)
        if merged is None:
            if len(mine) == 1:
                # a cursor move's echo (the common pass of a room with cursors): one frame
                # for every peer, through the one-call fan-out as a keystroke's pass
                frame = mine[0]
                unsent, dropped = _fanout.fan_out(self.peers, _NOBODY, frame)
                if dropped is not None:
                    self._drop_failed(dropped)
                if unsent is None:
                    return _NO_SENDS
                return [(peer, mine) for peer in unsent]
            sole: object = _NOBODY
            shared = mine
        else:
            sole = batch[0][0] if len(batch) == 1 else sole_origin(batch)
            shared = (*updates, encode_update(merged), *others)
        # one call for every peer (`fanout.fan_out_all`): each tuple framed once
        unsent, failed = _fanout.fan_out_all(self.peers, sole, shared, mine)
        if failed is not None:
            self._drop_failed(failed)
        if unsent is None:
            return _NO_SENDS
        return [(peer, mine if peer is sole else shared) for peer in unsent]

    async def _send_outbox(self, outbox: list[tuple[Peer, tuple[bytes, ...]]]) -> None:
        # What a connection did not take at once is awaited in turn (uvicorn's send only
        # waits while a transport is paused, which measured cheaper than a writer task per
        # connection). One deadline covers the whole pass; when it expires, the peer being
        # written to is the one that stopped reading: it is closed and the pass goes on
        # without it.
        sent = 0
        while sent < len(outbox):
            try:
                async with asyncio.timeout(self._limits.send_timeout):
                    while sent < len(outbox):
                        peer, frames = outbox[sent]
                        sent += 1
                        await self._send(peer, frames)
            except TimeoutError:
                log.warning("room %s: closing a peer that stopped reading", self.doc_id)
                self._drop(outbox[sent - 1][0], CLOSE_TRY_AGAIN, "too slow to keep up")

    async def _send(self, peer: Peer, frames: tuple[bytes, ...]) -> None:
        try:
            for frame in frames:
                await peer.channel.send(frame)
        except (ConnectionError, RuntimeError, OSError):
            # 1011 (internal error): 1006 is reserved for "closed without a close frame"
            # and may not be sent (RFC 6455 7.4.1)
            self._drop(peer, CLOSE_INTERNAL_ERROR, "send failed")

    def _drop_failed(self, failed: list[Peer]) -> None:
        for peer in failed:  # not while iterating over the peers
            # 1011 (internal error): 1006 is reserved for "closed without a close frame"
            # and may not be sent (RFC 6455 7.4.1)
            self._drop(peer, CLOSE_INTERNAL_ERROR, "send failed")

    def _drop(self, peer: Peer, code: int, reason: str) -> None:
        self.peers.discard(peer)
        task = asyncio.get_running_loop().create_task(peer.channel.close(code, reason))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def close_peers(self, code: int, reason: str, predicate: Callable[[Peer], bool]) -> int:
        """Close the connections `predicate` picks (revoked rights, deleted note, shutdown)."""
        chosen = [peer for peer in self.peers if predicate(peer)]
        for peer in chosen:
            await peer.channel.close(code, reason)
        return len(chosen)
