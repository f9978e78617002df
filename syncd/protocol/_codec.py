"""Strict lib0 primitives: var-uint, var-uint8-array and var-string.

pycrdt's ``Decoder`` has no bounds checks and pycrdt's ``Encoder.write_var_string``
writes the *character* count instead of the UTF-8 byte count, so both directions
of the length-prefixed types live here. Readers take ``(buf, pos)`` and return
``(value, new_pos)``; they index ``bytes`` directly so that a parse allocates only
the values it returns.
"""

from __future__ import annotations

from pycrdt import write_var_uint as _pycrdt_write_var_uint

from ._errors import ProtocolError

__all__ = [
    "MAX_SAFE_INTEGER",
    "read_var_bytes",
    "read_var_string",
    "read_var_uint",
    "write_var_bytes",
    "write_var_string",
    "write_var_uint",
]

MAX_SAFE_INTEGER = (1 << 53) - 1
"""lib0 numbers are JS numbers: a var-uint above this cannot come from a real client."""

_MAX_VAR_UINT_BYTES = 8  # 8 x 7 bits = 56 bits, enough for 53
_ONE_BYTE = tuple(bytes((i,)) for i in range(0x80))


def read_var_uint(buf: bytes, pos: int) -> tuple[int, int]:
    """Read an unsigned LEB128 var-uint at ``pos``.

    Rejects truncation, values above 2**53 - 1, encodings longer than eight
    bytes and non-canonical encodings (a zero final byte after a continuation):
    lib0 never writes those, and refusing them keeps ``encode(parse(frame)) ==
    frame`` for every accepted frame, so a server may relay frames verbatim.
    """
    end = len(buf)
    if pos >= end:
        raise ProtocolError("truncated var-uint")
    byte = buf[pos]
    if byte < 0x80:
        return byte, pos + 1
    value = byte & 0x7F
    shift = 7
    pos += 1
    while pos < end:
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            if byte == 0:
                raise ProtocolError("non-canonical var-uint")
            if value > MAX_SAFE_INTEGER:
                raise ProtocolError("var-uint above 2**53 - 1")
            return value, pos
        shift += 7
        if shift >= 7 * _MAX_VAR_UINT_BYTES:
            raise ProtocolError("var-uint longer than 8 bytes")
    raise ProtocolError("truncated var-uint")


def read_var_bytes(buf: bytes, pos: int) -> tuple[bytes, int]:
    """Read a lib0 var-uint8-array (length, then that many bytes)."""
    length, pos = read_var_uint(buf, pos)
    end = pos + length
    if end > len(buf):
        raise ProtocolError("length runs past the end of the data")
    return buf[pos:end], end


def read_var_string(buf: bytes, pos: int) -> tuple[str, int]:
    """Read a lib0 var-string; invalid UTF-8 is an error, as lib0's fatal TextDecoder makes it."""
    raw, pos = read_var_bytes(buf, pos)
    try:
        return raw.decode("utf-8"), pos
    except UnicodeDecodeError as exc:
        raise ProtocolError(f"invalid UTF-8 in string: {exc.reason}") from None


def write_var_uint(value: int) -> bytes:
    """Encode ``value`` as a canonical var-uint; refuses what a JS peer could not read."""
    if 0 <= value < 0x80:
        return _ONE_BYTE[value]
    if not 0 <= value <= MAX_SAFE_INTEGER:
        raise ValueError(f"var-uint out of range: {value}")
    return _pycrdt_write_var_uint(value)


def write_var_bytes(data: bytes) -> bytes:
    """Encode a var-uint8-array."""
    return write_var_uint(len(data)) + data


def write_var_string(text: str) -> bytes:
    """Encode a var-string, length in UTF-8 bytes (unlike pycrdt's ``Encoder``)."""
    return write_var_bytes(text.encode("utf-8"))
