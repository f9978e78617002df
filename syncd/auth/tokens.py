"""JWT (HS256) access tokens: verified here, issued by the CRM back end (or `syncd token`)."""

from __future__ import annotations

import time
import uuid
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import jwt

ALGORITHM = "HS256"
ADMIN_ROLE = "admin"
SERVICE_ROLE = "service"
PRIVILEGED_ROLES = frozenset({ADMIN_ROLE, SERVICE_ROLE})


class AuthError(Exception):
    """The token is missing, malformed, badly signed or expired (HTTP 401, close 4401)."""


@dataclass(frozen=True, slots=True)
class Principal:
    """The verified claims of one token."""

    user_id: str
    name: str | None
    email: str | None
    roles: tuple[str, ...]
    expires_at: float
    token_id: str | None

    @property
    def privileged(self) -> bool:
        """Roles `admin` and `service` have every right on every note."""
        return not PRIVILEGED_ROLES.isdisjoint(self.roles)

    @property
    def admin(self) -> bool:
        """Role `admin`: what even `service` may not do (purge a note at once)."""
        return ADMIN_ROLE in self.roles


class TokenVerifier:
    """Verifies access tokens with one secret; only HS256 is accepted (never `alg: none`)."""

    #: tokens verified lately (see `verify`)
    CACHE_SIZE = 1024

    def __init__(self, secret: str, *, leeway: float = 0.0) -> None:
        if not secret:
            raise ValueError("an empty JWT secret would make every token forgeable")
        self._secret = secret
        self._leeway = leeway
        self._verified: OrderedDict[str, Principal] = OrderedDict()

    def verify(self, token: str | None) -> Principal:
        """The principal of a valid, unexpired token; `AuthError` otherwise.

        A token that verified lately is answered from a small cache (the exact token
        text as key, its expiry checked on every use): a client reconnecting, the tabs
        of one user and a reconnect storm after a deploy present the same token again,
        and decoding and checking the signature was a tenth of the connect path (py-spy).
        Access tokens cannot be revoked before their `exp`, so nothing else can change
        the answer.
        """
        if not token:
            raise AuthError("missing token")
        cached = self._verified.get(token)
        if cached is not None:
            if cached.expires_at + self._leeway <= time.time():
                del self._verified[token]
                raise AuthError("token expired")
            self._verified.move_to_end(token)
            return cached
        principal = self._decode(token)
        self._verified[token] = principal
        if len(self._verified) > self.CACHE_SIZE:
            self._verified.popitem(last=False)
        return principal

    def _decode(self, token: str) -> Principal:
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=[ALGORITHM],
                options={"require": ["sub", "exp"]},
                leeway=self._leeway,
            )
        except jwt.ExpiredSignatureError:
            raise AuthError("token expired") from None
        except jwt.PyJWTError as exc:
            raise AuthError(f"invalid token: {exc}") from None
        return _principal(claims)


#: bounds on the claims that syncd stores (users table, sessions, presence, keys)
MAX_SUB = 200
MAX_NAME = 200
MAX_EMAIL = 320
MAX_ROLES = 20
MAX_ROLE = 100


def _text(value: object, limit: int) -> bool:
    # A NUL byte would be refused by Postgres later, as a 1013 or 503 that blames storage.
    return isinstance(value, str) and len(value) <= limit and "\x00" not in value


def _principal(claims: dict[str, object]) -> Principal:
    sub = claims.get("sub")
    if not _text(sub, MAX_SUB) or not sub:
        raise AuthError(f"invalid token: 'sub' must be a string of 1 to {MAX_SUB} characters")
    raw_roles = claims.get("roles") or []
    if isinstance(raw_roles, str):
        raw_roles = [raw_roles]
    if (
        not isinstance(raw_roles, list)
        or len(raw_roles) > MAX_ROLES
        or not all(_text(r, MAX_ROLE) for r in raw_roles)
    ):
        raise AuthError(f"invalid token: 'roles' must be a list of at most {MAX_ROLES} strings")
    name = claims.get("name")
    email = claims.get("email")
    for claim, value, limit in (("name", name, MAX_NAME), ("email", email, MAX_EMAIL)):
        if isinstance(value, str) and not _text(value, limit):
            raise AuthError(f"invalid token: '{claim}' must be a string of at most {limit}")
    jti = claims.get("jti")
    exp = claims.get("exp")
    return Principal(
        user_id=str(sub),
        name=name if isinstance(name, str) else None,
        email=email if isinstance(email, str) else None,
        roles=tuple(raw_roles),
        expires_at=float(exp) if isinstance(exp, int | float) else 0.0,
        token_id=jti if isinstance(jti, str) else None,
    )


def mint_token(
    secret: str,
    user_id: str,
    *,
    name: str | None = None,
    email: str | None = None,
    roles: Sequence[str] = (),
    ttl_seconds: float = 3600.0,
    now: float | None = None,
) -> str:
    """Issue a token with syncd's claims; used by `syncd token` and by tests."""
    issued = time.time() if now is None else now
    claims: dict[str, object] = {
        "sub": user_id,
        "roles": list(roles),
        "iat": int(issued),
        "exp": int(issued + ttl_seconds),
        "jti": uuid.uuid4().hex,
    }
    if name is not None:
        claims["name"] = name
    if email is not None:
        claims["email"] = email
    return jwt.encode(claims, secret, algorithm=ALGORITHM)
