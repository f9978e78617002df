"""`GET /openapi.json`: an OpenAPI 3.1 document generated from the routes and the models
their bodies are validated with.

Each REST handler declares its contract with `syncd.api.operations.operation`. The
generator walks the app's routes; path parameters come from the route template, their
types from `path_parameter` (one per name); every model becomes a component. Responses
every route shares are added here, once: 401 with a token; under `/api/` 400 and 422 for
the URL (`UrlGuardMiddleware`), 429 and 503 with `Retry-After`; 400, 413, 415 and 422 for
a body. The `webhooks` section lists the message of every webhook event type
(`syncd.api.models.events`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, TypeAdapter
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue
from pydantic_core import CoreSchema
from starlette.convertors import FloatConvertor, IntegerConvertor
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from syncd.api.models import content
from syncd.api.models._base import NO_NUL
from syncd.api.models.events import WEBHOOK_MESSAGES, WEBHOOK_TEST
from syncd.api.openapi_webhooks import webhook_item
from syncd.api.operations import (
    ERROR,
    PATH_PARAMETERS,
    MediaTypes,
    Operation,
    declared,
    operation,
)

Schema = dict[str, Any]
_REFS = "#/components/schemas/{model}"

_STATUS_TEXT = {
    200: "OK",
    201: "Created",
    204: "No content",
    400: "Body is not JSON",
    401: "Missing, invalid or expired token",
    403: "Not allowed",
    404: "Not found",
    409: "Conflict",
    413: "Body too large",
    415: "Body is not application/json",
    422: "Invalid field, parameter or value",
    429: "Rate limit exceeded (see Retry-After)",
    503: "Storage unavailable; try again (see Retry-After)",
}
_RETRY_AFTER = {
    "Retry-After": {
        "schema": {"type": "integer", "minimum": 0},
        "required": True,
        "description": "seconds",
    }
}
_ANY_SEGMENT = Annotated[str, Field(min_length=1, max_length=200, pattern=NO_NUL)]


class _Schemas(GenerateJsonSchema):
    """pydantic's generator, minus what only adds noise to an API document: a title on
    every field, and defaults (the server fills them in; a `null` default on a field that
    must not be null would read as a contradiction)."""

    def field_title_should_be_set(self, schema: Any) -> bool:
        return False

    def default_schema(self, schema: Any) -> JsonSchemaValue:
        return self.generate_inner(schema["schema"])

    def nullable_schema(self, schema: Any) -> JsonSchemaValue:
        # a scalar or null as OpenAPI 3.1 spells it most plainly: a type list, so the
        # scalar's keywords (pattern, bounds) stay where readers look for them
        inner = self.generate_inner(schema["schema"])
        if isinstance(inner.get("type"), str) and not {"enum", "const", "anyOf"} & set(inner):
            return {**inner, "type": [inner["type"], "null"]}
        return super().nullable_schema(schema)


Mode = Literal["validation", "serialization"]


class _Collector:
    """Every type the document names, generated at once so shared models become one
    component each."""

    def __init__(self) -> None:
        self._inputs: list[tuple[int, Mode, CoreSchema]] = []

    def add(self, kind: Any, mode: Mode) -> int:
        core = (
            kind.__pydantic_core_schema__
            if isinstance(kind, type) and issubclass(kind, BaseModel)
            else TypeAdapter(kind).core_schema
        )
        self._inputs.append((len(self._inputs), mode, core))
        return len(self._inputs) - 1

    def generate(self) -> tuple[dict[int, Schema], dict[str, Schema]]:
        generator = _Schemas(ref_template=_REFS)
        schemas, definitions = generator.generate_definitions(self._inputs)
        return {key: schema for (key, _), schema in schemas.items()}, {
            str(name): schema for name, schema in definitions.items()
        }


def _path_parameters(route: Route, collect: _Collector) -> list[tuple[str, int]]:
    params = []
    for name, convertor in route.param_convertors.items():
        if name in PATH_PARAMETERS:
            kind = PATH_PARAMETERS[name]
        elif isinstance(convertor, IntegerConvertor):
            kind = Annotated[int, Field(ge=0)]
        elif isinstance(convertor, FloatConvertor):
            kind = Annotated[float, Field(ge=0)]
        else:
            kind = _ANY_SEGMENT
        params.append((name, collect.add(kind, "validation")))
    return params


@dataclass
class _Pending:
    """One operation, its schemas named by collector keys until they are generated."""

    route: Route
    spec: Operation
    method: str
    path_params: list[tuple[str, int]]
    query: int | None
    body: int | None
    responses: dict[int, int | dict[str, int] | None] = field(default_factory=dict)


def _response(
    status: int, schema: Schema | None, media_type: str | dict[str, Schema], *, retry_after: bool
) -> dict[str, Any]:
    response: dict[str, Any] = {"description": _STATUS_TEXT.get(status, "Response")}
    if isinstance(media_type, dict):  # one body of several media types (`MediaTypes`)
        response["content"] = {t: {"schema": s} for t, s in media_type.items()}
    elif schema is not None:
        response["content"] = {media_type: {"schema": schema}}
    if retry_after:
        response["headers"] = _RETRY_AFTER
    return response


def _pending(route: Route, spec: Operation, method: str, collect: _Collector) -> _Pending:
    responses: dict[int, Any] = dict(spec.responses)
    api = route.path.startswith("/api/")
    shared: list[int] = []
    if spec.auth:
        shared.append(401)
    if spec.body is not None:
        shared += [400, 413, 415, 422]
    if spec.query is not None:
        shared.append(422)
    if route.param_convertors:
        shared.append(404)
    if "note_id" in route.param_convertors:  # a note the caller may not view or change
        shared.append(403)
    if api:
        shared += [400, 422, 429, 503]
    for status in shared:
        responses.setdefault(status, ERROR)
    return _Pending(
        route=route,
        spec=spec,
        method=method,
        path_params=_path_parameters(route, collect),
        query=None if spec.query is None else collect.add(spec.query, "validation"),
        body=None if spec.body is None else collect.add(spec.body, "validation"),
        responses={
            status: _response_keys(kind, collect) for status, kind in sorted(responses.items())
        },
    )


def _response_keys(kind: Any, collect: _Collector) -> int | dict[str, int] | None:
    if kind is None:
        return None
    if isinstance(kind, MediaTypes):
        return {media: collect.add(each, "serialization") for media, each in kind.types.items()}
    return collect.add(kind, "serialization")


def _body_schema(
    key: int | dict[str, int] | None, schemas: dict[int, Schema], media_type: str
) -> tuple[Schema | None, str | dict[str, Schema]]:
    if isinstance(key, dict):
        return None, {media: schemas[each] for media, each in key.items()}
    return (None if key is None else schemas[key]), media_type


def _inline(schema: Schema, definitions: dict[str, Schema]) -> Schema:
    # a body's own schema in place (readers and tests look at its properties there); the
    # models it holds stay components
    if "$ref" in schema:
        return dict(definitions[schema["$ref"].rsplit("/", 1)[-1]])
    return schema


def _query_parameters(schema: Schema, definitions: dict[str, Schema]) -> list[dict[str, Any]]:
    schema = _inline(schema, definitions)
    return [
        {"name": name, "in": "query", "required": False, "schema": _scalar(item)}
        for name, item in schema["properties"].items()
    ]


def _scalar(schema: Schema) -> Schema:
    # a parameter is never null: it is given or left out (`X | None` fields of a query)
    options = schema.get("anyOf")
    if options is not None and len(options) == 2 and {"type": "null"} in options:
        return next(o for o in options if o != {"type": "null"})
    kinds = schema.get("type")
    if isinstance(kinds, list) and "null" in kinds:
        rest = [kind for kind in kinds if kind != "null"]
        return {**schema, "type": rest[0] if len(rest) == 1 else rest}
    return schema


def _operation(op: _Pending, schemas: dict[int, Schema], definitions: dict[str, Schema]) -> Schema:
    endpoint, spec, route = op.route.endpoint, op.spec, op.route
    api = route.path.startswith("/api/")
    module = getattr(endpoint, "__module__", "syncd").rsplit(".", 1)[-1]
    document: dict[str, Any] = {
        "operationId": f"{module}.{getattr(endpoint, '__name__', 'handler')}.{op.method.lower()}",
        "summary": spec.summary,
        "parameters": [
            *(
                {"name": name, "in": "path", "required": True, "schema": schemas[key]}
                for name, key in op.path_params
            ),
            *([] if op.query is None else _query_parameters(schemas[op.query], definitions)),
        ],
        "responses": {
            str(status): _response(
                status,
                *_body_schema(
                    key, schemas, spec.media_type if status < 300 else "application/json"
                ),
                retry_after=api and status in (429, 503),
            )
            for status, key in op.responses.items()
        },
    }
    if spec.description:
        document["description"] = spec.description
    if spec.tags:
        document["tags"] = list(spec.tags)
    if op.body is not None:
        document["requestBody"] = {
            "required": spec.body_required,
            "content": {"application/json": {"schema": _inline(schemas[op.body], definitions)}},
        }
    document["security"] = [{"bearerAuth": []}] if spec.auth else []
    return document


def build_document(routes: Iterable[BaseRoute], *, version: str) -> dict[str, Any]:
    collect = _Collector()
    pending: list[tuple[str, _Pending]] = []
    for route in routes:
        spec = declared(route)
        if spec is None or not isinstance(route, Route):
            continue
        path = re.sub(r"{([^}:]+)(:[^}]+)?}", r"{\1}", route.path)
        for method in sorted((route.methods or set()) - {"HEAD"}):
            pending.append((path, _pending(route, spec, method, collect)))
    messages = (*WEBHOOK_MESSAGES.items(), WEBHOOK_TEST)
    hooks = {kind: collect.add(model, "serialization") for kind, model in messages}
    schemas, definitions = collect.generate()
    paths: dict[str, dict[str, Any]] = {}
    for path, op in pending:
        paths.setdefault(path, {})[op.method.lower()] = _operation(op, schemas, definitions)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "syncd",
            "version": version,
            "description": "REST API of syncd, the collaborative notes sync server. "
            "The y-websocket endpoint is `ws://HOST:PORT/ws/notes/{noteId}`. "
            "Browse it at `/docs`.",
        },
        "paths": paths,
        "webhooks": {kind: webhook_item(kind, schemas[key]) for kind, key in hooks.items()},
        "components": {
            "schemas": dict(sorted({**definitions, **content.COMPONENTS}.items())),
            "securitySchemes": {
                "bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
            },
        },
    }


@operation(
    "This document",
    responses={200: dict[str, Any]},
    auth=False,
    tags=["monitoring"],
)
async def openapi_json(request: Request) -> Response:
    document = getattr(request.app.state, "openapi", None)
    if document is None:  # the routes do not change once the app is built
        from syncd import __version__

        document = request.app.state.openapi = build_document(
            request.app.routes, version=__version__
        )
    return JSONResponse(document)


def routes() -> list[Route]:
    return [Route("/openapi.json", openapi_json, methods=["GET"])]
