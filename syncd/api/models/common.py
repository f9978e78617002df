"""What every route may answer: the error envelope."""

from __future__ import annotations

from pydantic import Field

from syncd.api.models._base import Out


class ErrorDetail(Out):
    code: str
    message: str
    pointer: str | None = Field(
        default=None,
        description="JSON pointer (RFC 6901) of the refused value of the request body, "
        "when the refusal is about one value of it; absent otherwise",
    )


class Error(Out):
    """`{"error": {"code", "message", "pointer"?}}`, with the response's status"""

    error: ErrorDetail
