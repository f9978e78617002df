"""`syncd.room.apply.apply_update` does what pycrdt's `Doc.apply_update` does."""

from __future__ import annotations

import pytest
from pycrdt import Doc, Text

from syncd.room.apply import apply_update


def _updates(count: int) -> list[bytes]:
    doc = Doc(client_id=7)
    text = doc.get("text", type=Text)
    made = []
    for i in range(count):
        state = doc.get_state()
        text.insert(len(text), "abc"[i % 3])
        made.append(doc.get_update(state))
    return made


def _text(doc: Doc) -> str:
    return str(doc.get("text", type=Text))


def test_alone_and_in_a_transaction_as_pycrdt() -> None:
    updates = _updates(6)
    mine, theirs = Doc(), Doc()
    for update in updates[:3]:
        apply_update(mine, update)
        theirs.apply_update(update)
    with mine.transaction():
        for update in updates[3:]:
            apply_update(mine, update)
    with theirs.transaction():
        for update in updates[3:]:
            theirs.apply_update(update)
    assert _text(mine) == _text(theirs) == "abcabc"
    assert mine.get_state() == theirs.get_state()
    assert mine._txn is None


def test_a_refused_update_leaves_no_transaction_behind() -> None:
    doc = Doc()
    with pytest.raises(ValueError):
        apply_update(doc, b"\x01\x01")
    assert doc._txn is None
    apply_update(doc, _updates(1)[0])  # the doc takes updates again
    assert _text(doc) == "a"
