"""Free-form input: any JSON value (notification `data`, unknown keys of a note body) and
ProseMirror documents (`contentJson`).

A ProseMirror document is checked once, by `syncd.content.check_doc` (the checker the
writer trusts: its shape and the safe schema in one walk), and handed on as a
`CheckedDoc`; the JSON Schema below, generated from `syncd.content.schema`, states what
that checker accepts (node and mark types with their attributes, safe URLs, text only in
text nodes, no text directly in the doc, string bounds), so a client or fuzzer that follows the
document sends content the server takes. Its node budget is not expressible in JSON
Schema; the nesting bound is `syncd.api.inputs`'.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import PlainValidator, WithJsonSchema
from pydantic_core import PydanticCustomError

from syncd.api.inputs import JSON_SAFE_INT, MAX_KEY_LENGTH
from syncd.api.models._base import MAX_VALUE_TEXT, NO_NUL
from syncd.content import CheckedDoc, ContentError, UnsafeContent, check_doc
from syncd.content.schema import (
    MARKS,
    MAX_URL_LENGTH,
    NODES,
    SAFE_URL_PATTERN,
    SAFE_URL_SCHEMES,
    Attr,
    TypeSpec,
)

__all__ = [
    "COMPONENTS",
    "JSON_OBJECT",
    "JSON_VALUE_REF",
    "PM_DOC_REF",
    "JsonObject",
    "PmDoc",
    "bounded_json",
]

Schema = dict[str, Any]


def _ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


KEY: Schema = {"type": "string", "maxLength": MAX_KEY_LENGTH, "pattern": NO_NUL}
JSON_VALUE_REF = _ref("JsonValue")
PM_DOC_REF = _ref("ProseMirrorDoc")
JSON_OBJECT: Schema = {
    "type": "object",
    "properties": {},
    "additionalProperties": JSON_VALUE_REF,
    "propertyNames": KEY,
}
_TEXT: Schema = {"type": "string", "maxLength": MAX_VALUE_TEXT, "pattern": NO_NUL}
_MARKS: Schema = {"type": "array", "items": _ref("ProseMirrorMark")}


def _text(max_length: int, min_length: int = 0) -> Schema:
    schema: Schema = {"type": "string", "maxLength": max_length, "pattern": NO_NUL}
    if min_length:
        schema["minLength"] = min_length
    return schema


def _integer(minimum: int, maximum: int) -> Schema:
    return {"type": "integer", "minimum": minimum, "maximum": maximum}


def _attr(rule: Attr) -> Schema:
    if rule.kind == "int":
        return _integer(rule.minimum, rule.maximum)
    if rule.kind == "str":
        if rule.enum is not None:
            return {"type": "string", "enum": list(rule.enum)}
        return _text(rule.max_length)
    if rule.kind == "url":
        return {
            "type": "string",
            "minLength": 1,
            "maxLength": MAX_URL_LENGTH,
            "pattern": SAFE_URL_PATTERN,
            "description": f"{', '.join(SAFE_URL_SCHEMES)} or a relative URL",
        }
    if rule.kind == "id":
        return {
            "anyOf": [
                _text(rule.max_length, min_length=1),
                _integer(-JSON_SAFE_INT, JSON_SAFE_INT),
            ]
        }
    if rule.kind == "bool":
        return {"type": "boolean"}
    if rule.kind == "ints":
        return {
            "type": "array",
            "items": _integer(rule.minimum, rule.maximum),
            "maxItems": 1000,
        }
    raise ValueError(rule.kind)


def _attrs(spec: TypeSpec) -> Schema:
    # null means absent (y-prosemirror drops it), so any key may be null
    properties = {
        name: _attr(rule) if name in spec.required else {"anyOf": [_attr(rule), {"type": "null"}]}
        for name, rule in spec.attrs.items()
    }
    schema: Schema = {
        "type": "object",
        "properties": properties,
        "additionalProperties": {"type": "null"},
        "propertyNames": KEY,
    }
    if spec.required:
        schema["required"] = sorted(spec.required)
    return schema


def _by_spec(types: Mapping[str, TypeSpec]) -> list[tuple[list[str], TypeSpec]]:
    """Type names grouped by the spec they share (`bullet_list` and `bulletList`)."""
    groups: dict[int, tuple[list[str], TypeSpec]] = {}
    for name, spec in types.items():
        groups.setdefault(id(spec), ([], spec))[0].append(name)
    return list(groups.values())


def _typed(names: list[str], spec: TypeSpec, extra: Mapping[str, Schema]) -> Schema:
    return {
        "type": "object",
        "properties": {"type": {"type": "string", "enum": names}, "attrs": _attrs(spec), **extra},
        "required": ["type", "attrs"] if spec.required else ["type"],
        "additionalProperties": False,
    }


def _safe_schema_components() -> dict[str, Schema]:
    """The ProseMirror schemas, generated from the safe schema of `syncd.content.schema`
    (node and mark types, their attributes, safe URLs) in the shape `check_doc` accepts."""
    elements = [
        _typed(
            names,
            spec,
            {"content": {"type": "array", "items": _ref("ProseMirrorNode")}, "marks": _MARKS},
        )
        for names, spec in _by_spec({n: s for n, s in NODES.items() if n != "doc"})
    ]
    return {
        "ProseMirrorMark": {
            "anyOf": [_typed(names, spec, {}) for names, spec in _by_spec(MARKS)],
            "description": "A mark of the safe schema (`syncd/content/schema.py`)",
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
            "anyOf": elements,
            "description": "A node of the safe schema (`syncd/content/schema.py`), not text",
        },
        "ProseMirrorNode": {"anyOf": [_ref("ProseMirrorText"), _ref("ProseMirrorElement")]},
        "ProseMirrorDoc": {
            "type": "object",
            "properties": {
                "type": {"type": "string", "enum": ["doc"]},
                "attrs": _attrs(NODES["doc"]),
                "content": {"type": "array", "items": _ref("ProseMirrorElement")},
            },
            "required": ["type"],
            "additionalProperties": False,
            "description": "ProseMirror JSON within the safe schema (`syncd/content/schema.py`): "
            "text nodes only inside block nodes; links and images only to "
            f"{', '.join(SAFE_URL_SCHEMES)} or relative URLs",
        },
    }


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
}
COMPONENTS.update(_safe_schema_components())


def _doc(value: object) -> CheckedDoc:
    try:
        return check_doc(value)
    except UnsafeContent as exc:  # `pointer`: where in the doc (the API adds the field's)
        reason = {"reason": exc.reason, "pointer": exc.pointer or ""}
        raise PydanticCustomError("content", "{reason}", reason) from None
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
