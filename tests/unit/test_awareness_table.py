"""The awareness table's expiry: only states relayed by another instance expire."""

from __future__ import annotations

import pytest

from syncd.protocol import AwarenessEntry
from syncd.room import Peer
from syncd.room import awareness as awareness_module
from syncd.room.awareness import REMOTE_TTL, AwarenessTable


class _Channel:
    closed = False


def test_remote_states_expire_unless_renewed_and_local_ones_never(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    now = [1000.0]
    monkeypatch.setattr(awareness_module.time, "monotonic", lambda: now[0])
    table = AwarenessTable()
    local = Peer(channel=_Channel(), user_id="u", can_write=True)  # type: ignore[arg-type]
    table.apply(local, [AwarenessEntry(1, 1, '{"a":1}')], max_ids=8)
    table.apply_remote([AwarenessEntry(2, 1, '{"b":1}'), AwarenessEntry(3, 1, '{"c":1}')])
    now[0] += REMOTE_TTL - 1
    # the local state moves (no clock read for it); remote 3 is renewed, 2 is not
    table.apply(local, [AwarenessEntry(1, 2, '{"a":2}')], max_ids=8)
    table.apply_remote([AwarenessEntry(3, 2, '{"c":2}')])
    now[0] += 2
    assert table.snapshot() == [AwarenessEntry(1, 2, '{"a":2}'), AwarenessEntry(3, 2, '{"c":2}')]
    now[0] += REMOTE_TTL * 10
    assert table.snapshot() == [AwarenessEntry(1, 2, '{"a":2}')]
