"""`/metrics` rendered in slices of the event loop: the same text as `generate_latest`,
with other callbacks running between metric families."""

from __future__ import annotations

import asyncio

from prometheus_client import REGISTRY, generate_latest

from syncd import metrics


def _stable(text: bytes) -> list[str]:
    """The lines, less those of the process and GC collectors (their values move)."""
    return [
        line
        for line in text.decode().splitlines()
        if not line.startswith(("process_", "python_gc_", "# HELP process_", "# TYPE process_"))
        and "python_gc" not in line
    ]


async def test_render_in_slices_gives_the_same_text_and_lets_the_loop_run() -> None:
    metrics.WS_CLOSES.labels("4400").inc()
    turns = 0

    async def other_work() -> None:
        nonlocal turns
        while True:
            turns += 1
            await asyncio.sleep(0)

    ticker = asyncio.create_task(other_work())
    await asyncio.sleep(0)
    start = turns
    try:
        body, content_type = await metrics.render_in_slices(None, slice_seconds=0.0)
    finally:
        ticker.cancel()
    families = len(list(REGISTRY.collect()))
    assert families > 20
    assert turns - start >= families - 1  # a loop turn after each family
    assert content_type == metrics.render(None)[1]
    assert _stable(body) == _stable(generate_latest(REGISTRY))
    assert 'syncd_ws_closes_total{code="4400"}' in body.decode()
