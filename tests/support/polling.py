"""The one polling helper of the tests: wait for a condition, bounded, never by sleeping
for a guessed time."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


async def eventually(
    check: Callable[[], Awaitable[T]],
    *,
    timeout: float = 15.0,
    what: str = "condition",
    every: float = 0.05,
) -> T:
    """Poll `check` until it returns something truthy and return that; fail naming `what`
    and the last value seen after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        last = await check()
        if last:
            return last
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout:.0f} s (last seen: {last!r:.500})")
        await asyncio.sleep(every)
