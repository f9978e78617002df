"""`GET /openapi.json`: an OpenAPI 3.1 document generated from the routes themselves.

Each REST handler is declared with `@operation(...)`, naming its request body, query
parameters and responses as schemas from `syncd.api.schema` (the same ones its body and
query are validated with). The generator walks the app's routes; path parameters come from
the route template, their schemas from `path_parameter` (one per name). Responses every
route shares are added here, once: 401 with a token; under `/api/` 400 and 422 for the URL
(`UrlGuardMiddleware`), 429 and 503 with `Retry-After`; 400, 413, 415 and 422 for a body.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from starlette.convertors import FloatConvertor, IntegerConvertor
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from syncd.api.schema import COMPONENTS, NO_NUL, Schema, component, integer, obj, string

F = TypeVar("F", bound=Callable[..., Any])

ERROR = component(
    "Error",
    obj(
        {
            "error": obj(
                {
                    "code": string(),
                    "message": string(),
                    "pointer": string(
                        description="JSON pointer (RFC 6901) of the offending value of the body"
                    ),
                },
                required=("code", "message"),
            )
        },
        required=("error",),
    ),
)
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
    "Retry-After": {"schema": integer(minimum=0), "required": True, "description": "seconds"}
}
#: schemas of path parameters, by name (a name means the same thing in every route)
PATH_PARAMETERS: dict[str, Schema] = {}
_ANY_SEGMENT = string(min_length=1, max_length=200, pattern=NO_NUL)


def path_parameter(name: str, schema: Schema) -> None:
    """Declare what the path parameter `name` holds, wherever a route template uses it."""
    if PATH_PARAMETERS.get(name, schema) != schema:
        raise ValueError(f"path parameter {name!r} is declared twice, differently")
    PATH_PARAMETERS[name] = schema


@dataclass(frozen=True, slots=True)
class Operation:
    """What the document says about one handler."""

    summary: str
    responses: Mapping[int, Schema | None]
    body: Schema | None = None
    #: False: the body may be left out (it then reads as `{}`)
    body_required: bool = True
    query: Mapping[str, Schema] = field(default_factory=dict)
    auth: bool = True
    tags: tuple[str, ...] = ()
    description: str = ""
    #: the schema of a non-JSON 200 body, by media type (e.g. Prometheus text)
    media_type: str = "application/json"


def media_types(content: Mapping[str, Schema]) -> Schema:
    """A response whose body is one of several media types (an export), each with its
    schema; the handler picks one."""
    return {"x-media-types": dict(content)}


def operation(
    summary: str,
    *,
    responses: Mapping[int, Schema | None],
    body: Schema | None = None,
    body_required: bool = True,
    query: Mapping[str, Schema] | None = None,
    auth: bool = True,
    tags: Iterable[str] = (),
    description: str = "",
    media_type: str = "application/json",
) -> Callable[[F], F]:
    """Declare a handler's contract; `None` as a response schema means no body."""

    def declare(handler: F) -> F:
        handler.__openapi__ = Operation(  # type: ignore[attr-defined]
            summary=summary,
            responses=dict(responses),
            body=body,
            body_required=body_required,
            query=dict(query or {}),
            auth=auth,
            tags=tuple(tags),
            description=description,
            media_type=media_type,
        )
        return handler

    return declare


def declared(route: BaseRoute) -> Operation | None:
    return getattr(getattr(route, "endpoint", None), "__openapi__", None)


def undocumented(routes: Iterable[BaseRoute]) -> list[str]:
    """HTTP routes without a declared operation (a test keeps this empty)."""
    return [
        f"{sorted(route.methods or ())} {route.path}"
        for route in routes
        if isinstance(route, Route) and declared(route) is None
    ]


def _path_parameters(route: Route) -> list[dict[str, Any]]:
    params = []
    for name, convertor in route.param_convertors.items():
        if name in PATH_PARAMETERS:
            schema = PATH_PARAMETERS[name]
        elif isinstance(convertor, IntegerConvertor):
            schema = integer(minimum=0)
        elif isinstance(convertor, FloatConvertor):
            schema = {"type": "number", "minimum": 0}
        else:
            schema = _ANY_SEGMENT
        params.append({"name": name, "in": "path", "required": True, "schema": schema})
    return params


def _response(
    status: int, schema: Schema | None, media_type: str, *, retry_after: bool
) -> dict[str, Any]:
    response: dict[str, Any] = {"description": _STATUS_TEXT.get(status, "Response")}
    if schema is not None and "x-media-types" in schema:
        response["content"] = {t: {"schema": s} for t, s in schema["x-media-types"].items()}
    elif schema is not None:
        response["content"] = {media_type: {"schema": schema}}
    if retry_after:
        response["headers"] = _RETRY_AFTER
    return response


def _operation(route: Route, spec: Operation, method: str) -> dict[str, Any]:
    responses = dict(spec.responses)
    api = route.path.startswith("/api/")
    if spec.auth:
        responses.setdefault(401, ERROR)
    if spec.body is not None:
        for status in (400, 413, 415, 422):
            responses.setdefault(status, ERROR)
    if spec.query:
        responses.setdefault(422, ERROR)
    if route.param_convertors:
        responses.setdefault(404, ERROR)
    if "note_id" in route.param_convertors:  # a note the caller may not view or change
        responses.setdefault(403, ERROR)
    if api:
        for status in (400, 422, 429, 503):
            responses.setdefault(status, ERROR)
    endpoint = route.endpoint
    module = getattr(endpoint, "__module__", "syncd").rsplit(".", 1)[-1]
    document: dict[str, Any] = {
        "operationId": f"{module}.{getattr(endpoint, '__name__', 'handler')}.{method.lower()}",
        "summary": spec.summary,
        "parameters": [
            *_path_parameters(route),
            *(
                {"name": n, "in": "query", "required": False, "schema": s}
                for n, s in spec.query.items()
            ),
        ],
        "responses": {
            str(status): _response(
                status,
                schema,
                spec.media_type if status < 300 else "application/json",
                retry_after=api and status in (429, 503),
            )
            for status, schema in sorted(responses.items())
        },
    }
    if spec.description:
        document["description"] = spec.description
    if spec.tags:
        document["tags"] = list(spec.tags)
    if spec.body is not None:
        document["requestBody"] = {
            "required": spec.body_required,
            "content": {"application/json": {"schema": spec.body}},
        }
    document["security"] = [{"bearerAuth": []}] if spec.auth else []
    return document


def build_document(routes: Iterable[BaseRoute], *, version: str) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        spec = declared(route)
        if spec is None or not isinstance(route, Route):
            continue
        path = re.sub(r"{([^}:]+)(:[^}]+)?}", r"{\1}", route.path)
        for method in sorted((route.methods or set()) - {"HEAD"}):
            paths.setdefault(path, {})[method.lower()] = _operation(route, spec, method)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "syncd",
            "version": version,
            "description": "REST API of syncd, the collaborative notes sync server. "
            "The y-websocket endpoint is `ws://HOST:PORT/ws/notes/{noteId}`.",
        },
        "paths": paths,
        "components": {
            "schemas": dict(sorted(COMPONENTS.items())),
            "securitySchemes": {
                "bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
            },
        },
    }


@operation(
    "This document",
    responses={200: obj({}, additional=True)},
    auth=False,
    tags=["monitoring"],
)
async def openapi_json(request: Request) -> Response:
    from syncd import __version__

    return JSONResponse(build_document(request.app.routes, version=__version__))


def routes() -> list[Route]:
    return [Route("/openapi.json", openapi_json, methods=["GET"])]
