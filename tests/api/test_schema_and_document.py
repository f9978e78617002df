"""Schemas checked against bodies, and the OpenAPI document built from the app's routes."""

from __future__ import annotations

import pytest
from openapi_spec_validator import validate

from syncd.api.note_schemas import BASE64
from syncd.api.openapi import build_document, undocumented
from syncd.api.schema import (
    NO_NUL,
    SchemaError,
    array,
    at_most_one,
    check,
    integer,
    nullable,
    obj,
    string,
    text,
)
from syncd.app import create_app
from syncd.services.redaction import redact
from syncd.settings import Settings

BODY = obj(
    {
        "title": string(min_length=1, max_length=5),
        "tags": nullable(array(string(), max_items=2)),
        "meta": obj({"n": integer(minimum=1)}, additional=True),
    },
    required=["title"],
)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, "title is required"),
        ({"title": 5}, "title must be a string"),
        ({"title": ""}, "title must not be empty"),
        ({"title": "toolong"}, "title is longer than 5 characters"),
        ({"title": "t", "tags": ["a", 1]}, "tags[1] must be a string"),
        ({"title": "t", "tags": ["a", "b", "c"]}, "tags has more than 2 items"),
        ({"title": "t", "meta": {"n": 0}}, "meta.n must be at least 1"),
        ({"title": "t", "meta": {"n": True}}, "meta.n must be an integer"),
        ({"title": "t", "extra": 1}, "body has unknown keys: extra"),
    ],
)
def test_check_names_the_offending_field(body: dict, message: str) -> None:
    with pytest.raises(SchemaError, match=message.replace("[", r"\[").replace("]", r"\]")):
        check(BODY, body)


def test_check_accepts_what_the_schema_allows() -> None:
    check(BODY, {"title": "t", "tags": None, "meta": {"n": 2, "other": "x"}})


INPUT = at_most_one(
    obj(
        {
            "name": text(max_length=10, blank=False),
            "code": string(pattern=r"^[a-z]+$"),
            "ids": array(text(max_length=5), min_items=1),
            "a": nullable(integer()),
            "b": nullable(integer()),
        },
        additional=integer(),
        keys=string(max_length=3, pattern=NO_NUL),
    ),
    ("a", "b"),
    "give a or b, not both",
)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"name": "  \t"}, "name must not be blank"),
        ({"name": "a\x00"}, "name does not match"),
        ({"code": "abc\n"}, "code does not match"),  # `$` ends the string, as in ECMA
        ({"ids": []}, "ids must have at least 1 items"),
        ({"long": 1}, "a key in body is longer than 3 characters"),
        ({"a": 1, "b": 2}, "give a or b, not both"),
    ],
)
def test_check_applies_patterns_sizes_key_names_and_exclusions(body: dict, message: str) -> None:
    with pytest.raises(SchemaError, match=message):
        check(INPUT, body)


def test_check_takes_what_those_rules_allow() -> None:
    check(INPUT, {"name": " x ", "code": "abc", "ids": ["1"], "a": 1, "b": None, "k": 5})


def test_every_rest_route_is_documented_in_a_valid_openapi_3_1_document() -> None:
    app = create_app(Settings())
    assert undocumented(app.routes) == []
    document = build_document(app.routes, version="test")
    validate(document)
    operations = [op for path in document["paths"].values() for op in path.values()]
    assert len({op["operationId"] for op in operations}) == len(operations)
    for path, methods in document["paths"].items():
        for method, op in methods.items():
            assert (
                "200" in op["responses"] or "201" in op["responses"] or "204" in op["responses"]
            ), (method, path)
            if path.startswith("/api/"):
                assert "429" in op["responses"], (method, path)
                assert "retry-after" in {h.lower() for h in op["responses"]["429"]["headers"]}
    create = document["paths"]["/api/collaborative-notes"]["post"]
    assert create["requestBody"]["content"]["application/json"]["schema"]["required"] == ["title"]
    assert create["security"] == [{"bearerAuth": []}]
    assert document["paths"]["/api/auth/refresh"]["post"]["security"] == []


def _strings(schema: object, components: dict) -> list[dict]:
    """Every string schema reachable from `schema` (each component once)."""
    found, seen, pending = [], set(), [schema]
    while pending:
        item = pending.pop()
        if isinstance(item, list):
            pending.extend(item)
        elif isinstance(item, dict):
            ref = item.get("$ref")
            if ref is not None:
                if ref not in seen:
                    seen.add(ref)
                    pending.append(components[ref.rsplit("/", 1)[-1]])
                continue
            kind = item.get("type")
            if kind == "string" or (isinstance(kind, list) and "string" in kind):
                found.append(item)
            pending.extend(v for k, v in item.items() if k not in ("enum", "required"))
    return found


def test_every_input_is_bounded_and_every_refusal_documented() -> None:
    document = build_document(create_app(Settings()).routes, version="test")
    components = document["components"]["schemas"]
    for path, methods in document["paths"].items():
        for method, op in methods.items():
            responses = op["responses"]
            inputs = [p["schema"] for p in op["parameters"]]
            if "requestBody" in op:
                inputs.append(op["requestBody"]["content"]["application/json"]["schema"])
                assert {"400", "413", "415", "422"} <= set(responses), (method, path)
            if path.startswith("/api/"):
                assert {"400", "422", "429", "503"} <= set(responses), (method, path)
                for status in ("429", "503"):
                    assert responses[status]["headers"]["Retry-After"]["required"] is True
            for schema in _strings(inputs, components):
                # the base64 Yjs update is bounded by the body limit (413) alone
                bounded = {"maxLength", "enum"} & set(schema) or schema.get("pattern") == BASE64
                assert bounded, (method, path, schema)
                # and none takes a NUL byte
                assert {"pattern", "enum", "format"} & set(schema), (method, path, schema)


def test_redaction_masks_tokens_in_urls_headers_and_bare_jwts() -> None:
    jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhIn0.c2lnbmF0dXJl"
    line = f'1.2.3.4:5 - "WebSocket /ws/notes/n1?token={jwt}&x=1" [accepted]'
    assert redact(line) == '1.2.3.4:5 - "WebSocket /ws/notes/n1?token=[redacted]&x=1" [accepted]'
    assert jwt not in redact(f"Authorization: Bearer {jwt}")
    assert redact(f"refresh {jwt} failed") == "refresh [redacted-jwt] failed"
    assert redact("no secrets here") == "no secrets here"
