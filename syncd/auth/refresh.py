"""Refresh tokens: rotation with replay detection, and logout.

A refresh token is a JWT signed with `JWT_REFRESH_SECRET` whose claims carry the user's
claims plus `fam`, the family: every token descended from one sign-in. Each use rotates
it (the presented token is spent, a new pair is issued in the same family). Presenting a
spent token again means two parties hold it, so the whole family is revoked and its newest
token stops working too. Records live in Redis (scaled) or the database (embedded) and
expire with the tokens.
"""

from __future__ import annotations

import hashlib
import hmac
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import jwt

from syncd.auth.tokens import ALGORITHM, AuthError, mint_token
from syncd.storage import Rotation

REFRESH_TYPE = "refresh"


def derive_secret(secret: str, purpose: str) -> str:
    """A secret for `purpose` derived from `secret` (HMAC-SHA256): distinct from it, and
    the same on every instance configured with it."""
    return hmac.new(secret.encode(), purpose.encode(), hashlib.sha256).hexdigest()


class RefreshRecords(Protocol):
    """Where refresh-token state lives (`SqlRefreshRecords`, `RedisRefreshRecords`)."""

    async def issue(self, jti: str, family: str, user_id: str, expires_at: float) -> None: ...

    async def rotate(
        self, jti: str, family: str, new_jti: str, user_id: str, expires_at: float
    ) -> Rotation: ...

    async def revoke(self, family: str) -> None: ...

    async def purge_expired(self) -> int: ...


@dataclass(frozen=True, slots=True)
class TokenPair:
    access_token: str
    refresh_token: str
    access_expires_in: int
    refresh_expires_in: int


@dataclass(frozen=True, slots=True)
class Identity:
    """The claims copied into every token of a family."""

    user_id: str
    name: str | None = None
    email: str | None = None
    roles: tuple[str, ...] = ()


class RefreshService:
    """Issues pairs, rotates refresh tokens and revokes families."""

    def __init__(
        self,
        records: RefreshRecords,
        *,
        access_secret: str,
        refresh_secret: str,
        access_ttl: int = 900,
        refresh_ttl: int = 30 * 24 * 3600,
    ) -> None:
        if not refresh_secret or refresh_secret == access_secret:
            # With one secret, a refresh token would also pass as an access token.
            raise ValueError("the refresh secret must be set and differ from the access secret")
        self.records = records
        self._access_secret = access_secret
        self._refresh_secret = refresh_secret
        self.access_ttl = access_ttl
        self.refresh_ttl = refresh_ttl

    async def issue(self, identity: Identity) -> TokenPair:
        """A new pair starting a new family (a sign-in, done by the CRM back end)."""
        family = uuid.uuid4().hex
        jti = uuid.uuid4().hex
        now = time.time()
        await self.records.issue(jti, family, identity.user_id, now + self.refresh_ttl)
        return self._pair(identity, family, jti, now)

    async def refresh(self, token: str) -> TokenPair:
        """Spend `token` and return the next pair; `AuthError` if it cannot be used."""
        claims = self._decode(token, verify_exp=True)
        identity = _identity(claims)
        jti = uuid.uuid4().hex
        now = time.time()
        outcome = await self.records.rotate(
            claims["jti"], claims["fam"], jti, identity.user_id, now + self.refresh_ttl
        )
        if outcome is Rotation.OK:
            return self._pair(identity, claims["fam"], jti, now)
        if outcome is Rotation.REUSED:
            raise AuthError("refresh token reused; every token of its session is revoked")
        if outcome is Rotation.REVOKED:
            raise AuthError("refresh token revoked")
        raise AuthError("refresh token unknown or expired")

    async def logout(self, token: str) -> None:
        """Revoke the family of `token` (expired tokens are accepted: nothing is lost)."""
        claims = self._decode(token, verify_exp=False)
        await self.records.revoke(claims["fam"])

    def _decode(self, token: str, *, verify_exp: bool) -> dict[str, object]:
        if not token:
            raise AuthError("missing refresh token")
        try:
            claims = jwt.decode(
                token,
                self._refresh_secret,
                algorithms=[ALGORITHM],
                options={"require": ["sub", "exp", "jti", "fam"], "verify_exp": verify_exp},
            )
        except jwt.ExpiredSignatureError:
            raise AuthError("refresh token expired") from None
        except jwt.PyJWTError as exc:
            raise AuthError(f"invalid refresh token: {exc}") from None
        if claims.get("typ") != REFRESH_TYPE:
            raise AuthError("invalid refresh token: not a refresh token")
        if not all(isinstance(claims[k], str) for k in ("sub", "jti", "fam")):
            raise AuthError("invalid refresh token: malformed claims")
        return claims

    def _pair(self, identity: Identity, family: str, jti: str, now: float) -> TokenPair:
        access = mint_token(
            self._access_secret,
            identity.user_id,
            name=identity.name,
            email=identity.email,
            roles=identity.roles,
            ttl_seconds=self.access_ttl,
            now=now,
        )
        claims: dict[str, object] = {
            "sub": identity.user_id,
            "roles": list(identity.roles),
            "iat": int(now),
            "exp": int(now + self.refresh_ttl),
            "jti": jti,
            "fam": family,
            "typ": REFRESH_TYPE,
        }
        if identity.name is not None:
            claims["name"] = identity.name
        if identity.email is not None:
            claims["email"] = identity.email
        refresh = jwt.encode(claims, self._refresh_secret, algorithm=ALGORITHM)
        return TokenPair(access, refresh, self.access_ttl, self.refresh_ttl)


def _identity(claims: dict[str, object]) -> Identity:
    roles = claims.get("roles") or []
    name, email = claims.get("name"), claims.get("email")
    return Identity(
        user_id=str(claims["sub"]),
        name=name if isinstance(name, str) else None,
        email=email if isinstance(email, str) else None,
        roles=tuple(r for r in roles if isinstance(r, str)) if isinstance(roles, Sequence) else (),
    )
