"""Schemas checked against bodies, and the OpenAPI document built from the app's routes."""

from __future__ import annotations

import pytest
from openapi_spec_validator import validate

from syncd.api.errors import ApiError
from syncd.api.models.notes import BASE64, CreateNote, UpdateNote, YjsUpdate
from syncd.api.models.notifications import NewNotification
from syncd.api.openapi import build_document
from syncd.api.operations import undocumented
from syncd.api.validation import parse
from syncd.app import create_app
from syncd.content import CheckedDoc
from syncd.services.redaction import redact
from syncd.settings import Settings


@pytest.mark.parametrize(
    ("model", "body", "message"),
    [
        (CreateNote, {}, "title is required"),
        (CreateNote, {"title": 5}, "title must be a string"),
        (CreateNote, {"title": " \t"}, "title must not be blank"),
        (CreateNote, {"title": "t" * 501}, "title is longer than 500 characters"),
        (CreateNote, {"title": "t", "id": "a/b"}, "id must match"),
        (CreateNote, {"title": "t", "metadata": {"tags": ["a", 1]}}, "metadata.tags[1] must be"),
        (CreateNote, {"title": "t", "metadata": {"x": 1, "a": 2}}, "metadata has unknown keys"),
        (CreateNote, {"title": "t", "metadata": {"dueDate": "soon"}}, "metadata.dueDate must be"),
        (CreateNote, {"title": "t", "permissions": {"canView": "ann"}}, "permissions.canView must"),
        (CreateNote, {"title": "t", "leadId": ["x"]}, "leadId must be a string"),
        (CreateNote, {"title": "t", "content": "x", "contentJson": {"type": "doc"}}, "not both"),
        (CreateNote, {"title": "t", "contentJson": {"type": "p"}}, "contentJson: doc: root"),
        (CreateNote, {"title": "t", "zz": "x" * 1_000_001}, "longer than 1000000"),
        (UpdateNote, {"title": None}, "title must be a string"),
        (UpdateNote, {"content": "\n" * 150_000}, "content: doc"),
        (YjsUpdate, {"update": "QUJD="}, "update is not valid base64"),
        (YjsUpdate, {"update": ""}, "update must be a base64 string"),
        (NewNotification, {"title": "t"}, "userIds (or userId) must name at least one user"),
        (NewNotification, {"title": "t", "userIds": []}, "userIds must have at least 1 items"),
        (NewNotification, {"title": "t", "userId": "a", "data": []}, "data must be an object"),
    ],
)
def test_a_refused_body_names_the_offending_field(model: type, body: dict, message: str) -> None:
    with pytest.raises(ApiError) as caught:
        parse(model, body)
    assert caught.value.status == 422
    assert message in caught.value.message, caught.value.message


def test_a_body_is_parsed_into_what_the_handler_uses() -> None:
    body = parse(
        CreateNote,
        {
            "title": " t ",
            "content": "a\n\nb",
            "metadata": {"tags": ["x", "x"], "dueDate": "2024-01-02t03:04z"},
            "version": 3,  # unknown keys of a note body are ignored
        },
    )
    assert isinstance(body.doc, CheckedDoc)
    assert [p.get("content") for p in body.doc["content"]] == [
        [{"type": "text", "text": "a"}],
        None,
        [{"type": "text", "text": "b"}],
    ]
    assert body.metadata is not None and body.metadata.parse().tags == ("x",)
    update = parse(UpdateNote, {"leadId": None, "permissions": None})
    assert set(update.changes()) == {"lead_id", "permissions"}
    assert update.changes()["lead_id"] is None and update.doc is None
    assert parse(YjsUpdate, {"update": "AAA="}).update == b"\x00\x00"


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
