"""Free-form input: any JSON value (notification `data`, unknown keys of a note body) and
ProseMirror documents (`contentJson`).

A ProseMirror document is checked once, by `syncd.content.check_doc` (the checker the
writer trusts), and handed on as a `CheckedDoc`; the JSON Schema below states what that
checker accepts (type names, which keys each kind of node may carry, text only in text
nodes, no text directly in the doc, string bounds), so a client or fuzzer that follows the
document sends content the server takes. Its node budget is not expressible in JSON
Schema; the nesting bound is `syncd.api.inputs`'.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import PlainValidator, WithJsonSchema
from pydantic_core import PydanticCustomError

from syncd.api.inputs import JSON_SAFE_INT, MAX_KEY_LENGTH
from syncd.api.models._base import MAX_VALUE_TEXT, NO_NUL
from syncd.content import CheckedDoc, ContentError, check_doc

__all__ = ["COMPONENTS", "JSON_OBJECT", "JSON_VALUE_REF", "JsonObject", "PmDoc", "bounded_json"]

Schema = dict[str, Any]


def _ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


KEY: Schema = {"type": "string", "maxLength": MAX_KEY_LENGTH, "pattern": NO_NUL}
JSON_VALUE_REF = _ref("JsonValue")
JSON_OBJECT: Schema = {
    "type": "object",
    "properties": {},
    "additionalProperties": JSON_VALUE_REF,
    "propertyNames": KEY,
}
_NAME_CHAR = r"[A-Za-z0-9_\-:.]"
_NAME = rf"[A-Za-z_]{_NAME_CHAR}{{0,127}}"
_TEXT: Schema = {"type": "string", "maxLength": MAX_VALUE_TEXT, "pattern": NO_NUL}
_MARKS: Schema = {"type": "array", "items": _ref("ProseMirrorMark")}

#: schemas `/openapi.json` lists under `components/schemas` beside the models' own
COMPONENTS: dict[str, Schema] = {
    "JsonValue": {
        "description": "Any JSON value; numbers within ±(2**53 - 1), nesting bounded",
        "anyOf": [
            {"type": "null"},
            {"type": "boolean"},
            {"type": "number", "minimum": -JSON_SAFE_INT, "maximum": JSON_SAFE_INT},
            _TEXT,
            {"type": "array", "items": JSON_VALUE_REF},
            JSON_OBJECT,
        ],
    },
    "ProseMirrorMark": {
        "type": "object",
        "properties": {
            # y-prosemirror reads `name--xxxxxxxx` back as `name`: not a mark name
            "type": {
                "type": "string",
                "maxLength": 128,
                "pattern": rf"^(?!{_NAME_CHAR}*--[A-Za-z0-9]{{8}}$){_NAME}$",
            },
            "attrs": JSON_OBJECT,
        },
        "required": ["type"],
        "additionalProperties": False,
    },
    "ProseMirrorText": {
        "type": "object",
        "properties": {
            "type": {"type": "string", "enum": ["text"]},
            "text": {**_TEXT, "minLength": 1},
            "marks": _MARKS,
        },
        "required": ["type", "text"],
        "additionalProperties": False,
    },
    "ProseMirrorElement": {
        "type": "object",
        "properties": {
            "type": {"type": "string", "maxLength": 128, "pattern": rf"^(?!text$){_NAME}$"},
            "attrs": JSON_OBJECT,
            "content": {"type": "array", "items": _ref("ProseMirrorNode")},
            "marks": _MARKS,
        },
        "required": ["type"],
        "additionalProperties": False,
    },
    "ProseMirrorNode": {"anyOf": [_ref("ProseMirrorText"), _ref("ProseMirrorElement")]},
    "ProseMirrorDoc": {
        "type": "object",
        "properties": {
            "type": {"type": "string", "enum": ["doc"]},
            "attrs": JSON_OBJECT,
            "content": {"type": "array", "items": _ref("ProseMirrorElement")},
        },
        "required": ["type"],
        "additionalProperties": False,
        "description": "ProseMirror JSON: text nodes only inside block nodes",
    },
}


def _doc(value: object) -> CheckedDoc:
    try:
        return check_doc(value)
    except ContentError as exc:
        raise PydanticCustomError("content", "{reason}", {"reason": str(exc)}) from None


def bounded_json(value: object) -> None:
    """Raise a validation error when a string inside `value` is longer than free-form
    input may be (`inputs` has bounded everything else: depth, keys, numbers)."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            if len(item) > MAX_VALUE_TEXT:
                raise PydanticCustomError(
                    "string_too_long",
                    "holds a string longer than {max_length} characters",
                    {"max_length": MAX_VALUE_TEXT},
                )
        elif isinstance(item, dict):
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)


def _object(value: object) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise PydanticCustomError("dict_type", "must be an object")
    bounded_json(value)
    return value


#: ProseMirror JSON, checked once by `syncd.content` and passed on as a `CheckedDoc`
PmDoc = Annotated[
    CheckedDoc, PlainValidator(_doc), WithJsonSchema(_ref("ProseMirrorDoc"), mode="validation")
]
#: a JSON object of any values (already bounded by `syncd.api.inputs`)
JsonObject = Annotated[
    dict[str, Any], PlainValidator(_object), WithJsonSchema(JSON_OBJECT, mode="validation")
]
