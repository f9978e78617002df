"""One pass of presence and session bookkeeping over the changes of many notes.

A pass mirrors the entries of notes someone joined to Redis (scaled mode), records every
note's session activity in one transaction, then retracts departures, mirrors the rest and
reads who is on each note elsewhere (in this order, so that an instance that finds a note
empty neither ends a session someone here has joined nor one still missing a departed
connection's statistics), announces arrivals (`UserJoined` on the events bus; Socket.IO
sends `note:user-joined`), ends the
sessions of notes nobody is connected to any more in a second one, and announces
departures (`UserLeft`). Who is on a note elsewhere is looked up again inside that second
transaction, with the sessions locked (`SessionStore.close_many`): what the pass read at
its start may be stale by then, and ending on it ended the note's next session when
another instance had opened it meanwhile. Announcements follow state, not
events: a user is announced when present here and not yet announced, and their leave
only once they were announced, so `note:user-joined` always comes before
`note:user-left` for the same user and note, and a visit shorter than a pass is never
announced at all. Users connected on another instance are announced by that one.
"""

from __future__ import annotations

import logging

from syncd import metrics
from syncd.services.events import EventBus, UserJoined, UserLeft
from syncd.services.presence.backlog import NoteChanges
from syncd.services.presence.presence import Connection, PresenceBoard
from syncd.services.sessions import SessionService
from syncd.storage import SessionActivity, StorageError

log = logging.getLogger(__name__)


def _latest(conns: list[Connection], users: dict[str, None]) -> dict[str, Connection]:
    """Each of `users`' newest connection among `conns` (the last of equals in `conns`'
    order): one pass over the note's connections, not a sort of them all per pass."""
    latest: dict[str, Connection] = {}
    for conn in conns:
        if conn.user_id in users:
            best = latest.get(conn.user_id)
            if best is None or conn.joined_at >= best.joined_at:
                latest[conn.user_id] = conn
    return latest


class Bookkeeper:
    """Runs passes (`run`); keeps which users were announced on which notes."""

    def __init__(self, board: PresenceBoard, sessions: SessionService, events: EventBus) -> None:
        self.board = board
        self.sessions = sessions
        self._events = events
        #: (note, user) announced as joined here and not yet as left
        self._announced: set[tuple[str, str]] = set()

    async def run(self, changes: dict[str, NoteChanges]) -> dict[str, NoteChanges]:
        """One pass; returns what must be retried (a session transaction failed)."""
        # Arrivals are mirrored before they are recorded, departures retracted after:
        # another instance ends a session when Redis shows nobody, so a connection joined
        # to a session here must be visible there first (else that instance ended it under
        # an editor still here, whose later statistics went to an ended session), and a
        # departed connection's updates must be in the session before it disappears.
        retry: dict[str, NoteChanges] = {}
        published = await self._mirror_arrivals(changes)
        activity = [
            SessionActivity(note_id, tuple(sorted(c.joined)), c.updates, c.size)
            for note_id, c in changes.items()
            if c.joined or c.updates or c.size
        ]
        if activity:
            try:
                await self.sessions.record(activity)
            except StorageError as exc:
                log.warning("recording %d notes' sessions failed (retried): %s", len(activity), exc)
                metrics.ERRORS.labels("sessions").inc()
                retry = {item.note_id: changes[item.note_id] for item in activity}
        others = await self._mirror(changes, published)
        await self._arrivals(changes, others)
        # Candidates after the first transaction, confirmed in the second (`_alone`):
        # whoever connected meanwhile, here or elsewhere, keeps the session.
        ends = [
            note_id
            for note_id, change in changes.items()
            if change.left
            and note_id not in retry
            and not self.board.local(note_id)
            and others[note_id] == set()
        ]
        unknown = [
            n
            for n, c in changes.items()
            if c.left and others[n] is None and not self.board.local(n)
        ]
        if ends:
            unsure: list[str] = []

            async def alone(note_ids: list[str]) -> list[str]:
                return await self._alone(note_ids, unsure)

            try:
                await self.sessions.end_many(ends, confirm=alone)
            except StorageError as exc:
                log.warning("ending %d notes' sessions failed (retried): %s", len(ends), exc)
                metrics.ERRORS.labels("sessions").inc()
                unknown += ends
            unknown += unsure
        for note_id in unknown:  # look again next pass (recorded already: nothing to add)
            retry.setdefault(note_id, NoteChanges(left=True))
        await self._departures(changes, others)
        return retry

    async def _alone(self, note_ids: list[str], unsure: list[str]) -> list[str]:
        """The notes nobody is connected to now, here or on another instance (asked
        while their sessions are locked); those Redis could not tell about go to
        `unsure`."""
        alone: list[str] = []
        failed, last = 0, None
        for note_id in note_ids:
            if self.board.local(note_id):
                continue
            try:
                others = await self.board.others(note_id)
            except Exception as exc:  # Redis down: keep the session, look again later
                failed, last = failed + 1, exc
                unsure.append(note_id)
                continue
            if not others:
                alone.append(note_id)
        if failed:
            log.warning("reading presence of %d notes failed: %s", failed, last)
            metrics.ERRORS.labels("presence").inc(failed)
        return alone

    async def _mirror_arrivals(self, changes: dict[str, NoteChanges]) -> set[str]:
        """Publish who is here on the notes someone joined (scaled mode); returns those
        published. A failure is left to `_mirror`, which publishes them again."""
        published: set[str] = set()
        if self.board.remote is None:
            return published
        for note_id, change in changes.items():
            if change.joined and self.board.local(note_id):
                try:
                    await self.board.publish(note_id)
                except Exception:  # Redis down: `_mirror` tries again, and logs it
                    continue
                published.add(note_id)
        return published

    async def _mirror(
        self, changes: dict[str, NoteChanges], published: set[str]
    ) -> dict[str, set[str] | None]:
        """Retract who left, publish who is here (unless `_mirror_arrivals` just did; who
        joined since is the next pass's); the users on other instances per note (None
        where Redis could not tell)."""
        if self.board.remote is None:
            return {note_id: set() for note_id in changes}
        others: dict[str, set[str] | None] = {}
        failed, last = 0, None
        for note_id, change in changes.items():
            try:
                await self.board.retract(note_id, change.gone)
                if note_id not in published and self.board.local(note_id):
                    await self.board.publish(note_id)
                others[note_id] = await self.board.others(note_id)
            except Exception as exc:  # Redis down: presence expires on its own
                failed, last = failed + 1, exc
                others[note_id] = None
        if failed:
            log.warning("mirroring presence of %d notes failed: %s", failed, last)
            metrics.ERRORS.labels("presence").inc(failed)
        return others

    async def _arrivals(
        self, changes: dict[str, NoteChanges], others: dict[str, set[str] | None]
    ) -> None:
        for note_id, change in changes.items():
            latest = _latest(self.board.local(note_id), change.users)
            for user_id in change.users:
                conn = latest.get(user_id)
                if conn is None or (note_id, user_id) in self._announced:
                    continue
                self._announced.add((note_id, user_id))
                if user_id not in (others[note_id] or ()):
                    await self._events.publish(
                        UserJoined(note_id, user_id, conn.name, conn.source, conn.sid)
                    )

    async def _departures(
        self, changes: dict[str, NoteChanges], others: dict[str, set[str] | None]
    ) -> None:
        for note_id, change in changes.items():
            here = {conn.user_id for conn in self.board.local(note_id)}
            for user_id in change.users:
                farewell = change.farewells.get(user_id)
                if farewell is None or user_id in here:
                    continue
                if (note_id, user_id) not in self._announced:
                    continue  # never announced (a visit shorter than a pass): nothing to undo
                self._announced.discard((note_id, user_id))
                if user_id not in (others[note_id] or ()):
                    await self._events.publish(
                        UserLeft(note_id, user_id, farewell.name, farewell.source, farewell.sid)
                    )

    def forget(self) -> None:
        """At shutdown: nothing is announced any more (the sockets are gone)."""
        self._announced.clear()
