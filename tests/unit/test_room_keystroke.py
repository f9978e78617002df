"""The room's fast path for plain keystrokes (`plain_keystroke`, `Room._apply_keystroke`)
makes the decisions of the general path (`check_update`, `check_dependencies`,
`check_splits`): the same updates applied, held or refused, and the same doc after."""

from __future__ import annotations

from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pycrdt import Doc, Text

from syncd.protocol import ProtocolError, SyncUpdate, YLimits, check_update, plain_keystroke
from syncd.room import Peer, Room
from tests.support.typed import typed_updates
from tests.unit.test_room import MemoryLog, peer

LIMITS = YLimits.for_message_bytes()
CLIENTS = (1, 2, 300_000)  # a wide client ID too (a var-uint of three bytes)


def _typing(ops: list[tuple[int, int, str, bool]]) -> list[bytes]:
    """The updates of clients typing (`char`) or deleting one character at `position` in
    one Y.Text; after an op, its client's doc syncs to the others when `share` (so later
    keystrokes of theirs point at its items)."""
    docs = {client: Doc(client_id=client) for client in CLIENTS}
    updates = []
    for index, (client_index, position, char, share) in enumerate(ops):
        doc = docs[CLIENTS[client_index % len(CLIENTS)]]
        text = doc.get("t", type=Text)
        before = doc.get_state()
        chars = str(text)
        at = min(position, len(chars))
        offset = len(chars[:at].encode())  # pycrdt's Text counts UTF-8 bytes
        if char == "\b" and at < len(chars):
            del text[offset : offset + len(chars[at].encode())]
        else:
            text.insert(offset, "a" if char == "\b" else char)
        updates.append(doc.get_update(before))
        if share or index == 0:
            for other in docs.values():
                if other is not doc:
                    other.apply_update(doc.get_update(other.get_state()))
    return updates


def _mutated(update: bytes, edits: list[tuple[int, str, int]]) -> bytes:
    data = bytearray(update)
    for where, action, value in edits:
        where %= len(data) + 1
        if action == "insert" or where == len(data):
            data.insert(where, value)
        elif action == "set":
            data[where] = value
        else:
            del data[where]
    return bytes(data)


def _outcome(room: Room, sender: Peer, update: bytes) -> tuple[str, str] | None:
    try:
        room.handle(sender, SyncUpdate(update))
    except ProtocolError as exc:
        return exc.kind, str(exc)
    return None


ops = st.lists(
    st.tuples(
        st.integers(0, 2),
        st.integers(0, 12),
        st.sampled_from(["a", "b", "c", "é", "😀", "\b"]),
        st.booleans(),
    ),
    min_size=1,
    max_size=24,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
async def test_the_keystroke_fast_path_decides_what_the_general_path_decides(
    data: st.DataObject,
) -> None:
    """Typed updates, some mutated, sent in any order (so some wait for others), by two
    peers, to a room with the fast path and to one without: every step the same outcome
    and held counts, and in the end the same doc."""
    pool = _typing(data.draw(ops))
    sends = data.draw(
        st.lists(
            st.tuples(
                # mostly the next update in typing order, sometimes any (out of order,
                # repeated: held, or applied twice)
                st.one_of(st.none(), st.none(), st.none(), st.integers(0, len(pool) - 1)),
                st.integers(0, 1),
                st.one_of(
                    st.just([]),
                    st.just([]),
                    st.lists(
                        st.tuples(
                            st.integers(0, 64),
                            st.sampled_from(["set", "delete", "insert"]),
                            st.integers(0, 255),
                        ),
                        min_size=1,
                        max_size=2,
                    ),
                ),
            ),
            min_size=1,
            max_size=30,
        )
    )
    fast, slow = Room("f", MemoryLog()), Room("s", MemoryLog())
    fast_peers, slow_peers = [peer()[0], peer()[0]], [peer()[0], peer()[0]]
    for room, peers in ((fast, fast_peers), (slow, slow_peers)):
        for member in peers:
            room.join(member)
    following = 0
    for pick, sender, edits in sends:
        index = following % len(pool) if pick is None else pick
        following = index + 1
        update = _mutated(pool[index], edits) if edits else pool[index]
        with mock.patch("syncd.room.room.plain_keystroke", return_value=None):
            expected = _outcome(slow, slow_peers[sender], update)
        assert _outcome(fast, fast_peers[sender], update) == expected
        assert [fast.held(p) for p in fast_peers] == [slow.held(p) for p in slow_peers]
        assert fast.doc.get_state() == slow.doc.get_state()
    assert fast.doc.get_update() == slow.doc.get_update()
    assert str(fast.doc.get("t", type=Text)) == str(slow.doc.get("t", type=Text))
    await fast.drain()
    await slow.drain()


def _keystrokes(client: int, text: str) -> list[bytes]:
    return typed_updates(client, text)


async def test_a_plain_keystroke_is_applied_without_the_general_walk() -> None:
    """Fails without the fast path: the general walk is made to refuse everything."""
    room = Room("n", MemoryLog())
    a, _ = peer()
    room.join(a)
    updates = _keystrokes(7, "hello")
    room.handle(a, SyncUpdate(updates[0]))  # the first has a parent, no origin: general
    with mock.patch("syncd.room.room.check_update", side_effect=AssertionError("walked")):
        for update in updates[1:]:
            assert plain_keystroke(update) is not None
            room.handle(a, SyncUpdate(update))
    assert str(room.doc.get("t", type=Text)) == "hello"
    assert a.updates_in == 5
    await room.drain()


async def test_a_plain_keystroke_needing_what_the_doc_lacks_is_held() -> None:
    room = Room("n", MemoryLog())
    a, _ = peer()
    room.join(a)
    first, second, third = _keystrokes(7, "abc")
    room.handle(a, SyncUpdate(first))
    room.handle(a, SyncUpdate(third))  # its start and its origin come with `second`
    assert room.held(a) == 1
    room.handle(a, SyncUpdate(second))
    assert room.held(a) == 0
    assert str(room.doc.get("t", type=Text)) == "abc"
    await room.drain()


def test_plain_keystroke_ids_are_the_general_walks_shape() -> None:
    doc = Doc(client_id=300_000)
    text = doc.get("t", type=Text)
    text += "ab"
    before = doc.get_state()
    text.insert(1, "Z")  # between two items: a left and a right origin
    inside = doc.get_update(before)
    before = doc.get_state()
    text += "!"
    at_end = doc.get_update(before)
    assert plain_keystroke(inside) == (300_000, 2, 3, 300_000, 0, 300_000, 1)
    assert plain_keystroke(at_end) == (300_000, 3, 4, 300_000, 1, -1, -1)
    shape = check_update(inside, LIMITS)
    assert shape.blocks == {300_000: (2, 3)} and shape.refs == {300_000: 1}
    assert shape.splits == [(300_000, 1), (300_000, 1)] and not shape.deletes


@pytest.mark.parametrize("char", ["é", "😀"])
def test_a_keystroke_of_other_than_ascii_or_with_a_delete_is_left_to_the_walk(char: str) -> None:
    doc = Doc(client_id=9)
    text = doc.get("t", type=Text)
    text += "ab"
    before = doc.get_state()
    text += char
    assert plain_keystroke(doc.get_update(before)) is None
    before = doc.get_state()
    text.insert(len(str(text)), "x")
    del text[0]
    assert plain_keystroke(doc.get_update(before)) is None
