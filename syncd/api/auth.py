"""Token routes under `/api/auth`: refresh (rotate), logout (revoke) and, for the CRM back
end and development, issuing a first pair (role `service` or `admin` only)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from syncd.api.errors import ApiError
from syncd.api.models.auth import IssueBody, RefreshBody, TokenPair
from syncd.api.operations import ERROR, operation
from syncd.api.requests import authenticate
from syncd.api.validation import read_body
from syncd.auth import AuthError
from syncd.auth.refresh import Identity, RefreshService
from syncd.auth.refresh import TokenPair as Pair

TAGS = ["auth"]


def _tokens(request: Request) -> RefreshService:
    return request.app.state.services.tokens


def pair_json(pair: Pair) -> dict[str, object]:
    return {
        "accessToken": pair.access_token,
        "refreshToken": pair.refresh_token,
        "tokenType": "Bearer",
        "expiresIn": pair.access_expires_in,
        "refreshExpiresIn": pair.refresh_expires_in,
    }


@operation(
    "Rotate a refresh token: the presented one is spent, a new pair is returned. "
    "Presenting a spent token revokes every token of its session (401).",
    body=RefreshBody,
    responses={200: TokenPair, 401: ERROR},
    auth=False,
    tags=TAGS,
)
async def refresh(request: Request) -> Response:
    body = await read_body(request, RefreshBody)
    try:
        pair = await _tokens(request).refresh(body.refreshToken)
    except AuthError as exc:
        raise ApiError(401, str(exc)) from None
    return JSONResponse(pair_json(pair))


@operation(
    "Revoke the session of a refresh token (it and every token rotated from it)",
    body=RefreshBody,
    responses={204: None, 401: ERROR},
    auth=False,
    tags=TAGS,
)
async def logout(request: Request) -> Response:
    body = await read_body(request, RefreshBody)
    try:
        await _tokens(request).logout(body.refreshToken)
    except AuthError as exc:
        raise ApiError(401, str(exc)) from None
    return Response(status_code=204)


@operation(
    "Issue a first access and refresh token pair for a user (role service or admin: the "
    "CRM back end at sign-in, or development)",
    body=IssueBody,
    responses={201: TokenPair, 403: ERROR},
    tags=TAGS,
)
async def issue(request: Request) -> Response:
    principal = authenticate(request)
    body = await read_body(request, IssueBody)
    if not principal.privileged:
        raise ApiError(403, "only role service or admin may issue tokens")
    identity = Identity(
        user_id=body.userId,
        name=body.name,
        email=body.email,
        roles=tuple(dict.fromkeys(body.roles)),
    )
    pair = await _tokens(request).issue(identity)
    return JSONResponse(pair_json(pair), status_code=201)


def routes() -> list[Route]:
    return [
        Route("/api/auth/refresh", refresh, methods=["POST"]),
        Route("/api/auth/logout", logout, methods=["POST"]),
        Route("/api/auth/tokens", issue, methods=["POST"]),
    ]
