"""The key layout: an id can never leave its place in a key name, two ids never share a
key, and note ids keep the keys they had before ids were encoded."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from syncd.bus.keys import Keys, id_of_part, key_part
from syncd.ids import is_note_id
from syncd.settings import Settings, SettingsError

KEYS = Keys("syncd")
#: every text, lone surrogates included (a JSON body can carry "\ud800")
ANY_TEXT = st.text(st.characters(exclude_categories=()), max_size=200)


def hash_tag(key: str) -> str:
    """What Redis Cluster hashes (the text between the first `{` and the next `}`)."""
    start = key.find("{")
    end = key.find("}", start + 1) if start >= 0 else -1
    return key if start < 0 or end <= start + 1 else key[start + 1 : end]


@given(ANY_TEXT)
def test_an_encoded_id_holds_no_brace_colon_or_stray_percent(value: str) -> None:
    part = key_part(value)
    assert part.isascii() and part.isprintable()
    assert not {"{", "}", ":", "/", " "} & set(part)
    assert id_of_part(part) == value
    assert id_of_part(part.encode()) == value


@given(ANY_TEXT, ANY_TEXT)
def test_different_ids_get_different_keys_and_slots(a: str, b: str) -> None:
    if a == b:
        return
    assert KEYS.updates(a) != KEYS.updates(b)
    assert KEYS.awareness(a) != KEYS.awareness(b)
    assert hash_tag(KEYS.updates(a)) != hash_tag(KEYS.updates(b))
    assert KEYS.online(a) != KEYS.online(b)
    assert KEYS.refresh_token(a, "j") != KEYS.refresh_token(b, "j")


@given(ANY_TEXT)
def test_every_key_of_a_doc_shares_its_slot(doc_id: str) -> None:
    tags = {
        hash_tag(key)
        for key in (
            KEYS.updates(doc_id),
            KEYS.lease(doc_id),
            KEYS.awareness(doc_id),
            KEYS.cache(doc_id),
        )
    }
    assert tags == {f"doc:{key_part(doc_id)}"}


@given(st.from_regex(r"\A[A-Za-z0-9_-]{1,128}\Z"))
def test_note_ids_keep_the_keys_they_had(note_id: str) -> None:
    assert is_note_id(note_id)
    assert KEYS.updates(note_id) == f"syncd:{{doc:{note_id}}}:updates"
    assert KEYS.presence(note_id) == f"syncd:{{note:{note_id}}}:presence"


@pytest.mark.parametrize(
    ("doc_id", "key"),
    [
        ("V}x", "syncd:{doc:V%7Dx}:updates"),
        ("V%7Dx", "syncd:{doc:V%257Dx}:updates"),
        ("a:b", "syncd:{doc:a%3Ab}:updates"),
        ("\x00", "syncd:{doc:%00}:updates"),
        ("é", "syncd:{doc:%C3%A9}:updates"),
        ("\ud800", "syncd:{doc:%ED%A0%80}:updates"),
        ("", "syncd:{doc:}:updates"),
    ],
)
def test_what_an_encoded_key_looks_like(doc_id: str, key: str) -> None:
    assert KEYS.updates(doc_id) == key


@pytest.mark.parametrize("part", ["%7d", "%zz", "a:b", "%", "V}", "%FF", b"\xff"])
def test_names_the_encoding_never_writes_name_no_id(part: str | bytes) -> None:
    assert id_of_part(part) is None


def test_a_prefix_with_a_brace_is_refused() -> None:
    with pytest.raises(ValueError, match="braces"):
        Keys("app{1}")


def test_a_configured_prefix_with_a_brace_is_a_settings_error() -> None:
    with pytest.raises(SettingsError, match="SYNCD_REDIS_PREFIX"):
        Settings.from_env({"SYNCD_REDIS_PREFIX": "app{1}"})
