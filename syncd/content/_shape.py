"""Compare Yjs content with ProseMirror JSON the way y-prosemirror's binding does.

Two nodes are equal when type, non-null attrs and content match; marks
compare as a set and adjacent text runs with equal marks as one run (the same
notion as y-prosemirror's ``equalYTypePNode``, minus its sensitivity to run
splits and mark order).
"""

from __future__ import annotations

import json
from typing import Any

import pycrdt

from ._marks import mark_name, normalize_value
from .prosemirror import PmNode

__all__ = ["Child", "canon_attrs", "equality", "group", "pcanon", "same_element", "ycanon"]

Child = PmNode | list[PmNode]
"""A child slot of an element: an element node, or a run of adjacent text nodes,
which y-prosemirror stores as one XmlText."""


def group(content: list[PmNode]) -> list[Child]:
    """Element nodes as they are, adjacent text nodes as one list (one XmlText)."""
    out: list[Child] = []
    for node in content:
        if node["type"] == "text":
            if out and isinstance(out[-1], list):
                out[-1].append(node)
            else:
                out.append([node])
        else:
            out.append(node)
    return out


def _canon(value: Any) -> str:
    return json.dumps(normalize_value(value), sort_keys=True, separators=(",", ":"))


def canon_attrs(attrs: Any) -> str:
    """Attrs for equality, null values dropped as y-prosemirror's `equalAttrs` does."""
    if not isinstance(attrs, dict):
        return "{}"
    return _canon({k: v for k, v in attrs.items() if v is not None and k != "ychange"})


def _canon_runs(runs: list[tuple[str, list[tuple[str, str]]]]) -> tuple[Any, ...]:
    merged: list[tuple[str, tuple[tuple[str, str], ...]]] = []
    for text, marks in runs:
        key = tuple(sorted(marks))
        if merged and merged[-1][1] == key:
            merged[-1] = (merged[-1][0] + text, key)
        elif text:
            merged.append((text, key))
    return ("text", tuple(merged))


def pcanon(node: Child) -> tuple[Any, ...]:
    if isinstance(node, list):
        return _canon_runs(
            [
                (t["text"], [(m["type"], canon_attrs(m.get("attrs"))) for m in t.get("marks", [])])
                for t in node
            ]
        )
    children = tuple(pcanon(c) for c in group(node.get("content", [])))
    return ("el", node["type"], canon_attrs(node.get("attrs")), children)


def ycanon(node: Any) -> tuple[Any, ...]:
    if isinstance(node, pycrdt.XmlText):
        runs = []
        for chunk, formatting in node.diff():
            if not isinstance(chunk, str):
                return ("embed",)  # never equal to ProseMirror content
            marks = [(mark_name(k), canon_attrs(v)) for k, v in (formatting or {}).items()]
            runs.append((chunk, marks))
        return _canon_runs(runs)
    children = tuple(ycanon(c) for c in node.children)
    return ("el", node.tag, canon_attrs(dict(node.attributes)), children)


def same_element(y: Any, p: Child) -> bool:
    return isinstance(y, pycrdt.XmlElement) and isinstance(p, dict) and y.tag == p["type"]


def equality(y: pycrdt.XmlElement, p: PmNode) -> int:
    """How many children match from both ends (y-prosemirror's equality factor)."""
    have = [ycanon(c) for c in y.children]
    want = [pcanon(c) for c in group(p.get("content", []))]
    n = min(len(have), len(want))
    left = 0
    while left < n and have[left] == want[left]:
        left += 1
    right = 0
    while left + right < n and have[-1 - right] == want[-1 - right]:
        right += 1
    return left + right
