"""Who is calling (JWT verification) and what they may do with a note."""

from syncd.auth.permissions import Access, grant_access, resolve_access
from syncd.auth.secrets import load_or_create_secret
from syncd.auth.tokens import AuthError, Principal, TokenVerifier, mint_token

__all__ = [
    "Access",
    "AuthError",
    "Principal",
    "TokenVerifier",
    "grant_access",
    "load_or_create_secret",
    "mint_token",
    "resolve_access",
]
