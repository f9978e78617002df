"""JSON Schemas of free-form input: any JSON value (notification `data`, node attributes)
and a ProseMirror document (`contentJson`).

The ProseMirror schema is the safe schema of `syncd.content.schema` (node and mark types,
their attributes, safe URLs) in the shape `syncd.content.validate_pm_json` accepts (text
only in text nodes, no text directly in the doc), generated from it, so a client or
fuzzer that follows the document sends content the server takes.
Its node budget is not expressible here; the nesting bound is `syncd.api.inputs`'.
"""

from __future__ import annotations

from collections.abc import Mapping

from syncd.api.inputs import JSON_SAFE_INT, MAX_KEY_LENGTH
from syncd.api.schema import (
    NO_NUL,
    Schema,
    array,
    component,
    integer,
    nullable,
    obj,
    string,
    text,
)
from syncd.content.schema import (
    MARKS,
    MAX_URL_LENGTH,
    NODES,
    SAFE_URL_PATTERN,
    SAFE_URL_SCHEMES,
    Attr,
    TypeSpec,
)

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


def _attr(rule: Attr) -> Schema:
    if rule.kind == "int":
        return integer(minimum=rule.minimum, maximum=rule.maximum)
    if rule.kind == "str":
        if rule.enum is not None:
            return string(enum=rule.enum)
        return text(max_length=rule.max_length)
    if rule.kind == "url":
        schema = string(min_length=1, max_length=MAX_URL_LENGTH, pattern=SAFE_URL_PATTERN)
        schema["description"] = f"{', '.join(SAFE_URL_SCHEMES)} or a relative URL"
        schema["x-error"] = f"must be a {', '.join(SAFE_URL_SCHEMES)} or relative URL"
        return schema
    if rule.kind == "id":
        return {
            "anyOf": [
                text(min_length=1, max_length=rule.max_length),
                integer(minimum=-JSON_SAFE_INT, maximum=JSON_SAFE_INT),
            ]
        }
    if rule.kind == "ints":
        return array(integer(minimum=rule.minimum, maximum=rule.maximum), max_items=1000)
    raise ValueError(rule.kind)


def _attrs(spec: TypeSpec) -> Schema:
    # null means absent (y-prosemirror drops it), so any key may be null
    return obj(
        {
            name: _attr(rule) if name in spec.required else nullable(_attr(rule))
            for name, rule in spec.attrs.items()
        },
        required=sorted(spec.required),
        additional={"type": "null"},
        keys=KEY,
    )


def _by_spec(types: Mapping[str, TypeSpec]) -> list[tuple[list[str], TypeSpec]]:
    """Type names grouped by the spec they share (`bullet_list` and `bulletList`)."""
    groups: dict[int, tuple[list[str], TypeSpec]] = {}
    for name, spec in types.items():
        groups.setdefault(id(spec), ([], spec))[0].append(name)
    return list(groups.values())


def _tagged(options: list[Schema], description: str) -> Schema:
    # `x-discriminator`: `syncd.api.schema.check` explains a failure by the option the
    # value's `type` names
    return {"anyOf": options, "x-discriminator": "type", "description": description}


def _typed(names: list[str], spec: TypeSpec, extra: Mapping[str, Schema]) -> Schema:
    return obj(
        {"type": string(enum=names), "attrs": _attrs(spec), **extra},
        required=["type", "attrs"] if spec.required else ["type"],
    )


PM_MARK = component(
    "ProseMirrorMark",
    _tagged(
        [_typed(names, spec, {}) for names, spec in _by_spec(MARKS)],
        "A mark of the safe schema (`syncd/content/schema.py`)",
    ),
)
_MARKS = array(PM_MARK)
_TEXT = obj(
    {
        "type": string(enum=["text"]),
        "text": text(min_length=1, max_length=MAX_VALUE_TEXT),
        "marks": _MARKS,
    },
    required=["type", "text"],
)
_ELEMENTS = [
    _typed(names, spec, {"content": array(_ref("ProseMirrorNode")), "marks": _MARKS})
    for names, spec in _by_spec({name: spec for name, spec in NODES.items() if name != "doc"})
]
PM_NODE = component(
    "ProseMirrorNode",
    _tagged([_TEXT, *_ELEMENTS], "A text node or a node of the safe schema"),
)
PM_ELEMENT = component(
    "ProseMirrorElement",
    _tagged(_ELEMENTS, "A node of the safe schema (`syncd/content/schema.py`), not text"),
)
PM_DOC = component(
    "ProseMirrorDoc",
    obj(
        {"type": string(enum=["doc"]), "attrs": _attrs(NODES["doc"]), "content": array(PM_ELEMENT)},
        required=["type"],
        description="ProseMirror JSON within the safe schema (`syncd/content/schema.py`): "
        "text nodes only inside block nodes; links and images only to "
        f"{', '.join(SAFE_URL_SCHEMES)} or relative URLs",
    ),
)
