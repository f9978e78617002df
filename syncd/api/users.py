"""REST routes under `/api/users`: the CRM registers names and e-mail addresses (so a user
who never opened a socket still gets e-mail), and users turn notification e-mail off."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from syncd.api.errors import ApiError
from syncd.api.models.users import User, UserId, UserSettings, UserUpdate
from syncd.api.operations import ERROR, operation, path_parameter
from syncd.api.requests import authenticate
from syncd.api.validation import read_body
from syncd.storage import UNSET, Store, UserRecord

path_parameter("user_id", UserId)

TAGS = ["users"]


def _store(request: Request) -> Store:
    return request.app.state.services.store


def user_json(user: UserRecord) -> dict[str, object]:
    return {
        "id": user.id,
        "name": user.name,
        "email": user.email,
        "roles": list(user.roles),
        "emailNotifications": user.email_notifications,
    }


@operation(
    "Register a user or change their name, e-mail or e-mail opt-out (role service or "
    "admin); a token without a name or e-mail keeps the registered one",
    body=UserUpdate,
    responses={200: User, 403: ERROR},
    tags=TAGS,
)
async def put_user(request: Request) -> Response:
    principal = authenticate(request)
    if not principal.privileged:
        raise ApiError(403, "only service or admin tokens register users")
    body = await read_body(request, UserUpdate)
    given = body.model_fields_set
    name = body.name.strip() if body.name is not None else None
    user = await _store(request).register_user(
        request.path_params["user_id"],
        name=name if "name" in given else UNSET,
        email=body.email if "email" in given else UNSET,
        email_notifications=(
            body.emailNotifications if body.emailNotifications is not None else UNSET
        ),
    )
    return JSONResponse(user_json(user))


@operation("The caller as syncd knows them, with their settings", responses={200: User}, tags=TAGS)
async def get_my_settings(request: Request) -> Response:
    principal = authenticate(request)
    user = await _store(request).get_user(principal.user_id)
    if user is None:  # never seen on a socket nor registered: what the token says
        user = UserRecord(principal.user_id, principal.name, principal.email, principal.roles)
    return JSONResponse(user_json(user))


@operation(
    "Turn the caller's notification e-mail on or off",
    body=UserSettings,
    responses={200: User},
    tags=TAGS,
)
async def put_my_settings(request: Request) -> Response:
    principal = authenticate(request)
    body = await read_body(request, UserSettings)
    store = _store(request)
    # known from this token first, as a socket would have recorded it
    await store.upsert_user(
        UserRecord(principal.user_id, principal.name, principal.email, principal.roles)
    )
    user = await store.register_user(principal.user_id, email_notifications=body.emailNotifications)
    return JSONResponse(user_json(user))


def routes() -> list[Route]:
    prefix = "/api/users"
    return [
        Route(prefix + "/me/settings", get_my_settings, methods=["GET"]),
        Route(prefix + "/me/settings", put_my_settings, methods=["PUT"]),
        Route(prefix + "/{user_id}", put_user, methods=["PUT"]),
    ]
