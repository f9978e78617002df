"""Tokens never reach the logs: a filter that masks them in every log record.

uvicorn logs each WebSocket handshake with its full URL, and stock y-websocket clients
put the token there (`?token=...`), so the filter sits on the handlers of uvicorn's and
the root logger and rewrites messages and their arguments before they are formatted.
"""

from __future__ import annotations

import logging
import re

_PATTERNS = (
    # query parameters: ?token=..., &access_token=..., refreshToken=...
    (re.compile(r"((?:access_?|refresh_?)?token=)[^&\s\"']+", re.IGNORECASE), r"\1[redacted]"),
    (re.compile(r"(bearer\s+)[\w.~+/=-]+", re.IGNORECASE), r"\1[redacted]"),
    # any JWT (header.payload.signature, base64url, header starting with {"...)
    (re.compile(r"eyJ[\w-]+\.[\w-]+\.[\w-]*"), "[redacted-jwt]"),
)

LOGGERS = ("", "uvicorn", "uvicorn.error", "uvicorn.access")


def redact(text: str) -> str:
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def _clean(value: object) -> object:
    return redact(value) if isinstance(value, str) else value


class RedactTokens(logging.Filter):
    """Masks tokens in the message and its arguments; never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(_clean(arg) for arg in record.args)
        elif isinstance(record.args, dict):
            record.args = {key: _clean(value) for key, value in record.args.items()}
        return True


def install(loggers: tuple[str, ...] = LOGGERS) -> None:
    """Put the filter on these loggers and on every handler they have (a logger's own
    filters do not see records that propagate to it; its handlers' filters do)."""
    redactor = RedactTokens()
    for name in loggers:
        logger = logging.getLogger(name)
        if redactor not in logger.filters:
            logger.addFilter(redactor)
        for handler in logger.handlers:
            if not any(isinstance(f, RedactTokens) for f in handler.filters):
                handler.addFilter(redactor)
