"""Yjs updates as a client's editor sends them while someone types (pycrdt, no Node)."""

from __future__ import annotations

from collections.abc import Iterable

from pycrdt import Doc, Text


def typed_updates(client_id: int, pieces: Iterable[str], root: str = "t") -> list[bytes]:
    """One update per piece (a character, a word) typed at the end of the root Y.Text
    `root` of a doc with `client_id`, each depending on the one before."""
    doc = Doc(client_id=client_id)
    text = doc.get(root, type=Text)
    updates = []
    for piece in pieces:
        before = doc.get_state()
        text += piece
        updates.append(doc.get_update(before))
    return updates
