"""Updates that split a character outside the BMP (an emoji, two UTF-16 units) are refused;
stored updates that pycrdt refuses in one transaction are compacted and loaded one by one.

Found by tests/integration/test_fuzz_frames.py (seed 10): a fuzzed delete-only update of
one clock, inside an emoji the room did not have yet, was accepted (pycrdt kept it
pending), then applied when the emoji came. pycrdt 0.14 then encodes the doc with one
clock too many for that client, and the stored updates no longer compact nor load:
"block parent ... must be deleted or shared ref type". The bytes below are the smallest
such pair: `STATE` is one client typing an emoji, a map, an "x" and a map (53 bytes);
`HALF_DELETE` deletes clock 1 of client 1, the emoji's second half.
"""

from __future__ import annotations

import pytest
from pycrdt import Doc

from syncd.protocol import ProtocolError, SyncUpdate, YLimits, check_update, read_state_vector
from syncd.protocol.close_codes import CLOSE_MALFORMED
from syncd.room import Room
from syncd.updates import CompactionError, compact_state
from tests.unit.test_room import MemoryLog, peer

STATE = bytes.fromhex(
    "010601000401017404f09f9880070101610128000102016b0177017684010101788701020128000105016b01"
    "77017600"
)
HALF_DELETE = bytes.fromhex("000101010101")
#: client 2 typing "y" right after the emoji's first half (left origin 1#0)
AFTER_HALF = bytes.fromhex("01010200840100017900")


def reloads(update: bytes) -> bool:
    try:
        Doc().apply_update(update)
    except Exception:
        return False
    return True


def test_pycrdt_cannot_load_back_a_doc_split_inside_an_emoji() -> None:
    """The bug the room guards against (if pycrdt fixes it, this guard may go)."""
    doc = Doc()
    doc.apply_update(STATE)
    doc.apply_update(HALF_DELETE)
    assert not reloads(doc.get_update())


def test_compact_state_raises_compaction_error_on_what_it_cannot_encode_back() -> None:
    with pytest.raises(CompactionError):
        compact_state([HALF_DELETE, STATE])
    assert reloads(compact_state([STATE]))


def test_the_walker_records_where_emoji_halves_are_and_where_an_update_splits() -> None:
    limits = YLimits.for_message_bytes()
    assert check_update(STATE, limits).pairs == {(1, 1)}
    assert (1, 1) in check_update(HALF_DELETE, limits).splits
    assert (1, 1) in check_update(AFTER_HALF, limits).splits


@pytest.mark.parametrize("split", [HALF_DELETE, AFTER_HALF], ids=["delete", "insert"])
async def test_an_update_splitting_an_emoji_the_room_holds_is_refused(split: bytes) -> None:
    log = MemoryLog()
    room = Room("n", log)
    writer, _ = peer()
    room.join(writer)
    room.handle(writer, SyncUpdate(STATE))
    with pytest.raises(ProtocolError) as refused:
        room.handle(writer, SyncUpdate(split))
    assert refused.value.kind == "rejected" and refused.value.close_code == CLOSE_MALFORMED
    await room.drain()
    assert log.appended == [STATE]
    assert reloads(room.doc.get_update())


async def test_a_delete_that_comes_before_its_structs_is_held_then_refused() -> None:
    """The order the fuzz found: the delete is held (not given to pycrdt, not stored)
    until the emoji arrives, then checked like any other update, and its sender closed."""
    log = MemoryLog()
    room = Room("n", log)
    early, early_channel = peer()
    writer, _ = peer()
    room.join(early)
    room.join(writer)
    assert room.handle(early, SyncUpdate(HALF_DELETE)) == []
    assert room.held(early) == 1
    room.handle(writer, SyncUpdate(STATE))
    await room.drain()
    assert room.held(early) == 0
    assert early_channel.close_code == CLOSE_MALFORMED
    assert log.appended == [STATE]
    assert reloads(compact_state(log.appended))


async def test_a_loaded_emoji_is_guarded_too() -> None:
    room = Room("n", MemoryLog())
    room.load([STATE])
    writer, _ = peer()
    room.join(writer)
    with pytest.raises(ProtocolError):
        room.handle(writer, SyncUpdate(HALF_DELETE))


async def test_whole_emoji_edits_go_through() -> None:
    """Deleting both halves, or typing after the whole emoji, is what editors do."""
    room = Room("n", MemoryLog())
    writer, _ = peer()
    room.join(writer)
    room.handle(writer, SyncUpdate(STATE))
    room.handle(writer, SyncUpdate(bytes.fromhex("01010200840101017900")))  # after 1#1
    room.handle(writer, SyncUpdate(bytes.fromhex("000101010002")))  # clocks 0-1
    await room.drain()
    assert reloads(room.doc.get_update())


#: an item in array "a" (1#0, an Any), its deletion, and an item whose parent is 1#0: fine
#: applied one by one (yrs collected 1#0 in between), refused in one transaction
ANY_ITEM = bytes.fromhex("01010100080101610177017800")
ANY_DELETE = bytes.fromhex("000101010001")
CHILD_OF_ANY = bytes.fromhex("0101020028000100016b0177017600")


def test_compact_state_applies_one_by_one_what_one_transaction_refuses() -> None:
    doc = Doc()
    with pytest.raises(RuntimeError), doc.transaction():
        for update in (ANY_ITEM, ANY_DELETE, CHILD_OF_ANY):
            doc.apply_update(update)
    assert reloads(compact_state([ANY_ITEM, ANY_DELETE, CHILD_OF_ANY]))


async def test_a_room_loads_one_by_one_what_one_transaction_refuses() -> None:
    room = Room("n", MemoryLog())
    room.load([ANY_ITEM, ANY_DELETE, CHILD_OF_ANY])
    assert reloads(room.doc.get_update())
    assert read_state_vector(room.doc.get_state()) == {1: 1, 2: 1}
