"""Behaviour of the y-websocket codec in ``syncd.protocol``."""

from __future__ import annotations

import dataclasses
import json
import pickle

import pycrdt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from syncd.protocol import (
    DEFAULT_MAX_MESSAGE_BYTES,
    Auth,
    Awareness,
    AwarenessEntry,
    Message,
    MessageTooLarge,
    ProtocolError,
    QueryAwareness,
    SyncStep1,
    SyncStep2,
    SyncUpdate,
    encode,
    encode_awareness,
    encode_awareness_update,
    encode_permission_denied,
    encode_query_awareness,
    encode_sync_step1,
    encode_sync_step2,
    encode_update,
    is_write,
    parse_awareness_update,
    parse_message,
)

# Frames written by the stock JS stack (yjs 13.6.33, y-protocols 1.0.7, lib0 0.2.120)
# exactly as y-websocket's WebsocketProvider writes them; doc.clientID = 1234567890.
REAL_FRAMES: dict[str, str] = {
    "step1_empty_doc": "00000100",
    "step1": "00000701d285d8cc0403",
    "step2_empty_doc": "0001020000",
    "step2": (
        "00012a0102d285d8cc0400040101740368c3a907010b70726f73656d6972726f72030970617261677261706800"
    ),
    "update_text": "00020f0101d285d8cc040004010174016800",
    "update_non_ascii": "0002130101d285d8cc040184d285d8cc040002c3a900",
    "update_xml": "0002220101d285d8cc040207010b70726f73656d6972726f72030970617261677261706800",
    "awareness": (
        "013701d285d8cc04012f7b2275736572223a7b226e616d65223a225a6fc3ab20f09f9982222c22"
        "636f6c6f72223a2223333062636564227d7d"
    ),
    "awareness_removed": "010c01d285d8cc0402046e756c6c",
    "permission_denied": "02000d726561642d6f6e6c7920e29c8b",
    "query_awareness": "03",
}
REAL_TYPES: dict[str, type] = {
    "step1_empty_doc": SyncStep1,
    "step1": SyncStep1,
    "step2_empty_doc": SyncStep2,
    "step2": SyncStep2,
    "update_text": SyncUpdate,
    "update_non_ascii": SyncUpdate,
    "update_xml": SyncUpdate,
    "awareness": Awareness,
    "awareness_removed": Awareness,
    "permission_denied": Auth,
    "query_awareness": QueryAwareness,
}


def frame(name: str) -> bytes:
    return bytes.fromhex(REAL_FRAMES[name])


def assert_protocol_error(data: bytes, *, close_code: int = 4400, match: str | None = None) -> None:
    with pytest.raises(ProtocolError, match=match) as info:
        parse_message(data)
    assert info.value.close_code == close_code


# --- real clients -------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(REAL_FRAMES))
def test_frames_of_a_real_yjs_client_parse_to_the_right_type(name: str) -> None:
    assert type(parse_message(frame(name))) is REAL_TYPES[name]


@pytest.mark.parametrize("name", sorted(REAL_FRAMES))
def test_frames_of_a_real_yjs_client_re_encode_byte_for_byte(name: str) -> None:
    assert encode(parse_message(frame(name))) == frame(name)


def test_real_update_payloads_apply_to_a_pycrdt_doc() -> None:
    doc = pycrdt.Doc()
    for name in ("update_text", "update_non_ascii", "update_xml"):
        message = parse_message(frame(name))
        assert isinstance(message, SyncUpdate)
        doc.apply_update(message.update)
    assert str(doc.get("t", type=pycrdt.Text)) == "hé"


def test_real_step2_carries_the_whole_doc() -> None:
    message = parse_message(frame("step2"))
    assert isinstance(message, SyncStep2)
    doc = pycrdt.Doc()
    doc.apply_update(message.update)
    assert str(doc.get("t", type=pycrdt.Text)) == "hé"


def test_real_awareness_with_non_ascii_state_parses() -> None:
    message = parse_message(frame("awareness"))
    assert isinstance(message, Awareness)
    (entry,) = parse_awareness_update(message.payload)
    assert entry.client_id == 1234567890
    assert entry.clock == 1
    assert json.loads(entry.state) == {"user": {"name": "Zoë 🙂", "color": "#30bced"}}
    assert not entry.removed


def test_real_awareness_removal_has_state_null() -> None:
    message = parse_message(frame("awareness_removed"))
    assert isinstance(message, Awareness)
    assert parse_awareness_update(message.payload) == (AwarenessEntry(1234567890, 2, "null"),)
    assert parse_awareness_update(message.payload)[0].removed


def test_an_awareness_entry_is_immutable_and_compared_by_value() -> None:
    entry = AwarenessEntry(7, 3, '{"a":1}')
    with pytest.raises(AttributeError):
        entry.clock = 4  # type: ignore[misc]
    assert entry == AwarenessEntry(7, 3, '{"a":1}') != AwarenessEntry(7, 4, '{"a":1}')
    assert len({entry, AwarenessEntry(7, 3, '{"a":1}')}) == 1
    assert (entry.client_id, entry.clock, entry.state) == (7, 3, '{"a":1}')


def test_awareness_update_encodes_utf8_byte_lengths_like_lib0() -> None:
    # pycrdt's Encoder.write_var_string writes the character count: right only for ASCII.
    entry = AwarenessEntry(1234567890, 1, '{"user":{"name":"Zoë 🙂","color":"#30bced"}}')
    assert encode_awareness(encode_awareness_update([entry])) == frame("awareness")


def test_real_permission_denied_reads_its_reason() -> None:
    assert parse_message(frame("permission_denied")) == Auth(True, "read-only ✋")


# --- agreement with pycrdt's codec ----------------------------------------------------------


def make_doc() -> pycrdt.Doc:
    doc = pycrdt.Doc()
    text = doc.get("text", type=pycrdt.Text)
    text += "hello"
    return doc


def test_sync_step1_matches_pycrdt_create_sync_message() -> None:
    doc = make_doc()
    assert encode_sync_step1(doc.get_state()) == pycrdt.create_sync_message(doc)
    assert parse_message(pycrdt.create_sync_message(doc)) == SyncStep1(doc.get_state())


def test_sync_step2_matches_pycrdt_reply_to_step1() -> None:
    doc = make_doc()
    step1 = pycrdt.create_sync_message(pycrdt.Doc())
    reply = pycrdt.handle_sync_message(step1[1:], doc)
    assert reply is not None
    assert encode_sync_step2(doc.get_update(b"\x00")) == reply
    assert parse_message(reply) == SyncStep2(doc.get_update(b"\x00"))


def test_update_matches_pycrdt_create_update_message() -> None:
    update = make_doc().get_update()
    assert encode_update(update) == pycrdt.create_update_message(update)
    assert parse_message(pycrdt.create_update_message(update)) == SyncUpdate(update)


def test_awareness_matches_pycrdt_awareness_encoding() -> None:
    doc = pycrdt.Doc()
    awareness = pycrdt.Awareness(doc)
    awareness.set_local_state({"user": {"name": "Ada", "color": "#ff0000"}})
    payload = awareness.encode_awareness_update([doc.client_id])
    assert encode_awareness(payload) == pycrdt.create_awareness_message(payload)
    message = parse_message(pycrdt.create_awareness_message(payload))
    assert message == Awareness(payload)
    (entry,) = parse_awareness_update(payload)
    assert (entry.client_id, entry.clock) == (doc.client_id, 1)
    assert json.loads(entry.state) == {"user": {"name": "Ada", "color": "#ff0000"}}
    assert encode_awareness_update([entry]) == payload


def test_our_awareness_update_applies_to_pycrdt_awareness() -> None:
    awareness = pycrdt.Awareness(pycrdt.Doc())
    payload = encode_awareness_update([AwarenessEntry(7, 3, '{"cursor":null}')])
    awareness.apply_awareness_update(payload, "test")
    assert awareness.states[7] == {"cursor": None}


# --- round trips --------------------------------------------------------------------------

MESSAGES: list[Message] = [
    SyncStep1(b"\x00"),
    SyncStep2(b"\x00\x00"),
    SyncUpdate(b"\x00\x00"),
    SyncUpdate(b""),
    SyncUpdate(bytes(range(256)) * 100),
    Awareness(b"\x00"),
    Auth(True, ""),
    Auth(True, "no edit permission"),
    QueryAwareness(),
]


@pytest.mark.parametrize("message", MESSAGES, ids=lambda m: type(m).__name__)
def test_every_message_type_round_trips(message: Message) -> None:
    assert parse_message(encode(message)) == message


def test_the_empty_update_is_a_valid_update() -> None:
    assert parse_message(b"\x00\x02\x02\x00\x00") == SyncUpdate(b"\x00\x00")


def test_payload_lengths_over_127_use_a_multi_byte_length() -> None:
    update = b"\x01" * 300
    encoded = encode_update(update)
    assert encoded[:4] == b"\x00\x02\xac\x02"
    assert parse_message(encoded) == SyncUpdate(update)


def test_the_specific_encoders_agree_with_encode() -> None:
    assert encode_sync_step1(b"\x00") == encode(SyncStep1(b"\x00"))
    assert encode_sync_step2(b"ab") == encode(SyncStep2(b"ab"))
    assert encode_update(b"ab") == encode(SyncUpdate(b"ab"))
    assert encode_awareness(b"\x00") == encode(Awareness(b"\x00"))
    assert encode_permission_denied("x") == encode(Auth(True, "x"))
    assert encode_query_awareness() == encode(QueryAwareness()) == b"\x03"


def test_payloads_are_bytes_even_from_a_bytearray_or_memoryview() -> None:
    data = encode_update(b"\x00\x00")
    for view in (bytearray(data), memoryview(data)):
        message = parse_message(view)  # type: ignore[arg-type]
        assert message == SyncUpdate(b"\x00\x00")
        assert type(message.update) is bytes  # type: ignore[union-attr]


def test_a_text_frame_is_a_protocol_error() -> None:
    assert_protocol_error("\x03", match="text frame")  # type: ignore[arg-type]


def test_awareness_round_trips_ids_up_to_2_pow_53_minus_1() -> None:
    entries = (
        AwarenessEntry(0, 0, "null"),
        AwarenessEntry(2**32 - 1, 2**53 - 1, '{"a":[1,2.5,"x",true,null]}'),
    )
    assert parse_awareness_update(encode_awareness_update(entries)) == entries


def test_an_empty_awareness_update_has_no_entries() -> None:
    assert parse_awareness_update(b"\x00") == ()
    assert encode_awareness_update([]) == b"\x00"


# --- malformed frames ---------------------------------------------------------------------


def test_an_empty_frame_is_a_protocol_error() -> None:
    assert_protocol_error(b"", match="empty")


@pytest.mark.parametrize("data", [b"\x80", b"\x00\x82", b"\x00\x02\x85", b"\x01\xff\xff"])
def test_truncated_varuint_is_a_protocol_error(data: bytes) -> None:
    assert_protocol_error(data, match="truncated")


def test_a_varuint_longer_than_8_bytes_is_a_protocol_error() -> None:
    assert_protocol_error(b"\x00\x02" + b"\xff" * 8 + b"\x01", match="longer than 8")


def test_a_varuint_above_2_pow_53_is_a_protocol_error() -> None:
    assert_protocol_error(b"\x00\x02" + b"\xff" * 7 + b"\x10", match="2\\*\\*53")


def test_a_non_canonical_varuint_is_a_protocol_error() -> None:
    # 0x80 0x00 is zero in two bytes: lib0 never writes it.
    assert_protocol_error(b"\x00\x02\x80\x00", match="non-canonical")
    assert_protocol_error(b"\x80\x00", match="non-canonical")


def test_a_length_past_the_end_is_a_protocol_error() -> None:
    assert_protocol_error(b"\x00\x02\x05\x00\x00", match="past the end")
    assert_protocol_error(b"\x01\x02\x00", match="past the end")
    assert_protocol_error(b"\x02\x00\x05ab", match="past the end")


@pytest.mark.parametrize(
    "data",
    [b"\x00\x02\x02\x00\x00\x00", b"\x01\x01\x00\xff", b"\x02\x00\x01a!", b"\x03\x03"],
)
def test_trailing_bytes_are_a_protocol_error(data: bytes) -> None:
    assert_protocol_error(data, match="trailing")


@pytest.mark.parametrize("data", [b"\x04", b"\x7f", b"\xe8\x07"])
def test_an_unknown_message_type_is_a_protocol_error(data: bytes) -> None:
    assert_protocol_error(data, match="unknown message type")


@pytest.mark.parametrize("data", [b"\x00\x03\x00", b"\x00\x81\x01\x00"])
def test_an_unknown_sync_type_is_a_protocol_error(data: bytes) -> None:
    assert_protocol_error(data, match="unknown sync")


@pytest.mark.parametrize(
    ("data", "sync_type"),
    [(b"\x00\x07", 7), (b"\x00\x07\x85", 7), (b"\x00\x81\x01", 129), (b"\x00\x03", 3)],
)
def test_an_unknown_sync_type_without_a_whole_length_is_named_as_such(
    data: bytes, sync_type: int
) -> None:
    """The type is read first: a frame that stops after it (or mid-length) is an unknown
    sync type, not a "truncated var-uint"."""
    assert_protocol_error(data, match=f"^unknown sync message type {sync_type}$")


def test_an_unknown_auth_type_is_a_protocol_error() -> None:
    assert_protocol_error(b"\x02\x01\x00", match="unknown auth")


def test_a_sync_message_without_payload_is_a_protocol_error() -> None:
    assert_protocol_error(b"\x00\x02", match="truncated")
    assert_protocol_error(b"\x00", match="truncated")


def test_invalid_utf8_in_the_auth_reason_is_a_protocol_error() -> None:
    assert_protocol_error(b"\x02\x00\x02\xc3\x28", match="UTF-8")
    # UTF-8-encoded surrogate half, which lib0's fatal TextDecoder also refuses.
    assert_protocol_error(b"\x02\x00\x03\xed\xa0\x80", match="UTF-8")


def test_an_oversize_frame_closes_with_1009() -> None:
    data = encode_update(b"\x00" * 100)
    with pytest.raises(MessageTooLarge) as info:
        parse_message(data, max_bytes=len(data) - 1)
    assert info.value.close_code == 1009
    assert isinstance(info.value, ProtocolError)


def test_a_frame_at_the_size_limit_is_accepted() -> None:
    data = encode_update(b"\x00" * 100)
    assert parse_message(data, max_bytes=len(data)) == SyncUpdate(b"\x00" * 100)


def test_the_size_limit_is_checked_before_parsing() -> None:
    garbage = b"\xff" * (DEFAULT_MAX_MESSAGE_BYTES + 1)
    with pytest.raises(MessageTooLarge):
        parse_message(garbage)


# --- malformed awareness updates -------------------------------------------------------------


def entry_bytes(state: bytes, client_id: int = 1, clock: int = 1) -> bytes:
    return b"\x01" + bytes((client_id, clock, len(state))) + state


@pytest.mark.parametrize(
    "payload",
    [
        b"",
        b"\x01",
        b"\x01\x01",
        b"\x01\x01\x01",
        b"\x01\x01\x01\x05null",
        b"\x02" + b"\x01\x01\x00",
    ],
)
def test_a_truncated_awareness_update_is_a_protocol_error(payload: bytes) -> None:
    with pytest.raises(ProtocolError) as info:
        parse_awareness_update(payload)
    assert info.value.close_code == 4400


def test_trailing_bytes_after_an_awareness_update_are_a_protocol_error() -> None:
    with pytest.raises(ProtocolError, match="trailing"):
        parse_awareness_update(entry_bytes(b"null") + b"\x00")


def test_invalid_utf8_in_an_awareness_state_is_a_protocol_error() -> None:
    with pytest.raises(ProtocolError, match="UTF-8"):
        parse_awareness_update(entry_bytes(b'"\xff"'))


@pytest.mark.parametrize(
    "state",
    [
        b"",
        b"{",
        b"undefined",
        b"{'a': 1}",
        b"NaN",
        b'{"x":Infinity}',
        b"-Infinity",
        b"\xef\xbb\xbf{}",
    ],
)
def test_an_awareness_state_that_is_not_json_is_a_protocol_error(state: bytes) -> None:
    with pytest.raises(ProtocolError, match="JSON"):
        parse_awareness_update(entry_bytes(state))


def test_one_shared_json_decoder_judges_each_awareness_state_on_its_own() -> None:
    # the decoder is built once per process; a refusal must leave nothing behind
    good = [b' {"cursor": {"anchor": 1}} ', b"[1, 2.5, true, null]", b'"text"', b"0"]
    for state in good:
        with pytest.raises(ProtocolError, match="JSON"):
            parse_awareness_update(entry_bytes(b'{"x":NaN}'))
        [entry] = parse_awareness_update(entry_bytes(state))
        assert entry.state == state.decode()


def test_a_deeply_nested_awareness_state_is_a_protocol_error() -> None:
    # Python's json recurses; a 100k-deep array must not escape as RecursionError.
    state = "[" * 100_000 + "]" * 100_000
    payload = encode_awareness_update([AwarenessEntry(1, 1, state)])
    with pytest.raises(ProtocolError, match="nested"):
        parse_awareness_update(payload)


def test_too_many_awareness_entries_is_a_protocol_error() -> None:
    entries = [AwarenessEntry(i, 0, "null") for i in range(11)]
    payload = encode_awareness_update(entries)
    assert len(parse_awareness_update(payload, max_entries=11)) == 11
    with pytest.raises(ProtocolError, match="over 10"):
        parse_awareness_update(payload, max_entries=10)


def test_an_entry_count_larger_than_the_data_is_refused_up_front() -> None:
    with pytest.raises(ProtocolError, match="shorter than its entry count"):
        parse_awareness_update(b"\xe8\x07" + b"\x01\x01\x00")


# --- classification and types ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        (SyncStep1(b"\x00"), False),
        (SyncStep2(b"\x00\x00"), True),
        (SyncUpdate(b"\x00\x00"), True),
        (Awareness(b"\x00"), False),
        (Auth(True, "x"), False),
        (QueryAwareness(), False),
    ],
    ids=lambda v: type(v).__name__,
)
def test_only_step2_and_updates_are_writes(message: Message, expected: bool) -> None:
    assert is_write(message) is expected


def test_messages_are_frozen_and_slotted() -> None:
    message = SyncUpdate(b"\x00\x00")
    with pytest.raises(dataclasses.FrozenInstanceError):
        message.update = b""  # type: ignore[misc]
    assert not hasattr(message, "__dict__")
    assert hash(message) == hash(SyncUpdate(b"\x00\x00"))


def test_protocol_error_is_a_value_error_with_a_close_code() -> None:
    error = ProtocolError("bad")
    assert isinstance(error, ValueError)
    assert error.close_code == 4400
    assert ProtocolError("bad", close_code=4000).close_code == 4000
    assert MessageTooLarge("big").close_code == 1009


def test_protocol_error_keeps_its_close_code_through_pickle() -> None:
    error = pickle.loads(pickle.dumps(MessageTooLarge("big")))
    assert type(error) is MessageTooLarge
    assert (str(error), error.close_code) == ("big", 1009)


def test_an_auth_message_other_than_permission_denied_cannot_be_encoded() -> None:
    with pytest.raises(ValueError, match="permission-denied"):
        encode(Auth(False, "ok"))


def test_encoding_a_number_a_js_peer_cannot_read_is_refused() -> None:
    with pytest.raises(ValueError, match="out of range"):
        encode_awareness_update([AwarenessEntry(2**53, 0, "null")])
    with pytest.raises(ValueError, match="out of range"):
        encode_awareness_update([AwarenessEntry(-1, 0, "null")])


@settings(max_examples=500)
@given(
    text=st.one_of(
        st.text(st.characters(exclude_categories=("Cs",)), max_size=30),
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
            lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner),
            max_leaves=8,
        ).map(json.dumps),
    ),
    around=st.sampled_from(["", " ", "\n", "\ufeff", "x", "]"]),
)
def test_an_awareness_state_is_accepted_exactly_when_strict_json_loads_it(
    text: str, around: str
) -> None:
    def constant(name: str) -> None:
        raise ValueError(name)

    for state in (text, around + text, text + around):
        try:
            json.loads(state, parse_constant=constant)
            valid = True
        except (ValueError, RecursionError):
            valid = False
        payload = encode_awareness_update([AwarenessEntry(1, 1, state)])
        if valid:
            assert parse_awareness_update(payload)[0].state == state
        else:
            with pytest.raises(ProtocolError):
                parse_awareness_update(payload)
