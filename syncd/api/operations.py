"""How a handler declares its contract for `/openapi.json`: `@operation(...)` names its
request body and query (models of `syncd.api.models`, the ones `syncd.api.validation`
reads them into) and its responses (models or types); `path_parameter` says what a path
parameter holds, wherever a route template uses it."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import BaseModel
from starlette.routing import BaseRoute, Route

from syncd.api.models.common import Error

F = TypeVar("F", bound=Callable[..., Any])

#: the response type of an error status (a handler names it in its `responses`)
ERROR = Error
#: types of path parameters, by name (a name means the same thing in every route)
PATH_PARAMETERS: dict[str, Any] = {}


def path_parameter(name: str, kind: Any) -> None:
    """Declare the type of the path parameter `name`, wherever a route template uses it."""
    if PATH_PARAMETERS.get(name, kind) is not kind:
        raise ValueError(f"path parameter {name!r} is declared twice, differently")
    PATH_PARAMETERS[name] = kind


@dataclass(frozen=True, slots=True)
class MediaTypes:
    """A response whose body is one of several media types (an export), each of its own
    type; the handler picks one."""

    types: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Operation:
    """What the document says about one handler."""

    summary: str
    #: status → the type of its body (a model, or any type pydantic can describe, or
    #: `MediaTypes`); None: no body
    responses: Mapping[int, Any]
    body: type[BaseModel] | None = None
    #: False: the body may be left out (it then reads as `{}`)
    body_required: bool = True
    query: type[BaseModel] | None = None
    auth: bool = True
    tags: tuple[str, ...] = ()
    description: str = ""
    #: the media type of a non-JSON 2xx body (e.g. Prometheus text)
    media_type: str = "application/json"


def operation(
    summary: str,
    *,
    responses: Mapping[int, Any],
    body: type[BaseModel] | None = None,
    body_required: bool = True,
    query: type[BaseModel] | None = None,
    auth: bool = True,
    tags: Iterable[str] = (),
    description: str = "",
    media_type: str = "application/json",
) -> Callable[[F], F]:
    """Declare a handler's contract; `None` as a response type means no body."""

    def declare(handler: F) -> F:
        handler.__openapi__ = Operation(  # type: ignore[attr-defined]
            summary=summary,
            responses=dict(responses),
            body=body,
            body_required=body_required,
            query=query,
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
