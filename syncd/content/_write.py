"""Write ProseMirror JSON into a doc as one small CRDT change.

Editors keep their cursors as Yjs relative positions, which point at items: an
item that is deleted and re-created takes the cursor with it.  So, like
y-prosemirror's ``updateYFragment``, this keeps every node that did not
change, edits changed nodes in place when their type still matches, and edits
text by replacing only the span between the common prefix and suffix.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, cast

import pycrdt

from syncd.updates import EMPTY_UPDATE

from ._check import CheckedDoc
from ._marks import hashed_mark_key, is_hashed_key, mark_name, normalize_value
from ._shape import Child, canon_attrs, equality, group, pcanon, same_element, ycanon
from ._validate import validate_pm_json
from .prosemirror import DEFAULT_FIELD, PmNode, attributes_of, get_fragment

__all__ = ["write_json"]


_Parent = pycrdt.XmlFragment | pycrdt.XmlElement
_Run = tuple[str, dict[str, Any]]  # text, Yjs formatting attributes


def write_json(
    doc: pycrdt.Doc, pm_json: dict[str, Any], field: str = DEFAULT_FIELD, *, origin: Any = None
) -> bytes:
    """Make the fragment *field* hold *pm_json*; return that transaction's Yjs v1 update.

    *pm_json* is validated first (its shape: ContentError), unless `check_doc` made it;
    the safe schema is the REST layer's to hold writes to (a restored version holds what
    Yjs clients wrote, and goes back as it was).
    The change happens in one transaction with *origin*, so the doc's
    observers (the room) see and relay it like any other update.  Returns
    `EMPTY_UPDATE` when the doc already holds that content.  Must not be
    called inside an open transaction: the update only exists once the
    transaction commits.
    """
    root = pm_json if isinstance(pm_json, CheckedDoc) else validate_pm_json(pm_json)
    fragment = get_fragment(doc, field)
    if getattr(doc, "_txn", None) is not None:
        raise RuntimeError("write_json must run outside any transaction on the doc")
    updates: list[bytes] = []
    subscription = doc.observe(lambda event: updates.append(event.update))
    try:
        with doc.transaction(origin=origin):
            _Writer(fragment, root).run()
    finally:
        doc.unobserve(subscription)
    if not updates:
        return EMPTY_UPDATE
    # observers that edit in reaction commit transactions of their own
    return updates[0] if len(updates) == 1 else pycrdt.merge_updates(*updates)


class _Writer:
    def __init__(self, fragment: pycrdt.XmlFragment, root: PmNode) -> None:
        self.fragment = fragment
        self.root = root
        # Mark types stored under hashed keys: those y-prosemirror already
        # hashed in this doc, and those that occur twice on one text node.
        self.overlapping: set[str] = set()
        # Existing hashed keys by mark, reused so unchanged marks keep their key.
        self.hashed_keys: dict[tuple[str, str], str] = {}

    def run(self) -> None:
        self._scan_existing(self.fragment)
        self._scan_input(self.root)
        self._update_children(self.fragment, group(self.root.get("content", [])))

    # --- mark keys ----------------------------------------------------------------

    def _scan_existing(self, node: _Parent) -> None:
        for child in node.children:
            if isinstance(child, pycrdt.XmlText):
                for _, formatting in child.diff():
                    for key, value in (formatting or {}).items():
                        if is_hashed_key(key):
                            name = mark_name(key)
                            self.overlapping.add(name)
                            self.hashed_keys.setdefault((name, canon_attrs(value)), key)
            elif isinstance(child, pycrdt.XmlElement):
                self._scan_existing(child)

    def _scan_input(self, node: PmNode) -> None:
        names = [m["type"] for m in node.get("marks", [])] if node["type"] == "text" else []
        self.overlapping.update(n for n in names if names.count(n) > 1)
        for child in node.get("content", []):
            self._scan_input(child)

    def _formatting(self, marks: list[dict[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for mark in marks:
            name, attrs = mark["type"], mark.get("attrs") or {}
            key = name
            if name in self.overlapping:
                key = self.hashed_keys.get((name, canon_attrs(attrs))) or hashed_mark_key(
                    name, attrs
                )
            out[key] = attrs
        return out

    def _runs(self, texts: list[PmNode]) -> list[_Run]:
        return [(t["text"], self._formatting(t.get("marks", []))) for t in texts]

    # --- tree diff ------------------------------------------------------------------

    def _update_children(self, parent: _Parent, want: list[Child]) -> None:
        have: list[Any] = list(parent.children)
        have_c = [ycanon(y) for y in have]
        want_c = [pcanon(p) for p in want]
        ny, np_ = len(have), len(want)
        left = right = 0
        while left < min(ny, np_) and have_c[left] == want_c[left]:
            left += 1
        while left + right < min(ny, np_) and have_c[ny - 1 - right] == want_c[np_ - 1 - right]:
            right += 1
        while ny - left - right > 0 and np_ - left - right > 0:
            ly, lp = have[left], want[left]
            ry, rp = have[ny - 1 - right], want[np_ - 1 - right]
            if isinstance(ly, pycrdt.XmlText) and isinstance(lp, list):
                self._update_text(ly, self._runs(lp))
                left += 1
                continue
            upd_left, upd_right = same_element(ly, lp), same_element(ry, rp)
            if upd_left and upd_right:
                # edit the side whose children match better; the other may be a new node
                if equality(ry, cast(PmNode, rp)) > equality(ly, cast(PmNode, lp)):
                    upd_left = False
                else:
                    upd_right = False
            if upd_left:
                self._update_element(ly, cast(PmNode, lp))
                left += 1
            elif upd_right:
                self._update_element(ry, cast(PmNode, rp))
                right += 1
            else:
                del parent.children[left]
                self._insert(parent, left, lp)
                left += 1
        stale = ny - left - right
        if ny == 1 and np_ == 0 and isinstance(have[0], pycrdt.XmlText):
            # As y-prosemirror: empty the text instead of dropping it, so text a
            # peer types into it concurrently survives.
            del have[0][:]
        elif stale > 0:
            del parent.children[left : left + stale]
        for offset, p in enumerate(want[left : np_ - right]):
            self._insert(parent, left + offset, p)

    def _update_element(self, element: pycrdt.XmlElement, node: PmNode) -> None:
        have = attributes_of(element)
        want = node.get("attrs") or {}
        for key, value in want.items():
            if key == "ychange":  # y-prosemirror's change-tracking attr, never stored
                continue
            if value is None:
                if key in have:
                    del element.attributes[key]
            elif key not in have or normalize_value(have[key]) != normalize_value(value):
                element.attributes[key] = value
        for key in have:
            if key not in want:
                del element.attributes[key]
        self._update_children(element, group(node.get("content", [])))

    def _update_text(self, ytext: pycrdt.XmlText, runs: list[_Run]) -> None:
        have = ytext.diff()
        if any(not isinstance(chunk, str) for chunk, _ in have):
            del ytext[:]  # embeds are foreign to y-prosemirror's layout
            have = []
        old = "".join(chunk for chunk, _ in have)
        new = "".join(text for text, _ in runs)
        prefix = _common_prefix(old, new)
        suffix = _common_suffix(old[prefix:], new[prefix:])
        start = _blen(old[:prefix])
        removed = old[prefix : len(old) - suffix]
        if removed:
            del ytext[start : start + _blen(removed)]
        cursor = start
        for text, formatting in _slice_runs(runs, prefix, len(new) - suffix):
            ytext.insert(cursor, text, formatting)
            cursor += _blen(text)
        self._reformat(ytext, runs)

    def _reformat(self, ytext: pycrdt.XmlText, runs: list[_Run]) -> None:
        """Format only the spans whose marks differ, so unchanged formatting keeps its items."""
        have = [(chunk, formatting or {}) for chunk, formatting in ytext.diff()]
        pos = 0
        pending: tuple[int, int, dict[str, Any]] | None = None
        for text, actual, wanted in _zip_runs(have, runs):
            size = _blen(text)
            change = {k: v for k, v in wanted.items() if not _same_value(actual.get(k), v)}
            change.update({k: None for k in actual if k not in wanted})
            if change and pending and pending[1] == pos and pending[2] == change:
                pending = (pending[0], pos + size, change)
            elif change:
                if pending:
                    ytext.format(*pending)
                pending = (pos, pos + size, change)
            pos += size
        if pending:
            ytext.format(*pending)

    def _insert(self, parent: _Parent, index: int, node: Child) -> None:
        if isinstance(node, list):
            ytext = parent.children.insert(index, pycrdt.XmlText())
            cursor = 0
            for text, formatting in self._runs(node):
                ytext.insert(cursor, text, formatting)
                cursor += _blen(text)
            return
        attrs = {
            k: v for k, v in (node.get("attrs") or {}).items() if v is not None and k != "ychange"
        }
        element = parent.children.insert(index, pycrdt.XmlElement(node["type"], attrs))
        for i, child in enumerate(group(node.get("content", []))):
            self._insert(element, i, child)


# --- helpers ------------------------------------------------------------------------


def _same_value(a: Any, b: Any) -> bool:
    return a is not None and normalize_value(a) == normalize_value(b)


def _blen(text: str) -> int:
    # pycrdt (yrs with OffsetKind::Bytes) indexes text by UTF-8 bytes
    return len(text.encode("utf-8", "surrogatepass"))


def _common_prefix(a: str, b: str) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


def _common_suffix(a: str, b: str) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[-1 - i] == b[-1 - i]:
        i += 1
    return i


def _slice_runs(runs: list[_Run], start: int, stop: int) -> Iterator[_Run]:
    """The pieces of *runs* between character offsets *start* and *stop*."""
    pos = 0
    for text, formatting in runs:
        lo, hi = max(start, pos), min(stop, pos + len(text))
        if lo < hi:
            yield text[lo - pos : hi - pos], formatting
        pos += len(text)


def _zip_runs(
    have: list[tuple[str, dict[str, Any]]], want: list[_Run]
) -> Iterator[tuple[str, dict[str, Any], dict[str, Any]]]:
    """Walk two run lists over the same text, yielding (piece, have_attrs, want_attrs)."""
    i = j = 0
    hi_off = wi_off = 0  # offsets into have[i] / want[j]
    while i < len(have) and j < len(want):
        h_text, h_attrs = have[i]
        w_text, w_attrs = want[j]
        size = min(len(h_text) - hi_off, len(w_text) - wi_off)
        yield h_text[hi_off : hi_off + size], h_attrs, w_attrs
        hi_off += size
        wi_off += size
        if hi_off == len(h_text):
            i, hi_off = i + 1, 0
        if wi_off == len(w_text):
            j, wi_off = j + 1, 0
