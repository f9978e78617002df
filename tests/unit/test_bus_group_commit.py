"""`syncd.bus.commit.GroupCommit`: while one append is in flight, the calls that come wait
and go out together in one append once it returns (each answered by the append that
carried its updates); an append that fails or leaves a doc out fails those callers only."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

import pytest

from syncd.bus.commit import Batches, GroupCommit, Outcome
from tests.support.polling import eventually


class GatedAppend:
    """An append that records what it was given and returns when its gate opens."""

    def __init__(self) -> None:
        self.calls: list[list[tuple[str, list[bytes]]]] = []
        self.gate = asyncio.Event()
        self.fail: set[str] = set()

    async def __call__(self, batches: Batches) -> Outcome:
        self.calls.append([(doc_id, list(updates)) for doc_id, updates in batches])
        await self.gate.wait()
        self.gate.clear()
        return {
            doc_id: (ValueError(doc_id) if doc_id in self.fail else None) for doc_id, _ in batches
        }


async def _until(check: Callable[[], bool], what: str) -> None:
    async def holds() -> bool:
        return check()

    await eventually(holds, what=what, timeout=5.0, every=0.001)


def _batch(doc_id: str, *updates: bytes) -> Sequence[tuple[str, Sequence[bytes]]]:
    return [(doc_id, list(updates))]


async def test_calls_during_an_append_in_flight_go_out_together_after_it() -> None:
    append = GatedAppend()
    commit = GroupCommit(append)
    first = asyncio.create_task(commit(_batch("a", b"1")))
    await _until(lambda: len(append.calls) == 1, "first append sent")
    # three turns while it is in flight, one of them naming "a" again
    later = [
        asyncio.create_task(commit(_batch("b", b"2"))),
        asyncio.create_task(commit(_batch("a", b"3"))),
        asyncio.create_task(commit([("c", [b"4"]), ("b", [b"5"])])),
    ]
    await asyncio.sleep(0)
    assert len(append.calls) == 1  # nothing more sent while the first is on its way
    append.gate.set()
    assert await first == {"a": None}
    await _until(lambda: len(append.calls) == 2, "second append sent")
    assert append.calls[1] == [("b", [b"2", b"5"]), ("a", [b"3"]), ("c", [b"4"])]
    assert not any(task.done() for task in later)  # answered by the append that carries them
    append.gate.set()
    assert await asyncio.gather(*later) == [
        {"b": None},
        {"a": None},
        {"c": None, "b": None},
    ]
    assert len(append.calls) == 2


async def test_a_failure_is_told_to_the_callers_of_that_append_only() -> None:
    append = GatedAppend()
    append.fail = {"b"}
    commit = GroupCommit(append)
    first = asyncio.create_task(commit(_batch("a", b"1")))
    await _until(lambda: len(append.calls) == 1, "first append sent")
    second = asyncio.create_task(commit(_batch("b", b"2")))
    third = asyncio.create_task(commit(_batch("c", b"3")))
    append.gate.set()
    assert await first == {"a": None}
    await _until(lambda: len(append.calls) == 2, "second append sent")
    append.gate.set()
    failed = await second
    assert isinstance(failed["b"], ValueError)
    assert await third == {"c": None}


async def test_an_append_that_raises_or_leaves_a_doc_out_fails_its_docs() -> None:
    async def broken(batches: Batches) -> Outcome:
        if any(doc_id == "boom" for doc_id, _ in batches):
            raise ConnectionError("lost")
        return {}  # names no doc

    commit = GroupCommit(broken)
    raised = await commit(_batch("boom", b"1"))
    assert isinstance(raised["boom"], ConnectionError)
    left_out = await commit(_batch("x", b"2"))
    assert isinstance(left_out["x"], RuntimeError)


async def test_closing_cancels_the_waiting_callers() -> None:
    append = GatedAppend()
    commit = GroupCommit(append)
    first = asyncio.create_task(commit(_batch("a", b"1")))
    await _until(lambda: len(append.calls) == 1, "first append sent")
    second = asyncio.create_task(commit(_batch("b", b"2")))
    await asyncio.sleep(0)
    await commit.aclose()
    for task in (first, second):
        with pytest.raises(asyncio.CancelledError):
            await task
