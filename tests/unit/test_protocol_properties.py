"""Properties of the ``syncd.protocol`` codec over generated input."""

from __future__ import annotations

import json

from hypothesis import example, given, settings
from hypothesis import strategies as st

from syncd.protocol import (
    Auth,
    Awareness,
    AwarenessEntry,
    Message,
    ProtocolError,
    QueryAwareness,
    SyncStep1,
    SyncStep2,
    SyncUpdate,
    encode,
    encode_awareness_update,
    parse_awareness_update,
    parse_message,
)

MAX_SAFE = 2**53 - 1
FUZZ = settings(max_examples=2000, deadline=None)


def var_uint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append(0x80 | (value & 0x7F))
        value >>= 7
    out.append(value)
    return bytes(out)


# Byte soup that often looks like a frame: small type numbers, plausible var-uints
# and lengths, mixed with noise, so the fuzzing reaches past the first byte.
piece = st.one_of(
    st.integers(0, 4).map(var_uint),
    st.integers(0, 2**60).map(var_uint),
    st.binary(max_size=3).map(lambda b: b + b"\xff"),
    st.binary(max_size=40),
)

payload = st.binary(max_size=300)
messages: st.SearchStrategy[Message] = st.one_of(
    st.builds(SyncStep1, payload),
    st.builds(SyncStep2, payload),
    st.builds(SyncUpdate, payload),
    st.builds(Awareness, payload),
    st.builds(Auth, st.just(True), st.text(max_size=100)),
    st.just(QueryAwareness()),
)

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
json_texts = json_values.map(lambda v: json.dumps(v, ensure_ascii=False, separators=(",", ":")))
entries = st.builds(
    AwarenessEntry, st.integers(0, MAX_SAFE), st.integers(0, MAX_SAFE), json_texts | st.just("null")
)
entry_lists = st.lists(entries, max_size=8)


@st.composite
def mutated(draw: st.DrawFn, valid: st.SearchStrategy[bytes]) -> bytes:
    """A valid encoding with one byte changed, inserted or removed."""
    data = bytearray(draw(valid))
    at = draw(st.integers(0, len(data)))
    match draw(st.sampled_from(["change", "insert", "delete"])):
        case "change" if at < len(data):
            data[at] = draw(st.integers(0, 255))
        case "delete" if at < len(data):
            del data[at]
        case _:
            data.insert(at, draw(st.integers(0, 255)))
    return bytes(data)


frame_like = st.one_of(
    st.binary(max_size=200),
    st.tuples(st.integers(0, 4).map(var_uint), st.lists(piece, max_size=5).map(b"".join)).map(
        b"".join
    ),
    mutated(messages.map(encode)),
)
awareness_like = st.one_of(
    st.binary(max_size=200),
    st.lists(piece, max_size=8).map(b"".join),
    mutated(entry_lists.map(encode_awareness_update)),
)


@FUZZ
@given(frame_like)
@example(b"")
@example(b"\x00\x02\x80\x00")
@example(b"\x00\x02" + b"\xff" * 9)
def test_parse_message_raises_only_protocol_error_and_accepted_frames_are_canonical(
    data: bytes,
) -> None:
    try:
        message = parse_message(data)
    except ProtocolError as error:
        assert error.close_code == 4400
    else:
        assert encode(message) == data


@FUZZ
@given(awareness_like)
def test_parse_awareness_update_raises_only_protocol_error(data: bytes) -> None:
    try:
        parsed = parse_awareness_update(data)
    except ProtocolError as error:
        assert error.close_code == 4400
    else:
        assert encode_awareness_update(parsed) == data


@settings(max_examples=500, deadline=None)
@given(messages)
def test_encoded_messages_parse_back_to_themselves(message: Message) -> None:
    assert parse_message(encode(message)) == message


@settings(max_examples=500, deadline=None)
@given(entry_lists)
def test_encoded_awareness_updates_parse_back_to_themselves(
    entries_: list[AwarenessEntry],
) -> None:
    assert parse_awareness_update(encode_awareness_update(entries_)) == tuple(entries_)


@settings(max_examples=500, deadline=None)
@given(messages, st.data())
def test_every_truncation_of_a_valid_frame_is_a_protocol_error(
    message: Message, data: st.DataObject
) -> None:
    # Every frame carries its own length, so no strict prefix can be valid.
    frame = encode(message)
    cut = data.draw(st.integers(0, len(frame) - 1), label="cut")
    try:
        parse_message(frame[:cut])
    except ProtocolError:
        pass
    else:
        raise AssertionError(f"prefix {frame[:cut]!r} of {frame!r} parsed")


@settings(max_examples=300, deadline=None)
@given(messages, st.binary(min_size=1, max_size=8))
def test_bytes_appended_to_a_valid_frame_are_a_protocol_error(
    message: Message, extra: bytes
) -> None:
    try:
        parse_message(encode(message) + extra)
    except ProtocolError:
        pass
    else:
        raise AssertionError("trailing bytes were accepted")


@settings(max_examples=300, deadline=None)
@given(entry_lists.filter(bool), st.data())
def test_every_truncation_of_a_valid_awareness_update_is_a_protocol_error(
    entries_: list[AwarenessEntry], data: st.DataObject
) -> None:
    payload = encode_awareness_update(entries_)
    cut = data.draw(st.integers(0, len(payload) - 1), label="cut")
    try:
        parse_awareness_update(payload[:cut])
    except ProtocolError:
        pass
    else:
        raise AssertionError(f"prefix {payload[:cut]!r} parsed")


@settings(max_examples=300, deadline=None)
@given(messages, st.integers(0, 64))
def test_frames_over_the_limit_are_refused_with_1009(message: Message, slack: int) -> None:
    frame = encode(message)
    limit = max(len(frame) - 1 - slack, 0)
    try:
        parse_message(frame, max_bytes=limit)
    except ProtocolError as error:
        assert error.close_code == 1009
    else:
        raise AssertionError("oversize frame accepted")
