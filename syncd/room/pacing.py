"""How often a busy room runs a fan-out pass.

Every pass costs one transport write per peer (a `write()` syscall each) and one merge,
whatever it carries; in one room of 50 peers that write per peer is most of the CPU of a
delivery. A pass that carries eight keystrokes costs about what one carrying one does
(`bench/flush_cost.py --per-pass`), so a busy room should run fewer, fuller passes, while
a quiet room's keystroke must still go out at once (latency is what users feel there).

`PassPacer` is a generic cell rate limiter (GCRA, a token bucket kept as one timestamp):
a room may run `burst` passes back to back, and after that one per `interval`. A room
typing at the pace of people (tens of keystrokes a second) never comes near it: with the
defaults it waits only when three passes fall within one millisecond. A room that does
wait collects everything that arrives meanwhile into its next pass, which is where the
writes and merges per delivery fall. Pacing only moves when a pass starts: each pass is
still appended before it is sent (durability is the room's `_flush`, unchanged).

Off unless configured (`SYNCD_PASS_INTERVAL_US`, e.g. 1000), because it is not yet shown
to pay where it matters. Measured only on a machine whose 2 cores had 12-18 runnable
processes, with `bench/pass_pacing.py` (1 room x 50, 5 writers): there the loop got ~20% of
a core, so passes already carried 12-13 keystrokes unpaced, and 1 ms changed little and
inconsistently (at 1,500 keystrokes/s one round: 2.5x fewer passes, 29% less loop CPU per
keystroke, p50/p99 31/443 ms against 1.3/42 ms; at 3,000/s, medians of 2: 18% fewer passes,
4% less CPU, p50/p99 9.5/105 ms against 4.1/410 ms). What it does on the benchmark's pinned,
otherwise idle server core is to be measured there (`bench/run.py` passes the variable on).
"""

from __future__ import annotations

import time

#: the shortest mean spacing of a busy room's passes (seconds); off by default (see above)
DEFAULT_PASS_INTERVAL = 0.0
#: passes a room may run back to back before the spacing applies
DEFAULT_PASS_BURST = 3
#: waits shorter than this are rounding of the float schedule, not waits (seconds)
_SLACK = 1e-6


class PassPacer:
    """When a room's next pass may start; `interval` 0 disables pacing."""

    __slots__ = ("_due", "_interval", "_tolerance")

    def __init__(
        self, interval: float = DEFAULT_PASS_INTERVAL, burst: int = DEFAULT_PASS_BURST
    ) -> None:
        if interval < 0 or burst < 1:
            raise ValueError("pass interval must be >= 0 and burst >= 1")
        self._interval = interval
        #: how far ahead of now the theoretical schedule may run before a pass waits
        self._tolerance = (burst - 1) * interval
        #: the theoretical start of the next pass were passes exactly `interval` apart
        self._due = 0.0

    def wait(self, now: float | None = None) -> float:
        """Seconds until a pass may start (0.0: now). Spends nothing: call `start` when
        the pass does start."""
        if now is None:
            now = time.monotonic()
        wait = self._due - self._tolerance - now
        return wait if wait > _SLACK else 0.0

    def start(self, now: float | None = None) -> None:
        """Record a pass starting at `now` (it may have waited, or been let through)."""
        if now is None:
            now = time.monotonic()
        self._due = max(self._due, now) + self._interval
