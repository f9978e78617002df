"""The keepalive sweeper spreads a round of pings over its ticks: every connection is
swept once per round, no tick sweeps more than its share, and rounds start `interval`
apart (a round pinging thousands of connections in one loop turn stalled every room)."""

from __future__ import annotations

from typing import Any

from syncd.transport import lean_protocol
from syncd.transport.lean_protocol import LeanWebSocketProtocol, _Keepalive
from tests.support.polling import eventually


class _Swept(LeanWebSocketProtocol):
    """A protocol with no transport: records when the sweeper reached it."""

    def __init__(self, log: list[tuple[float, int]], number: int) -> None:  # no super()
        self._swept = True
        self._log = log
        self._number = number

    def _keepalive_sweep(self, now: float, timeout: float | None) -> None:
        self._log.append((now, self._number))


async def test_a_round_is_spread_over_its_ticks_and_rounds_start_interval_apart() -> None:
    log: list[tuple[float, int]] = []
    connections: set[Any] = {_Swept(log, n) for n in range(45)}
    connections.add(object())  # not a lean protocol: never swept
    interval = 0.4
    sweeper = _Keepalive(connections, interval, timeout=None)
    lean_protocol._keepalives[id(connections)] = sweeper

    async def two_rounds() -> bool:
        return len(log) >= 90

    try:
        await eventually(two_rounds, timeout=10, what="two rounds of sweeps")
    finally:
        sweeper._timer.cancel()
        lean_protocol._keepalives.pop(id(connections), None)
    first, second = log[:45], log[45:90]
    assert sorted(n for _, n in first) == list(range(45))  # each once per round
    assert sorted(n for _, n in second) == list(range(45))
    ticks: dict[float, int] = {}
    for when, _ in log[:90]:
        ticks[when] = ticks.get(when, 0) + 1
    share = -(-45 // _Keepalive.SLICES)
    assert max(ticks.values()) == share  # never the whole round in one turn
    assert len({when for when, _ in first}) == -(-45 // share)
    # the second round began one interval after the first (not right after its last tick)
    assert second[0][0] - first[0][0] >= interval * 0.99


async def test_the_sweeper_stops_when_no_connection_is_left() -> None:
    connections: set[Any] = set()
    sweeper = _Keepalive(connections, 0.05, timeout=None)
    lean_protocol._keepalives[id(connections)] = sweeper

    async def stopped() -> bool:
        return not sweeper.active

    await eventually(stopped, timeout=10, what="the sweeper to stop")
    assert id(connections) not in lean_protocol._keepalives
