"""JSON Schemas of free-form input: any JSON value (notification `data`, node attributes)
and a ProseMirror document (`contentJson`).

The ProseMirror schema states what `syncd.content.validate_pm_json` accepts (type names,
which keys each kind of node may carry, text only in text nodes, no text directly in the
doc), so a client or fuzzer that follows the document sends content the server takes.
Its node budget is not expressible here; the nesting bound is `syncd.api.inputs`'.
"""

from __future__ import annotations

from syncd.api.inputs import JSON_SAFE_INT, MAX_KEY_LENGTH
from syncd.api.schema import NO_NUL, Schema, array, component, obj, string, text

#: the longest string of free-form input (as long as a note's plain-text content)
MAX_VALUE_TEXT = 1_000_000

KEY = string(max_length=MAX_KEY_LENGTH, pattern=NO_NUL)


def _ref(name: str) -> Schema:
    # a reference to a component registered below (the schemas are recursive)
    return {"$ref": f"#/components/schemas/{name}"}


JSON_VALUE = component(
    "JsonValue",
    {
        "description": "Any JSON value; numbers within ±(2**53 - 1), nesting bounded",
        "anyOf": [
            {"type": "null"},
            {"type": "boolean"},
            {"type": "number", "minimum": -JSON_SAFE_INT, "maximum": JSON_SAFE_INT},
            text(max_length=MAX_VALUE_TEXT),
            {"type": "array", "items": _ref("JsonValue")},
            obj({}, additional=_ref("JsonValue"), keys=KEY),
        ],
    },
)
JSON_OBJECT = obj({}, additional=JSON_VALUE, keys=KEY)

# `syncd.content` checks type names against this, whole
_NAME_CHAR = r"[A-Za-z0-9_\-:.]"
_NAME = rf"[A-Za-z_]{_NAME_CHAR}{{0,127}}"
_ATTRS = JSON_OBJECT
PM_MARK = component(
    "ProseMirrorMark",
    obj(
        {
            # y-prosemirror reads `name--xxxxxxxx` back as `name`: not a mark name
            "type": string(
                max_length=128, pattern=rf"^(?!{_NAME_CHAR}*--[A-Za-z0-9]{{8}}$){_NAME}$"
            ),
            "attrs": _ATTRS,
        },
        required=["type"],
    ),
)
_MARKS = array(PM_MARK)
PM_TEXT = component(
    "ProseMirrorText",
    obj(
        {
            "type": string(enum=["text"]),
            "text": text(min_length=1, max_length=MAX_VALUE_TEXT),
            "marks": _MARKS,
        },
        required=["type", "text"],
    ),
)
PM_ELEMENT = component(
    "ProseMirrorElement",
    obj(
        {
            "type": string(max_length=128, pattern=rf"^(?!text$){_NAME}$"),
            "attrs": _ATTRS,
            "content": array(_ref("ProseMirrorNode")),
            "marks": _MARKS,
        },
        required=["type"],
    ),
)
PM_NODE = component("ProseMirrorNode", {"anyOf": [PM_TEXT, PM_ELEMENT]})
PM_DOC = component(
    "ProseMirrorDoc",
    obj(
        {"type": string(enum=["doc"]), "attrs": _ATTRS, "content": array(PM_ELEMENT)},
        required=["type"],
        description="ProseMirror JSON: text nodes only inside block nodes",
    ),
)
