"""JSON Schema, declared next to each route, used twice: to validate request bodies and to
document them in `/openapi.json`. A small builder vocabulary and a validator for exactly
the subset it builds (no `jsonschema` dependency at run time).

Input strings are built with `text()`: it declares what `syncd.api.inputs` enforces on
every string anyway (no NUL byte), so generated clients and fuzzers see the real contract.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping
from typing import Any

Schema = dict[str, Any]

#: a string without NUL bytes (`\u0000` is spelled as an escape, as ECMA and Python read it)
NO_NUL = r"^[^\u0000]*$"
#: ...that also holds something besides white space (the server strips and requires it)
NOT_BLANK = r"^[^\u0000]*[^\s\u0000][^\u0000]*$"

#: named schemas, shown under `components/schemas` and referenced with `ref`
COMPONENTS: dict[str, Schema] = {}


class SchemaError(ValueError):
    """A value does not match its schema; the message names the offending field."""

    def __init__(self, message: str, path: str = "body") -> None:
        super().__init__(message)
        self.path = path

    @property
    def pointer(self) -> str:
        """`path` as a JSON pointer (RFC 6901) into the body: `a.b[2]` is `/a/b/2` (for a
        bad key, the object that holds it)."""
        path = self.path.removeprefix("a key in ")
        if path == "body":
            return ""
        parts = re.findall(r"[^.\[\]]+|\[\d+\]", path)
        return "".join(
            "/" + (p[1:-1] if p.startswith("[") else p.replace("~", "~0").replace("/", "~1"))
            for p in parts
        )


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


def text(
    *,
    max_length: int,
    min_length: int | None = None,
    blank: bool = True,
    pattern: str | None = None,
    fmt: str | None = None,
    description: str | None = None,
) -> Schema:
    """An input string: bounded, without NUL bytes, and (with `blank=False`) not only white
    space. A `pattern` of its own replaces the NUL rule, so it must exclude NUL itself."""
    return string(
        min_length=min_length if min_length is not None else (None if blank else 1),
        max_length=max_length,
        pattern=pattern or (NO_NUL if blank else NOT_BLANK),
        fmt=fmt,
        description=description,
    )


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


def array(items: Schema, *, max_items: int | None = None, min_items: int | None = None) -> Schema:
    schema: Schema = {"type": "array", "items": items}
    if min_items is not None:
        schema["minItems"] = min_items
    if max_items is not None:
        schema["maxItems"] = max_items
    return schema


def obj(
    properties: Mapping[str, Schema],
    *,
    required: Iterable[str] = (),
    additional: bool | Schema = False,
    keys: Schema | None = None,
    description: str | None = None,
) -> Schema:
    """An object; `keys` (a string schema) bounds the names of additional properties."""
    schema: Schema = {
        "type": "object",
        "properties": dict(properties),
        "additionalProperties": additional,
    }
    if required := list(required):
        schema["required"] = required
    if keys is not None:
        schema["propertyNames"] = keys
    if description:
        schema["description"] = description
    return schema


def at_most_one(schema: Schema, names: Iterable[str], message: str) -> Schema:
    """The object `schema`, where at most one of the properties `names` is given (not
    null); `message` is the error otherwise. (An `anyOf` rather than a `not`, which
    generators of examples handle poorly; each option repeats the type for the same
    reason.)"""
    return {
        **schema,
        "anyOf": [{"type": "object", "properties": {name: {"type": "null"}}} for name in names],
        "x-error": message,
    }


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
    if "x-discriminator" in schema:
        _check_tagged(schema["anyOf"], schema["x-discriminator"], value, path)
    elif "anyOf" in schema:
        _check_any(schema["anyOf"], value, path, schema.get("x-error"))
    kinds = schema.get("type")
    if kinds is not None:
        kinds = [kinds] if isinstance(kinds, str) else kinds
        if not any(_is(value, kind) for kind in kinds):
            raise SchemaError(f"{path} must be {' or '.join(_article(k) for k in kinds)}", path)
    if "enum" in schema and value not in schema["enum"]:
        raise SchemaError(f"{path} must be one of {', '.join(map(str, schema['enum']))}", path)
    if isinstance(value, str):
        _check_string(schema, value, path)
    elif isinstance(value, int | float) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            raise SchemaError(f"{path} must be at least {schema['minimum']}", path)
        if "maximum" in schema and value > schema["maximum"]:
            raise SchemaError(f"{path} must be at most {schema['maximum']}", path)
    elif isinstance(value, list):
        if len(value) < schema.get("minItems", 0):
            raise SchemaError(f"{path} must have at least {schema['minItems']} items", path)
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            raise SchemaError(f"{path} has more than {schema['maxItems']} items", path)
        if "items" in schema:
            for index, item in enumerate(value):
                check(schema["items"], item, f"{path}[{index}]")
    elif isinstance(value, dict):
        _check_object(schema, value, path)


def _check_any(options: list[Schema], value: object, path: str, message: str | None) -> None:
    errors: list[SchemaError] = []
    for option in options:
        try:
            check(option, value, path)
            return
        except SchemaError as exc:
            errors.append(exc)
    if message is not None:
        raise SchemaError(message, path)
    # the option that got furthest into the value explains the failure best
    raise max(errors, key=lambda error: len(error.path))


def _check_tagged(options: list[Schema], tag: str, value: object, path: str) -> None:
    """`anyOf` over objects told apart by the `enum` of their property `tag` (ProseMirror
    node types): the option the value names explains a failure, not the one that got
    furthest."""
    if not isinstance(value, dict):
        raise SchemaError(f"{path} must be an object", path)
    names = [name for option in options for name in option["properties"][tag]["enum"]]
    if tag not in value:
        raise SchemaError(f"{_join(path, tag)} is required", _join(path, tag))
    for option in options:
        if value[tag] in option["properties"][tag]["enum"]:
            check(option, value, path)
            return
    shown = str(value[tag])[:64]
    raise SchemaError(f"{_join(path, tag)} {shown!r} is not one of {', '.join(names)}", path)


def _check_string(schema: Schema, value: str, path: str) -> None:
    if len(value) < schema.get("minLength", 0):
        raise SchemaError(f"{path} must not be empty", path)
    if "maxLength" in schema and len(value) > schema["maxLength"]:
        raise SchemaError(f"{path} is longer than {schema['maxLength']} characters", path)
    if "pattern" in schema and _pattern(schema["pattern"]).search(value) is None:
        if schema["pattern"] == NOT_BLANK and "\x00" not in value:
            raise SchemaError(f"{path} must not be blank", path)
        if "x-error" in schema:  # a pattern too long to be an explanation
            raise SchemaError(f"{path} {schema['x-error']}", path)
        raise SchemaError(f"{path} does not match {schema['pattern']}", path)


@functools.cache
def _pattern(source: str) -> re.Pattern[str]:
    # ECMA's `$` (what JSON Schema means) ends the string; Python's also matches before a
    # final newline, which `\Z` does not
    if source.endswith("$") and not source.endswith("\\$"):
        source = source[:-1] + r"\Z"
    return re.compile(source)


def _check_object(schema: Schema, value: dict[str, Any], path: str) -> None:
    for name in schema.get("required", ()):
        if name not in value:
            raise SchemaError(f"{_join(path, name)} is required", path)
    properties = schema.get("properties", {})
    additional = schema.get("additionalProperties", True)
    unknown = sorted(set(value) - set(properties))
    if unknown and additional is False:
        raise SchemaError(f"{path} has unknown keys: {', '.join(unknown)}", path)
    keys = schema.get("propertyNames")
    for name, item in value.items():
        if name in properties:
            check(properties[name], item, _join(path, name))
            continue
        if keys is not None:
            check(keys, name, f"a key in {path}")
        if isinstance(additional, dict):
            check(additional, item, _join(path, name))


def _join(path: str, name: str) -> str:
    return name if path == "body" else f"{path}.{name}"


def _article(kind: str) -> str:
    return {"object": "an object", "array": "a list", "null": "null", "integer": "an integer"}.get(
        kind, f"a {kind}"
    )
