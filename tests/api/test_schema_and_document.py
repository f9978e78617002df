"""Schemas checked against bodies, and the OpenAPI document built from the app's routes."""

from __future__ import annotations

import pytest
from openapi_spec_validator import validate

from syncd.api.openapi import build_document, undocumented
from syncd.api.schema import SchemaError, array, check, integer, nullable, obj, string
from syncd.app import create_app
from syncd.redaction import redact
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


def test_redaction_masks_tokens_in_urls_headers_and_bare_jwts() -> None:
    jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhIn0.c2lnbmF0dXJl"
    line = f'1.2.3.4:5 - "WebSocket /ws/notes/n1?token={jwt}&x=1" [accepted]'
    assert redact(line) == '1.2.3.4:5 - "WebSocket /ws/notes/n1?token=[redacted]&x=1" [accepted]'
    assert jwt not in redact(f"Authorization: Bearer {jwt}")
    assert redact(f"refresh {jwt} failed") == "refresh [redacted-jwt] failed"
    assert redact("no secrets here") == "no secrets here"
