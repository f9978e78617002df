"""What every route may answer: the error envelope."""

from __future__ import annotations

from syncd.api.models._base import Out


class ErrorDetail(Out):
    code: str
    message: str


class Error(Out):
    """`{"error": {"code", "message"}}`, with the response's status"""

    error: ErrorDetail
