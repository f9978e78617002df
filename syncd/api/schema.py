"""JSON Schema, declared next to each route, used twice: to validate request bodies and to
document them in `/openapi.json`. A small builder vocabulary and a validator for exactly
the subset it builds (no `jsonschema` dependency at run time).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

Schema = dict[str, Any]

#: named schemas, shown under `components/schemas` and referenced with `ref`
COMPONENTS: dict[str, Schema] = {}


class SchemaError(ValueError):
    """A value does not match its schema; the message names the offending field."""


def component(name: str, schema: Schema) -> Schema:
    """Register `schema` under `name`; returns a `$ref` to it."""
    if COMPONENTS.get(name, schema) != schema:
        raise ValueError(f"schema {name!r} is declared twice, differently")
    COMPONENTS[name] = schema
    return {"$ref": f"#/components/schemas/{name}"}


def string(
    *,
    min_length: int | None = None,
    max_length: int | None = None,
    enum: Iterable[str] | None = None,
    fmt: str | None = None,
    pattern: str | None = None,
    description: str | None = None,
) -> Schema:
    """A string; a `pattern` is written anchored (`^...$`) and matched whole."""
    schema: Schema = {"type": "string"}
    if min_length is not None:
        schema["minLength"] = min_length
    if max_length is not None:
        schema["maxLength"] = max_length
    if enum is not None:
        schema["enum"] = list(enum)
    if fmt is not None:
        schema["format"] = fmt
    if pattern is not None:
        schema["pattern"] = pattern
    if description:
        schema["description"] = description
    return schema


def integer(*, minimum: int | None = None, maximum: int | None = None) -> Schema:
    schema: Schema = {"type": "integer"}
    if minimum is not None:
        schema["minimum"] = minimum
    if maximum is not None:
        schema["maximum"] = maximum
    return schema


def number() -> Schema:
    return {"type": "number"}


def boolean() -> Schema:
    return {"type": "boolean"}


def array(items: Schema, *, max_items: int | None = None) -> Schema:
    schema: Schema = {"type": "array", "items": items}
    if max_items is not None:
        schema["maxItems"] = max_items
    return schema


def obj(
    properties: Mapping[str, Schema],
    *,
    required: Iterable[str] = (),
    additional: bool | Schema = False,
    description: str | None = None,
) -> Schema:
    schema: Schema = {
        "type": "object",
        "properties": dict(properties),
        "additionalProperties": additional,
    }
    if required := list(required):
        schema["required"] = required
    if description:
        schema["description"] = description
    return schema


def nullable(schema: Schema) -> Schema:
    """`schema` or JSON null (OpenAPI 3.1: a type list, or anyOf for references)."""
    if "type" in schema and isinstance(schema["type"], str) and "enum" not in schema:
        return {**schema, "type": [schema["type"], "null"]}
    return {"anyOf": [schema, {"type": "null"}]}


def any_value() -> Schema:
    return {}


_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "object": (dict,),
    "array": (list,),
    "null": (type(None),),
}


def _is(value: object, kind: str) -> bool:
    if kind in ("integer", "number") and isinstance(value, bool):
        return False
    return isinstance(value, _TYPES[kind])


def check(schema: Schema, value: object, path: str = "body") -> None:
    """Raise `SchemaError` naming `path` when `value` does not match `schema`."""
    if "$ref" in schema:
        check(COMPONENTS[schema["$ref"].rsplit("/", 1)[-1]], value, path)
        return
    if "anyOf" in schema:
        errors = []
        for option in schema["anyOf"]:
            try:
                check(option, value, path)
                return
            except SchemaError as exc:
                errors.append(str(exc))
        raise SchemaError(errors[0])
    kinds = schema.get("type")
    if kinds is not None:
        kinds = [kinds] if isinstance(kinds, str) else kinds
        if not any(_is(value, kind) for kind in kinds):
            raise SchemaError(f"{path} must be {' or '.join(_article(k) for k in kinds)}")
    if "enum" in schema and value not in schema["enum"]:
        raise SchemaError(f"{path} must be one of {', '.join(map(str, schema['enum']))}")
    if isinstance(value, str):
        if len(value) < schema.get("minLength", 0):
            raise SchemaError(f"{path} must not be empty")
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            raise SchemaError(f"{path} is longer than {schema['maxLength']} characters")
        # fullmatch: Python's `$` would also accept a trailing newline
        if "pattern" in schema and re.fullmatch(schema["pattern"], value) is None:
            raise SchemaError(f"{path} must match {schema['pattern']}")
    elif isinstance(value, int | float) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            raise SchemaError(f"{path} must be at least {schema['minimum']}")
        if "maximum" in schema and value > schema["maximum"]:
            raise SchemaError(f"{path} must be at most {schema['maximum']}")
    elif isinstance(value, list):
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            raise SchemaError(f"{path} has more than {schema['maxItems']} items")
        if "items" in schema:
            for index, item in enumerate(value):
                check(schema["items"], item, f"{path}[{index}]")
    elif isinstance(value, dict):
        _check_object(schema, value, path)


def _check_object(schema: Schema, value: dict[str, Any], path: str) -> None:
    for name in schema.get("required", ()):
        if name not in value:
            raise SchemaError(f"{_join(path, name)} is required")
    properties = schema.get("properties", {})
    additional = schema.get("additionalProperties", True)
    unknown = sorted(set(value) - set(properties))
    if unknown and additional is False:
        raise SchemaError(f"{path} has unknown keys: {', '.join(unknown)}")
    for name, item in value.items():
        if name in properties:
            check(properties[name], item, _join(path, name))
        elif isinstance(additional, dict):
            check(additional, item, _join(path, name))


def _join(path: str, name: str) -> str:
    return name if path == "body" else f"{path}.{name}"


def _article(kind: str) -> str:
    return {"object": "an object", "array": "a list", "null": "null", "integer": "an integer"}.get(
        kind, f"a {kind}"
    )
