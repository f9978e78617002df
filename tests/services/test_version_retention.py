"""The retention policy and the text diff, as pure functions."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from syncd.services.versions import text_diff, versions_to_drop

NOW = datetime(2024, 12, 2, 12, 0, tzinfo=UTC)


@dataclass
class V:
    number: int
    automatic: bool
    created_at: datetime


def test_recent_automatic_versions_and_manual_ones_are_kept() -> None:
    versions = [V(n, n != 2, NOW - timedelta(minutes=10 * (6 - n))) for n in range(1, 6)]
    # automatic: 1, 3, 4, 5 (all today); manual: 2
    assert versions_to_drop(versions, now=NOW, keep_recent=2, max_age_days=90) == [1, 3]
    assert versions_to_drop(versions, now=NOW, keep_recent=10, max_age_days=90) == []


def test_older_automatic_versions_thin_to_one_a_day_then_expire() -> None:
    day = timedelta(days=1)
    versions = [
        V(1, True, NOW - 200 * day),  # past max age
        V(2, False, NOW - 200 * day),  # manual: kept whatever its age
        V(3, True, NOW - 5 * day),
        V(4, True, NOW - 5 * day + timedelta(hours=1)),  # newest of that day: kept
        V(5, True, NOW - 3 * day),
        V(6, True, NOW),
    ]
    assert versions_to_drop(versions, now=NOW, keep_recent=1, max_age_days=90) == [1, 3]


def test_text_diff_names_added_and_removed_lines() -> None:
    diff = text_diff("Agenda\nPricing", "Agenda\nDiscount\nPricing", old_name="a", new_name="b")
    assert diff.added == ("Discount",)
    assert diff.removed == ()
    assert "+Discount" in diff.unified and diff.unified.startswith("--- a\n+++ b")
    changed = text_diff("one\ntwo", "one\nthree", old_name="a", new_name="b")
    assert (changed.added, changed.removed) == (("three",), ("two",))
    assert text_diff("same", "same", old_name="a", new_name="b").unified == ""
