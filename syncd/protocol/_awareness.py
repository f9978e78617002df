"""The awareness update carried inside an awareness message (y-protocols/awareness).

Layout: ``varuint count``, then per entry ``varuint clientID``, ``varuint clock``
and a var-string holding ``JSON.stringify(state)``; ``"null"`` marks a removed
client. The server relays these, so anything a stock client's ``JSON.parse``
would throw on is refused here rather than passed on to break other peers.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import NamedTuple

from ._codec import read_var_uint, write_var_string, write_var_uint
from ._errors import ProtocolError

__all__ = ["AwarenessEntry", "encode_awareness_update", "parse_awareness_update"]

# Smallest possible entry: one-byte client id, one-byte clock, zero-length string.
_MIN_ENTRY_BYTES = 3


class AwarenessEntry(NamedTuple):
    """One client's awareness state; ``state`` is JSON text, ``"null"`` when removed.

    A named tuple (immutable, compared by value, as the frozen dataclass it was): one is
    made per entry of every cursor move, and a frozen dataclass's ``__init__`` (one
    ``object.__setattr__`` per field) cost three times as much.
    """

    client_id: int
    clock: int
    state: str

    @property
    def removed(self) -> bool:
        """Whether this entry announces that the client left."""
        return self.state == "null"


def _reject_constant(name: str) -> None:
    # Python's json accepts NaN/Infinity; JSON.parse in the browser does not.
    raise ValueError(f"{name} is not JSON")


#: built once: `json.loads` with a keyword builds a new decoder (and its scanner) per call,
#: a quarter of the parse of a cursor move
_DECODER = json.JSONDecoder(parse_constant=_reject_constant)


#: the decoder's C scanner: one value from an index, without `decode`'s two whitespace
#: regex matches and calls around it
_SCAN: Callable[[str, int], tuple[object, int]] = _DECODER.scan_once  # type: ignore[attr-defined]


def _check_json(text: str) -> None:
    try:
        # The common state (one value, no whitespace around it) is one scan; anything
        # else, valid or not, is judged by `decode` of a str, as `loads` does (a leading
        # BOM is refused there too: it is not JSON whitespace).
        try:
            end = _SCAN(text, 0)[1]
        except StopIteration:
            end = -1
        if end != len(text):
            _DECODER.decode(text)
    except RecursionError:
        raise ProtocolError("awareness state is nested too deeply") from None
    except ValueError as exc:
        # JSONDecodeError, rejected constants and ints over sys.int_info limits.
        raise ProtocolError(f"awareness state is not valid JSON: {exc}") from None


def parse_awareness_update(
    payload: bytes, *, max_entries: int = 1000
) -> tuple[AwarenessEntry, ...]:
    """Parse and validate an awareness update.

    Raises ``ProtocolError`` on truncation, trailing bytes, invalid UTF-8, a state
    that is not JSON, or more than ``max_entries`` entries (checked before any
    entry is read, so a huge count costs nothing).
    """
    if type(payload) is not bytes:
        payload = bytes(payload)
    count, pos = read_var_uint(payload, 0)
    if count > max_entries:
        raise ProtocolError(f"awareness update with {count} entries is over {max_entries}")
    if count * _MIN_ENTRY_BYTES > len(payload) - pos:
        raise ProtocolError("awareness update is shorter than its entry count")
    size = len(payload)
    entries: list[AwarenessEntry] = []
    for _ in range(count):
        client_id, pos = read_var_uint(payload, pos)
        # a one-byte clock read inline
        if pos < size and payload[pos] < 0x80:
            clock = payload[pos]
            pos += 1
        else:
            clock, pos = read_var_uint(payload, pos)
        # `read_var_string` inlined (one cursor move is one entry: two calls less each)
        length, pos = read_var_uint(payload, pos)
        end = pos + length
        if end > size:
            raise ProtocolError("length runs past the end of the data")
        try:
            state = payload[pos:end].decode()
        except UnicodeDecodeError as exc:
            raise ProtocolError(f"invalid UTF-8 in string: {exc.reason}") from None
        pos = end
        if state != "null":
            _check_json(state)
        entries.append(AwarenessEntry(client_id, clock, state))
    if pos != size:
        raise ProtocolError(f"{size - pos} trailing bytes after the awareness update")
    return tuple(entries)


def encode_awareness_update(entries: Iterable[AwarenessEntry]) -> bytes:
    """Encode entries as an awareness update (the payload of ``encode_awareness``)."""
    parts = [b""]
    for entry in entries:
        parts.append(write_var_uint(entry.client_id))
        parts.append(write_var_uint(entry.clock))
        parts.append(write_var_string(entry.state))
    parts[0] = write_var_uint(len(parts) // 3)
    return b"".join(parts)
