"""Refresh tokens: rotation with replay detection, and logout.

A refresh token is a JWT signed with `JWT_REFRESH_SECRET` whose claims carry the user's
claims plus `fam`, the family: every token descended from one sign-in. Each use rotates
it (the presented token is spent, a new pair is issued in the same family). Presenting a
spent token again means two parties hold it, so the whole family is revoked and its newest
token stops working too. Records live in Redis (scaled) or the database (embedded) and
expire with the tokens.

The CRM back end signs users in, so it may mint the first refresh token itself with only
the contract's claims (`sub`, `exp`, `jti`; no `fam`). Such a token starts its family on
first use: the family id is derived from its `jti`, and the token is recorded as spent
until its own `exp`, so presenting it a second time is a replay like any other.
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
#: the longest `sub`, `jti` or `fam` accepted (they become keys and rows)
MAX_CLAIM = 200


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

    async def adopt(
        self,
        jti: str,
        family: str,
        spent_until: float,
        new_jti: str,
        user_id: str,
        expires_at: float,
    ) -> Rotation:
        """Like `rotate`, for a token minted elsewhere: when `jti` has no record yet, record
        it as spent until `spent_until` (its own expiry) and issue `new_jti`."""
        ...

    async def revoke(self, family: str, until: float | None = None) -> None:
        """Revoke the family; `until`: the latest time one of its tokens may be presented."""
        ...

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
        expires_at = now + self.refresh_ttl
        family = claims.get("fam")
        if isinstance(family, str):
            outcome = await self.records.rotate(
                str(claims["jti"]), family, jti, identity.user_id, expires_at
            )
        else:
            family = external_family(str(claims["jti"]))
            outcome = await self.records.adopt(
                str(claims["jti"]),
                family,
                float(claims["exp"]),  # type: ignore[arg-type]
                jti,
                identity.user_id,
                expires_at,
            )
        if outcome is Rotation.OK:
            return self._pair(identity, family, jti, now)
        if outcome is Rotation.REUSED:
            raise AuthError("refresh token reused; every token of its session is revoked")
        if outcome is Rotation.REVOKED:
            raise AuthError("refresh token revoked")
        raise AuthError("refresh token unknown or expired")

    async def logout(self, token: str) -> None:
        """Revoke the family of `token` (expired tokens are accepted: nothing is lost)."""
        claims = self._decode(token, verify_exp=False)
        family = claims.get("fam")
        if isinstance(family, str):
            await self.records.revoke(family)
        else:
            exp = claims["exp"]
            until = float(exp) if isinstance(exp, int | float) else None
            await self.records.revoke(external_family(str(claims["jti"])), until)

    def _decode(self, token: str, *, verify_exp: bool) -> dict[str, object]:
        if not token:
            raise AuthError("missing refresh token")
        try:
            claims = jwt.decode(
                token,
                self._refresh_secret,
                algorithms=[ALGORITHM],
                options={"require": ["sub", "exp", "jti"], "verify_exp": verify_exp},
            )
        except jwt.ExpiredSignatureError:
            raise AuthError("refresh token expired") from None
        except jwt.PyJWTError as exc:
            raise AuthError(f"invalid refresh token: {exc}") from None
        # Only this secret signs refresh tokens, so `typ` may be absent (a CRM's token);
        # any other declared type is a token meant for something else.
        if claims.get("typ", REFRESH_TYPE) != REFRESH_TYPE:
            raise AuthError("invalid refresh token: not a refresh token")
        if not all(_claim_ok(claims.get(k)) for k in ("sub", "jti")) or (
            "fam" in claims and not _claim_ok(claims["fam"])
        ):
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


def external_family(jti: str) -> str:
    """The family of a refresh token minted by the CRM back end: derived from its `jti`, so
    every instance agrees, in a fixed alphabet and length whatever the `jti` holds."""
    return "x" + hashlib.sha256(jti.encode()).hexdigest()[:31]


def _claim_ok(value: object) -> bool:
    return isinstance(value, str) and 0 < len(value) <= MAX_CLAIM and "\x00" not in value


def _identity(claims: dict[str, object]) -> Identity:
    roles = claims.get("roles") or []
    name, email = claims.get("name"), claims.get("email")
    return Identity(
        user_id=str(claims["sub"]),
        name=name if isinstance(name, str) else None,
        email=email if isinstance(email, str) else None,
        roles=tuple(r for r in roles if isinstance(r, str)) if isinstance(roles, Sequence) else (),
    )
