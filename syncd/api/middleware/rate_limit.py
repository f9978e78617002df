"""REST rate limits per user and per client IP: 429 with `Retry-After` and the JSON error.

The CRM back end calls with role `service` (and admins with `admin`) on behalf of many
users from one address, so verified privileged tokens are not limited.
"""

from __future__ import annotations

import math

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from syncd.api.errors import error_response
from syncd.auth import AuthError
from syncd.auth.bearer import PRINCIPAL, bearer_token
from syncd.services.ratelimit import client_ip


class RestRateLimitMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        services = getattr(scope["app"].state, "services", None)
        if scope["type"] != "http" or services is None or not scope["path"].startswith("/api/"):
            await self.app(scope, receive, send)
            return
        user_id: str | None = None
        token = bearer_token(Headers(scope=scope).get("authorization"))
        if token:
            try:
                principal = services.notes.verify_token(token)
            except AuthError:
                pass  # the route answers 401; the caller still counts against its IP
            else:
                scope.setdefault("state", {})[PRINCIPAL] = principal  # verified once
                if principal.privileged:
                    await self.app(scope, receive, send)
                    return
                user_id = principal.user_id
        retry = await services.limiter.check_rest(user_id, client_ip(scope))
        if retry is None:
            await self.app(scope, receive, send)
            return
        response = error_response(429, "rate limit exceeded; retry later")
        response.headers["retry-after"] = str(math.ceil(retry))
        await response(scope, receive, send)
