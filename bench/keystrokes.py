"""Single-keystroke update frames for the in-process benches (`flush_cost.py`,
`burst_timing.py`): one client typing one character per frame, as an editor sends them."""

from __future__ import annotations

from pycrdt import Doc, Text

from syncd.protocol import encode_update


def keystroke_frames(client_id: int, count: int) -> list[bytes]:
    """`count` sync-update frames of client `client_id` typing into its own Y.Text."""
    doc = Doc(client_id=client_id)
    text = doc.get("text", type=Text)
    frames = []
    for i in range(count):
        state = doc.get_state()
        text += "abcdefghij"[i % 10]
        frames.append(encode_update(doc.get_update(state)))
    return frames
