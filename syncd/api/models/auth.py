"""Bodies of the token routes."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from syncd.api.models._base import Body, Out, text_field

MAX_ID = 200


class RefreshBody(Body):
    refreshToken: Annotated[str, text_field(8192, min_length=1)]


class IssueBody(Body):
    userId: Annotated[str, text_field(MAX_ID, min_length=1)]
    # may be left out, not null
    name: Annotated[str, text_field(500)] = None  # type: ignore[assignment]
    email: Annotated[str, text_field(500)] = None  # type: ignore[assignment]
    roles: list[Annotated[str, text_field(100, min_length=1)]] = Field(
        default_factory=list, max_length=20
    )


class TokenPair(Out):
    accessToken: str
    refreshToken: str
    tokenType: Literal["Bearer"]
    expiresIn: int = Field(ge=0)
    refreshExpiresIn: int = Field(ge=0)
