"""The Yjs state-vector and update walker of `syncd.protocol`: accepts what Yjs writes,
refuses every declared count or length the data cannot hold, and raises nothing else."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pycrdt import Array, Doc, Map, Text, XmlElement, XmlFragment, XmlText

from syncd.protocol import ProtocolError, YLimits, check_state_vector, check_update
from syncd.protocol._ycontent import Cursor
from syncd.protocol._ylimits import MAX_CLOCK
from syncd.protocol._ystructs import UpdateShape, _typing_shape, _walk_delete_set, _walk_structs

LIMITS = YLimits.for_message_bytes()
#: the frames of issue 10, without their y-websocket header
INFLATED_STATE_VECTOR = bytes.fromhex("80c6868f0100000000")
INFLATED_UPDATE = bytes.fromhex("80c6868f01") + bytes(11)
SHORT_STATE_VECTOR = b"\x01"


def rich_doc() -> Doc:
    doc = Doc()
    text = doc.get("text", type=Text)
    text += "héllo 😀 wörld"
    text.insert(3, "X")
    del text[1:4]
    text.format(0, 3, {"bold": True, "link": {"href": "https://x.test"}})
    text.insert_embed(2, {"image": "a.png"})
    doc.get("map", type=Map).update(
        {
            "any": {"x": [1, -2, 2.5, 2**40, None, True, False, "s", b"\x00\xff"]},
            "arr": Array([Map({"k": 1})]),
        }
    )
    fragment = doc.get("prosemirror", type=XmlFragment)
    fragment.children.append(XmlElement("paragraph", {"a": "1"}, [XmlText("hi")]))
    return doc


def test_updates_and_state_vectors_pycrdt_writes_pass() -> None:
    doc = rich_doc()
    check_update(doc.get_update(), LIMITS)
    check_state_vector(doc.get_state(), LIMITS)
    other = Doc()
    other.get("text", type=Text).insert(0, "other")
    check_update(doc.get_update(other.get_state()), LIMITS)
    check_update(b"\x00\x00", LIMITS)
    check_state_vector(b"\x00", LIMITS)


def test_the_frames_of_the_issue_are_refused_before_pycrdt_allocates() -> None:
    with pytest.raises(ProtocolError) as caught:
        check_state_vector(INFLATED_STATE_VECTOR, LIMITS)
    assert caught.value.kind == "limit" and caught.value.close_code == 4400
    with pytest.raises(ProtocolError):
        check_update(INFLATED_UPDATE, LIMITS)
    with pytest.raises(ProtocolError) as caught:
        check_state_vector(SHORT_STATE_VECTOR, LIMITS)
    assert caught.value.kind == "malformed"


def test_every_strict_prefix_of_an_update_is_refused() -> None:
    update = rich_doc().get_update()
    for end in range(len(update)):
        with pytest.raises(ProtocolError):
            check_update(update[:end], LIMITS)


def test_trailing_bytes_are_refused() -> None:
    doc = rich_doc()
    with pytest.raises(ProtocolError, match="trailing"):
        check_update(doc.get_update() + b"\x00", LIMITS)
    with pytest.raises(ProtocolError, match="trailing"):
        check_state_vector(doc.get_state() + b"\x00", LIMITS)


def test_counts_are_held_to_the_bytes_left() -> None:
    # one client declaring ten structs, with room for one
    with pytest.raises(ProtocolError, match="structs declared"):
        check_update(bytes.fromhex("010a0100") + b"\x04\x01\x01t\x01a", LIMITS)
    # a string length past the end
    with pytest.raises(ProtocolError, match="length of 100"):
        check_update(bytes.fromhex("01010100") + b"\x04\x01\x01t\x64a\x00", LIMITS)
    # a delete set with more ranges than bytes
    with pytest.raises(ProtocolError, match="delete ranges"):
        check_update(bytes.fromhex("00010105000a"), LIMITS)


def test_caps_scale_with_the_frame_limit_with_a_floor() -> None:
    assert YLimits.for_message_bytes(4 * 2**20) == YLimits(131072, 524288, 1048576)
    assert YLimits.for_message_bytes(1024) == YLimits(1024, 1024, 1024)
    small = YLimits.for_message_bytes(1024)
    many = b"".join(bytes((1, n)) for n in range(1, 101)) * 11
    with pytest.raises(ProtocolError, match="over the limit of 1024") as caught:
        check_state_vector(b"\x81\x08" + many[: 1025 * 2], small)
    assert caught.value.kind == "limit"


def test_clocks_beyond_what_yrs_holds_are_refused() -> None:
    sv = b"\x01\x01" + bytes.fromhex("8080808010")  # clock 2**32
    with pytest.raises(ProtocolError, match="2\\*\\*32"):
        check_state_vector(sv, LIMITS)
    # a deleted item of length 2 starting at MAX_CLOCK
    start = bytes.fromhex("ffffffff0f")
    with pytest.raises(ProtocolError, match="2\\*\\*32"):
        check_update(b"\x01\x01\x01" + start + b"\x01\x01\x01t\x02\x00", LIMITS)
    assert MAX_CLOCK == 2**32 - 1


def test_names_and_keys_are_capped() -> None:
    doc = Doc()
    doc.get("m", type=Map)["k" * 4097] = 1
    with pytest.raises(ProtocolError, match="4097 bytes") as caught:
        check_update(doc.get_update(), LIMITS)
    assert caught.value.kind == "limit"
    fine = Doc()
    fine.get("m", type=Map)["k" * 4096] = "v" * 100_000  # values are not keys
    check_update(fine.get_update(), LIMITS)


def nested_any(depth: int) -> object:
    value: object = 1
    for _ in range(depth):
        value = [value]
    return value


def test_any_values_are_nested_at_most_128_deep() -> None:
    ok, deep = Doc(), Doc()
    ok.get("m", type=Map)["v"] = nested_any(128)
    deep.get("m", type=Map)["v"] = nested_any(129)
    check_update(ok.get_update(), LIMITS)
    with pytest.raises(ProtocolError, match="nested deeper"):
        check_update(deep.get_update(), LIMITS)


def nested_types(depth: int) -> bytes:
    doc = Doc()
    current = doc.get("m", type=Map)
    for _ in range(depth - 1):
        child = Map()
        current["c"] = child
        current = child
    return doc.get_update()


def test_shared_types_made_in_one_update_are_nested_at_most_128_deep() -> None:
    check_update(nested_types(128), LIMITS)
    with pytest.raises(ProtocolError, match="shared types nested"):
        check_update(nested_types(130), LIMITS)


HEADER = bytes.fromhex("01010100")  # one client (1) with one struct from clock 0
ONE_STRUCT = b"\x01\x01\x01t\x01"  # one deleted item in root type "t"


def test_the_hand_made_updates_below_are_valid_but_for_their_one_flaw() -> None:
    check_update(HEADER + b"\x04\x01\x01t\x01a\x00", LIMITS)
    check_update(
        b"\x02" + b"\x01\x01\x00" + ONE_STRUCT + b"\x01\x02\x00" + ONE_STRUCT + b"\x00", LIMITS
    )


@pytest.mark.parametrize(
    ("update", "reason"),
    [
        (HEADER + b"\x0b\x01\x01t\x00", "unknown content type 11"),
        (b"\x01\x81\x00\x01\x00" + ONE_STRUCT + b"\x00", "non-canonical var-uint"),
        (b"\x01\x01" + bytes.fromhex("ffffffffffffffff7f") + b"\x00", "longer than 8 bytes"),
        (HEADER + b"\x07\x01\x01t\x09\x00", "unknown shared type 9"),
        (HEADER + b"\x04\x02", "parent info 2"),
        (HEADER + b"\x08\x01\x01m\x01\x70\x00", "unknown Any value tag 112"),
        (HEADER + b"\x04\x01\x01t\x00\x00", "empty string"),
        (HEADER + b"\x04\x01\x01t\x02\xc3\x28\x00", "invalid UTF-8"),
        (HEADER + b"\x05\x01\x01t\x03NaN\x00", "invalid JSON"),
        (b"\x02" + (b"\x01\x01\x00" + ONE_STRUCT) * 2 + b"\x00", "client twice"),
    ],
)
def test_what_yjs_never_writes_is_refused(update: bytes, reason: str) -> None:
    with pytest.raises(ProtocolError, match=reason):
        check_update(update, LIMITS)


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=200))
def test_arbitrary_bytes_raise_nothing_but_protocol_error(data: bytes) -> None:
    for check in (check_update, check_state_vector):
        with contextlib.suppress(ProtocolError):
            check(data, LIMITS)


RICH_UPDATE = rich_doc().get_update()


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_a_mutated_update_raises_nothing_but_protocol_error(data: st.DataObject) -> None:
    update = bytearray(RICH_UPDATE)
    for _ in range(data.draw(st.integers(1, 4))):
        update[data.draw(st.integers(0, len(update) - 1))] = data.draw(st.integers(0, 255))
    with contextlib.suppress(ProtocolError):
        check_update(bytes(update), LIMITS)


def test_dependencies_are_what_the_doc_and_the_update_hold() -> None:
    from syncd.protocol import check_dependencies, read_state_vector

    doc = Doc(client_id=9)
    text = doc.get("t", type=Text)
    text += "abc"
    before = doc.get_state()
    known = read_state_vector(before)
    assert known == {9: 3}
    text.insert(1, "X")  # origin (9, 0), right origin (9, 1): both known
    shape = check_update(doc.get_update(), LIMITS)
    check_dependencies(shape, {})  # the whole history points only into itself
    incremental = check_update(doc.get_update(before), LIMITS)
    check_dependencies(incremental, known)
    with pytest.raises(ProtocolError, match="starts past") as caught:
        check_dependencies(check_update(b"\x01\x01\x09\x05\x04\x01\x01t\x01a\x00", LIMITS), known)
    assert caught.value.kind == "missing"
    # an item at clock 3 whose origin is (9, 7): beyond the doc and the update
    pointing_ahead = b"\x01\x01\x09\x03\x84\x09\x07\x01a\x00"
    with pytest.raises(ProtocolError, match="points at"):
        check_dependencies(check_update(pointing_ahead, LIMITS), known)


def _var_uint(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _full_walk(update: bytes) -> UpdateShape | None:
    """The general walk alone (what `check_update` does when the fast path declines)."""
    cur = Cursor(update)
    shape = UpdateShape()
    try:
        _walk_structs(cur, LIMITS, shape)
        _walk_delete_set(cur, LIMITS, shape)
    except ProtocolError:
        return None
    return None if cur.left else shape


CLIENT = 0x9ABCDEF1  # Yjs client ids are random uint32s: five bytes
#: keystrokes as Yjs writes them: typed at the end (left origin), inside the text (both
#: origins, here with a two-byte character), and with a delete range
KEYSTROKES = [
    b"\x01\x01"
    + _var_uint(CLIENT)
    + _var_uint(1000)
    + b"\x84"
    + _var_uint(CLIENT)
    + _var_uint(999)
    + b"\x01a\x00",
    b"\x01\x01"
    + _var_uint(CLIENT)
    + _var_uint(1000)
    + b"\xc4"
    + _var_uint(CLIENT)
    + _var_uint(999)
    + _var_uint(77)
    + _var_uint(5)
    + b"\x02\xc3\xa9\x01"
    + _var_uint(CLIENT)
    + b"\x01"
    + _var_uint(3)
    + _var_uint(1),
    b"\x01\x01\x07\x00\x84\x09\x00\x04\xf0\x9f\x98\x80\x00",  # one emoji: two clock units
]


def test_the_keystroke_fast_path_reads_what_the_full_walk_reads() -> None:
    for update in KEYSTROKES:
        fast = _typing_shape(update)
        assert fast is not None and fast == _full_walk(update) == check_update(update, LIMITS)
    assert _typing_shape(KEYSTROKES[2]) == UpdateShape(
        {7: (0, 2)}, {9: 0}, splits=[(9, 1)], pairs={(7, 1)}
    )
    doc = Doc(client_id=CLIENT)
    text = doc.get("t", type=Text)
    text += "ab"
    before = doc.get_state()
    text.insert(1, "Z")
    incremental = doc.get_update(before)
    assert _typing_shape(incremental) == _full_walk(incremental)
    assert _typing_shape(incremental) is not None


@settings(max_examples=1500, deadline=None)
@given(st.data())
def test_the_keystroke_fast_path_never_accepts_what_the_full_walk_refuses(
    data: st.DataObject,
) -> None:
    """Mutated keystrokes: the fast path either declines (the full walk decides) or
    returns exactly the full walk's shape, never a shape for a frame it would refuse."""
    update = bytearray(data.draw(st.sampled_from(KEYSTROKES)))
    for _ in range(data.draw(st.integers(1, 3))):
        where = data.draw(st.integers(0, len(update)))
        action = data.draw(st.sampled_from(["set", "delete", "insert"]))
        if action == "insert" or where == len(update):
            update.insert(where, data.draw(st.integers(0, 255)))
        elif action == "set":
            update[where] = data.draw(st.integers(0, 255))
        else:
            del update[where]
    fast = _typing_shape(bytes(update))
    if fast is not None:
        assert fast == _full_walk(bytes(update))
