"""compact_state: the doc every update gives, re-encoded small, and nothing ever lost — not
the structs whose dependencies are missing, nor deletes of items not (yet) held."""

from __future__ import annotations

import random

import pycrdt
from pycrdt import Array, Doc, Map, Text

from syncd.updates import LARGE, compact_state, compact_steps, merge, run_steps


def recording(client_id: int) -> tuple[Doc, list[bytes]]:
    doc = Doc(client_id=client_id)
    updates: list[bytes] = []
    doc.observe(lambda event: updates.append(event.update))
    return doc, updates


def keystrokes(count: int, client_id: int = 1, name: str = "t") -> tuple[Doc, list[bytes]]:
    """`count` one-character transactions typed at the end of a Y.Text, 1 in 20 a
    backspace."""
    doc, updates = recording(client_id)
    text = doc.get(name, type=Text)
    rnd = random.Random(client_id)
    for i in range(count):
        if i % 20 == 19:
            del text[len(text) - 1]
        else:
            text.insert(len(text), rnd.choice("abcdefgh ij"))
    return doc, updates


def applied(*updates: bytes) -> Doc:
    doc = Doc()
    for update in updates:
        doc.apply_update(update)
    return doc


def text_of(doc: Doc, name: str = "t") -> str:
    return str(doc.get(name, type=Text))


def test_gives_the_doc_all_updates_give_and_is_smaller_than_the_merge() -> None:
    source, updates = keystrokes(3000)
    compact = compact_state(updates)
    loaded = applied(compact)
    assert text_of(loaded) == text_of(source) == text_of(applied(*updates))
    assert loaded.get_state() == source.get_state() == applied(*updates).get_state()
    assert compact == applied(*updates).get_update()
    assert len(compact) * 3 < len(merge(updates))


def test_several_clients_types_and_any_order() -> None:
    a, updates_a = recording(1)
    b, updates_b = recording(2)
    for i in range(300):
        a.get("t", type=Text).insert(0, "a")
        a.get("m", type=Map)[f"k{i % 7}"] = i
        if i % 10 == 0:
            b.apply_update(a.get_update(b.get_state()))
            text = b.get("t", type=Text)
            text.insert(len(text) // 2, "B")
            del text[0:2]
            b.get("l", type=Array).append(i)
            a.apply_update(b.get_update(a.get_state()))
    # `a` has seen every update. Out of order, yrs may leave some pending in the scratch doc
    # although their dependencies came in too (most of these orders do so).
    expected = applied(a.get_update())
    for seed in range(8):
        updates = updates_a + updates_b
        random.Random(seed).shuffle(updates)
        compact = compact_state(updates)
        loaded = applied(compact)
        assert loaded.get_state() == a.get_state()
        assert text_of(loaded) == text_of(a)
        assert loaded.get("m", type=Map).to_py() == a.get("m", type=Map).to_py()
        assert loaded.get("l", type=Array).to_py() == a.get("l", type=Array).to_py()
        assert len(compact) == len(expected.get_update())


def test_a_snapshot_plus_a_tail() -> None:
    source, updates = keystrokes(6000)
    snapshot = compact_state(updates[:5000])
    assert len(snapshot) >= LARGE  # applied on its own, not merged into a group
    compact = compact_state([snapshot, *updates[5000:]])
    assert compact == compact_state(updates)
    assert text_of(applied(compact)) == text_of(source)
    assert compact_state([compact]) == compact


def test_keeps_structs_after_a_gap_in_their_clients_clocks() -> None:
    # The state vector of an update counts only clocks contiguous from 0, so here it equals
    # the scratch doc's: only the check of what lies beyond the doc's state vector sees
    # that "def" stayed pending.
    doc, updates = recording(1)
    text = doc.get("t", type=Text)
    for part in ("abc", "def", "ghi"):
        text += part
    first, second, third = updates
    compact = compact_state([first, third])
    assert pycrdt.get_state(merge([first, third])) == applied(first, third).get_state()
    assert text_of(applied(compact)) == "abc"
    assert text_of(applied(compact, second)) == "abcdefghi"
    assert text_of(applied(second, compact)) == "abcdefghi"


def test_keeps_structs_whose_origin_is_missing() -> None:
    a, updates_a = recording(1)
    a.get("t", type=Text).insert(0, "hello")
    b, updates_b = recording(2)
    b.apply_update(a.get_update())
    b.get("t", type=Text).insert(2, "XY")
    insert = updates_b[-1]  # (the first is a's, applied to b)
    compact = compact_state([insert])
    assert text_of(applied(compact)) == ""
    assert text_of(applied(compact, *updates_a)) == "heXYllo"
    # ...and within a compaction of more than the update alone
    _, other = keystrokes(100, client_id=3, name="other")
    compact = compact_state([*other, insert])
    assert text_of(applied(compact, *updates_a)) == "heXYllo"


def test_keeps_a_delete_of_items_it_does_not_hold() -> None:
    doc, updates = recording(1)
    text = doc.get("t", type=Text)
    text += "hello world"
    del text[5:]
    insert, delete = updates
    compact = compact_state([delete])
    assert text_of(applied(insert, compact)) == "hello"
    assert text_of(applied(compact, insert)) == "hello"
    # The same among updates the doc does hold.
    _, other = keystrokes(200, client_id=2, name="other")
    compact = compact_state([*other, delete])
    assert text_of(applied(compact, insert)) == "hello"


def test_deletes_survive() -> None:
    doc, updates = recording(1)
    text = doc.get("t", type=Text)
    text += "hello brave new world"
    del text[5:11]
    del text[0:1]
    snapshot = compact_state(updates)
    assert text_of(applied(snapshot)) == "ello new world"
    text += "!"
    del text[0:4]  # a delete-only update on top of a snapshot
    compact = compact_state([snapshot, *updates[-2:]])
    assert text_of(applied(compact)) == " new world!"
    assert applied(compact).get_state() == doc.get_state()


def test_merging_in_what_a_compact_state_holds_leaves_it_unchanged() -> None:
    # What saving a snapshot over the stored one relies on to skip re-encoding: the new
    # state first, merge_updates keeps its structs, compact or older merged ones alike.
    _, updates = keystrokes(3000)
    compact = compact_state(updates)
    assert pycrdt.merge_updates(compact, compact_state(updates[:2000])) == compact
    assert pycrdt.merge_updates(compact, merge(updates[:2000])) == compact
    assert len(pycrdt.merge_updates(merge(updates[:2000]), compact)) > 2 * len(compact)


def test_a_client_whose_structs_all_stay_pending_is_no_encoding_mismatch() -> None:
    """A subdocument at clock 56 of a client with no earlier clock (fuzz seed 30): the
    Doc lists the client at clock 0, its encoding leaves it out; both say the same."""
    lone = bytes.fromhex(
        "0101f955382901036d6170057375622d312430333435373236382d363238352d3463613307393634"
        "392d373436353064623732613432760000"
    )
    assert pycrdt.get_state(merge([compact_state([lone])])) == pycrdt.get_state(lone)


def test_compact_steps_yields_between_pieces_and_returns_what_compact_state_does() -> None:
    """The stepwise form the embedded checkpoint runs in loop-sized slices: the same bytes
    as `compact_state`, for keystrokes of two clients and for a snapshot plus a log."""
    _, first = keystrokes(700, client_id=1)
    _, second = keystrokes(700, client_id=2, name="u")
    snapshot = compact_state(first[:400] + second[:400])
    for updates in (first + second, [snapshot, *first[400:], *second[400:]]):
        steps = compact_steps(updates)
        count = 0
        while True:
            try:
                next(steps)
            except StopIteration as done:
                result = done.value
                break
            count += 1
        assert count > 40  # a merge group, a chunk applied, a chunk's diff: one step each
        assert result == compact_state(updates)
        assert run_steps(compact_steps(updates)) == result
