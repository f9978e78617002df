"""The client frames of one read, split without `websockets`' frame parser when they are
the plain kind: complete, final, masked binary frames.

A y-websocket client sends each message as one such frame. `websockets`' sans-I/O parser
reads a frame through a stack of generators (the stream's `at_eof`, `Frame.parse`, one
`read_exact` per field, each slicing and shrinking a bytearray), builds a `Frame`, an
`Opcode` and an event, which uvicorn's `handle_events` then dispatches: about 10 µs of
CPU per keystroke, a tenth of the server's CPU in the fanout benchmark (py-spy; issue
15). `plain_frames` reads the same bytes in one loop and unmasks each payload with the
same C function `websockets` uses.

It stops at the first frame that is anything else — a control frame (ping, pong,
close), a text or fragmented frame, reserved bits, an unmasked frame, a 64-bit length, a
payload over the size limit, or a frame not complete in this read — and the caller hands
the rest to `websockets`, which then sees a stream that starts at that frame boundary
and answers it exactly as before (refusing, closing, buffering a partial frame). Nothing
is validated here that `websockets` would treat differently: every frame taken here is
one it would deliver as a binary message unchanged.
"""

from __future__ import annotations

from typing import Any

from websockets.frames import apply_mask
from websockets.protocol import State
from websockets.streams import StreamReader

__all__ = ["at_frame_boundary", "plain_frames"]

#: FIN set, RSV1-3 clear, opcode 2 (binary): the first byte of a plain frame
_FIN_BINARY = 0x82
_MASK_BIT = 0x80
_STATE_OPEN = State.OPEN
#: the code of the generator `websockets`' parser waits in between two frames
_AT_EOF = StreamReader.at_eof.__code__


def at_frame_boundary(conn: Any) -> bool:
    """Whether `conn` (a `websockets` `ServerProtocol`) is open and its parser waits for
    the first byte of a new message: nothing buffered, no fragmented message going on,
    no extension (a frame would be theirs to decode), no debug logging of frames, and
    one size limit for all (`max_message_size`; uvicorn sets no fragment limit).

    The parser waits in its stream's `at_eof` only between frames (while reading one it
    waits in `read_exact`, possibly with an empty buffer after the header), so that is
    what is checked, on the innermost generator of the parser's `yield from` chain.
    """
    if (
        conn.state is not _STATE_OPEN
        or conn.current_size is not None
        or conn.max_fragment_size is not None
        or conn.reader.buffer
        or conn.extensions
        or conn.debug
    ):
        return False
    generator = conn.parser
    inner = generator.gi_yieldfrom
    while inner is not None:
        generator, inner = inner, inner.gi_yieldfrom
    return generator.gi_code is _AT_EOF


def plain_frames(data: bytes, limit: int | None, out: list[bytes | str]) -> int:
    """Append to `out` the payloads of the plain frames at the start of `data` (module
    docstring), unmasked; return how many bytes of `data` they took. `limit`: the largest
    payload taken here (`websockets`' `max_message_size`; a larger one is its to refuse).
    """
    end = len(data)
    pos = 0
    while end - pos >= 6:  # the smallest masked frame: 2 bytes of header, 4 of mask
        if data[pos] != _FIN_BINARY:
            break
        second = data[pos + 1]
        if not second & _MASK_BIT:
            break
        size = second & 0x7F
        if size < 126:
            head = pos + 6
        elif size == 126 and end - pos >= 8:
            size = (data[pos + 2] << 8) | data[pos + 3]
            head = pos + 8
        else:
            break  # a 64-bit length, or a 16-bit one not all here
        if limit is not None and size > limit:
            break
        stop = head + size
        if stop > end:
            break
        out.append(apply_mask(data[head:stop], data[head - 4 : head]))
        pos = stop
    return pos
