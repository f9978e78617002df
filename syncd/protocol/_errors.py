"""The single error type of the protocol layer."""

from __future__ import annotations

__all__ = ["CLOSE_MALFORMED", "CLOSE_TOO_LARGE", "MessageTooLarge", "ProtocolError"]

from syncd.protocol.close_codes import CLOSE_MALFORMED, CLOSE_TOO_LARGE


class ProtocolError(ValueError):
    """A frame or payload that does not follow the y-websocket wire format.

    Carries the WebSocket close code so the transport can close the one
    offending connection without knowing why the frame was bad.
    """

    close_code: int
    #: what went wrong, for metrics: "malformed" (not the wire format), "limit" (over a
    #: cap of the frame walker), "too_large" (frame size), "rejected" (pycrdt refused it)
    kind: str

    def __init__(
        self, message: str, *, close_code: int = CLOSE_MALFORMED, kind: str = "malformed"
    ) -> None:
        super().__init__(message)
        self.close_code = close_code
        self.kind = kind

    def __reduce__(self) -> tuple[object, ...]:
        # Keep close_code and kind across pickling (e.g. errors sent between processes).
        return (_rebuild, (type(self), str(self), self.close_code, self.kind))


class MessageTooLarge(ProtocolError):
    """A frame over the configured size limit; closes with 1009."""

    def __init__(
        self, message: str, *, close_code: int = CLOSE_TOO_LARGE, kind: str = "too_large"
    ) -> None:
        super().__init__(message, close_code=close_code, kind=kind)


def _rebuild(
    cls: type[ProtocolError], message: str, close_code: int, kind: str = "malformed"
) -> ProtocolError:
    return cls(message, close_code=close_code, kind=kind)
