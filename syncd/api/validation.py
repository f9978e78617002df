"""Bodies and queries into models: one pydantic validation, its first failure rendered as
the 422 error envelope with a message that names the field (`metadata.tags[1] must be a
string`). Runs after the rules of `syncd.api.inputs`, which every body obeys first."""

from __future__ import annotations

import functools
import re
import types
import typing
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails
from starlette.requests import Request

from syncd.api.errors import ApiError
from syncd.api.requests import read_json

M = TypeVar("M", bound=BaseModel)

_MESSAGES = {
    "missing": "is required",
    "string_type": "must be a string",
    "int_type": "must be an integer",
    "bool_type": "must be a boolean",
    "float_type": "must be a number",
    "list_type": "must be a list",
    "dict_type": "must be an object",
    "model_type": "must be an object",
    "model_attributes_type": "must be an object",
    "string_too_short": "must not be empty",
    "string_too_long": "is longer than {max_length} characters",
    "too_short": "must have at least {min_length} items",
    "too_long": "has more than {max_length} items",
    "greater_than_equal": "must be at least {ge}",
    "less_than_equal": "must be at most {le}",
    "literal_error": "must be one of {expected}",
}


def invalid(exc: ValidationError, root: str = "body") -> ApiError:
    """The 422 for a failed validation: its first error, or every unknown key of an
    object at once (`body has unknown keys: a, b`)."""
    errors = exc.errors(include_url=False, include_input=False)
    first = errors[0]
    if first["type"] == "extra_forbidden":
        parent = first["loc"][:-1]
        unknown = sorted(
            str(e["loc"][-1])
            for e in errors
            if e["type"] == "extra_forbidden" and e["loc"][:-1] == parent
        )
        message = f"{_path(parent, root)} has unknown keys: {', '.join(unknown)}"
        return ApiError(422, message, pointer=_pointer(parent, root))
    inner = first.get("ctx", {}).get("pointer", "") if first["type"] == "content" else ""
    return ApiError(422, describe(first, root), pointer=_pointer(first["loc"], root, inner))


def _pointer(loc: tuple[int | str, ...], root: str, inner: str = "") -> str | None:
    """The JSON pointer (RFC 6901) of `loc` in the body (a refused key: the object that
    holds it; content: the value inside the doc); None for a query."""
    if root != "body":
        return None
    escaped = (str(key).replace("~", "~0").replace("/", "~1") for key in loc)
    return "".join("/" + key for key in escaped) + inner


def describe(error: ErrorDetails, root: str = "body") -> str:
    loc = error["loc"]
    template = _MESSAGES.get(error["type"])
    message = template.format(**error.get("ctx", {})) if template else error["msg"]
    if not loc:
        return message  # a rule of the whole body, said in full
    if error["type"] == "content":
        return f"{_path(loc, root)}: {error.get('ctx', {}).get('reason', message)}"
    return f"{_path(loc, root)} {message}"


def _path(loc: tuple[int | str, ...], root: str) -> str:
    rendered = ""
    for key in loc:
        if isinstance(key, int):
            rendered += f"[{key}]"
        else:
            rendered = str(key)[:64] if not rendered else f"{rendered}.{str(key)[:64]}"
    return rendered or root


def parse(model: type[M], data: dict[str, Any]) -> M:
    """`data` as `model`, or the 422 that names what is wrong."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise invalid(exc) from None


async def read_body(request: Request, model: type[M], *, optional: bool = False) -> M:
    """The request body as `model` (413/415/400/422 as `read_json` says, then 422 for
    what the model refuses); with `optional`, an empty body reads as `{}`."""
    return parse(model, await read_json(request, optional=optional))


_INTEGER = re.compile(r"-?[0-9]{1,18}")


def read_query(request: Request, model: type[M]) -> M:
    """The query parameters `model` declares, converted to their field's type and
    validated (422 naming the parameter); undeclared ones are ignored. An empty value is
    a value: `""` for a string (the routes read it as no filter), 422 for a number or a
    flag."""
    values: dict[str, Any] = {}
    for name, kind in _kinds(model).items():
        given = request.query_params.getlist(name)
        if not given:
            continue
        if len(given) > 1:
            raise ApiError(422, f"{name} is given more than once")
        raw = given[0]
        if kind is int:
            if not _INTEGER.fullmatch(raw):
                raise ApiError(422, f"{name} must be an integer")
            values[name] = int(raw)
        elif kind is bool:
            if raw not in ("true", "false"):
                raise ApiError(422, f"{name} must be true or false")
            values[name] = raw == "true"
        else:
            values[name] = raw
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        raise invalid(exc, root="query") from None


@functools.cache
def _kinds(model: type[BaseModel]) -> dict[str, type]:
    """Each field's scalar type (`int | None` is int)."""
    kinds: dict[str, type] = {}
    for name, field in model.model_fields.items():
        annotation: Any = field.annotation
        if typing.get_origin(annotation) in (typing.Union, types.UnionType):
            annotation = next(a for a in typing.get_args(annotation) if a is not type(None))
        if typing.get_origin(annotation) is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
        kinds[name] = int if annotation is int else bool if annotation is bool else str
    return kinds
