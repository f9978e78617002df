"""Merging many updates in bounded groups gives the doc that applying them all gives."""

from __future__ import annotations

from pycrdt import Doc, Text

from syncd.updates import merge


def test_merging_in_groups_equals_applying_every_update() -> None:
    updates: list[bytes] = []
    doc = Doc()
    text = doc.get("t", type=Text)
    doc.observe(lambda event: updates.append(event.update))
    for i in range(1000):
        text.insert(len(text) if i % 7 else 0, chr(ord("a") + i % 26))
        if i % 50 == 49:
            del text[0:3]
    merged = Doc()
    merged.apply_update(merge(updates))
    assert str(merged.get("t", type=Text)) == str(text)
    assert merge(updates[:1]) == updates[0]
