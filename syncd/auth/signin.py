"""Sign-in links for development: the web app's URL with a one-use refresh token in its
fragment (`#signin=`), which the page spends at once on `POST /api/auth/refresh` for its
first access/refresh pair.

The token has only the contract's claims (no family), like one the CRM back end mints, so
the refresh service records it as spent on first use: a link signs in once. No endpoint
hands such tokens out; only whoever holds the secrets (the command line: `syncd token
--link`, and `syncd serve`'s start-up link) can make one.
"""

from __future__ import annotations

import getpass
from collections.abc import Sequence

from syncd.auth.configured import jwt_refresh_secret
from syncd.auth.tokens import mint_token
from syncd.settings import Settings

LINK_TTL = 24 * 3600.0
_ANY_ADDRESS = {"", "0.0.0.0", "::", "[::]"}


def app_url(settings: Settings) -> str:
    """Where the web app is: the first origin of `FRONTEND_URL` when set (it may list
    several, comma-separated, for CORS), else this server's own address."""
    origins = settings.frontend_origins
    if origins:
        return origins[0] + "/"
    host = "127.0.0.1" if settings.host in _ANY_ADDRESS else settings.host
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"http://{host}:{settings.port}/"


def sign_in_link(
    settings: Settings,
    user_id: str,
    *,
    name: str | None = None,
    email: str | None = None,
    roles: Sequence[str] = (),
    ttl: float = LINK_TTL,
) -> str:
    token = mint_token(
        jwt_refresh_secret(settings), user_id, name=name, email=email, roles=roles, ttl_seconds=ttl
    )
    return f"{app_url(settings)}#signin={token}"


def local_user() -> str:
    """The account running `syncd serve`, as the development user of its start-up link."""
    try:
        return getpass.getuser() or "dev"
    except (KeyError, OSError):
        return "dev"


def should_print_link(settings: Settings) -> bool:
    """Only embedded, with a secret syncd generated itself: a development set-up. A
    configured secret means a CRM signs its users in."""
    return settings.embedded and not settings.jwt_secret
