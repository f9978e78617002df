"""The Hocuspocus codec: round trips, strictness and its error types over generated input."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from syncd.protocol import (
    Awareness,
    MessageTooLarge,
    ProtocolError,
    QueryAwareness,
    SyncStep1,
    SyncStep2,
    SyncUpdate,
)
from syncd.protocol.hocuspocus import (
    PONG_FRAME,
    CloseDocument,
    DocumentError,
    Envelope,
    Pong,
    Stateless,
    Token,
    document_prefix,
    encode_authenticated,
    encode_client_frame,
    encode_close,
    encode_sync_status,
    encode_token_request,
    parse_frame,
)

FUZZ = settings(max_examples=1500, deadline=None)

names = st.text(min_size=1, max_size=60).filter(lambda s: len(s.encode()) <= 512)
payload = st.binary(max_size=200)
doc_messages = st.one_of(
    st.builds(SyncStep1, payload),
    st.builds(SyncStep2, payload),
    st.builds(SyncUpdate, payload),
    st.builds(Awareness, payload),
    st.just(QueryAwareness()),
    st.builds(Token, st.text(max_size=300), st.none() | st.text(max_size=20)),
    st.builds(Stateless, st.text(max_size=300)),
    st.just(CloseDocument()),
)
envelopes = st.builds(Envelope, names, doc_messages)


@FUZZ
@given(envelopes)
def test_every_client_message_round_trips(envelope: Envelope) -> None:
    frame = encode_client_frame(envelope)
    assert parse_frame(frame) == envelope


@FUZZ
@given(st.binary(max_size=120))
def test_any_bytes_parse_or_raise_protocol_error_only(data: bytes) -> None:
    try:
        parsed = parse_frame(data)
    except ProtocolError as exc:
        assert exc.close_code in (4400, 1009)
    else:
        if isinstance(parsed, Envelope):
            assert encode_client_frame(parsed) == data  # strict: one encoding per message


@FUZZ
@given(envelopes, st.data())
def test_a_truncated_frame_is_an_error_of_its_document_or_socket(
    envelope: Envelope, data: st.DataObject
) -> None:
    frame = encode_client_frame(envelope)
    cut = data.draw(st.integers(0, len(frame) - 1))
    try:
        parsed = parse_frame(frame[:cut])
    except DocumentError as exc:
        assert exc.document == envelope.document
        assert cut >= len(document_prefix(envelope.document))
    except ProtocolError:
        assert cut <= len(document_prefix(envelope.document))
    else:
        # A token whose optional version is cut off whole is still a token; a lone byte 10
        # is a pong. Anything accepted is the exact encoding of what it parsed to.
        assert isinstance(envelope.message, Token) or parsed == Pong()
        if isinstance(parsed, Envelope):
            assert encode_client_frame(parsed) == frame[:cut]


def test_pong_and_limits() -> None:
    assert parse_frame(PONG_FRAME) == Pong()
    with pytest.raises(MessageTooLarge):
        parse_frame(b"\x01a\x00\x02\x01" + b"x" * 2000, max_bytes=1000)
    with pytest.raises(ProtocolError) as info:
        parse_frame(b"\x05hello", max_name_bytes=4)
    assert not isinstance(info.value, DocumentError)


@pytest.mark.parametrize(
    ("frame", "why"),
    [
        (b"\x01a\x08\x01", "sync status is server to client"),
        (b"\x01a\x02\x02\x00", "authenticated is server to client"),
        (b"\x01a\x07\x00", "a client close has no body"),
        (b"\x01a\x05\x03ab", "stateless payload past the end"),
        (b"\x01a\x09", "ping is not a document message"),
    ],
)
def test_what_a_provider_never_sends_is_a_document_error(frame: bytes, why: str) -> None:
    with pytest.raises(DocumentError) as info:
        parse_frame(frame)
    assert info.value.document == "a", why
    assert info.value.close_code == 4400


def test_server_frames_have_the_provider_layout() -> None:
    prefix = document_prefix("n1")
    assert encode_authenticated(prefix, "readonly") == b"\x02n1\x02\x02\x08readonly"
    assert encode_sync_status(prefix, True) == b"\x02n1\x08\x01"
    assert encode_token_request(prefix) == b"\x02n1\x02\x00"
    assert encode_close(prefix, "bye") == b"\x02n1\x07\x03bye"
