"""Hold ProseMirror JSON to the safe schema: refuse it on the way in, clean it on the way out."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ._validate import ContentError
from .schema import MARKS, NODES, TypeSpec

__all__ = ["UnsafeContent", "check_node_safe", "check_safe", "find_unsafe", "sanitize"]

PmNode = dict[str, Any]


class UnsafeContent(ContentError):
    """Content outside the safe schema; `pointer` is the JSON pointer of the offending value."""

    def __init__(self, pointer: str, message: str) -> None:
        super().__init__(f"{pointer or '/'}: {message}")
        self.pointer: str | None = pointer
        self.reason = message


def _pointer(base: str, *parts: str | int) -> str:
    out = base
    for part in parts:
        out += "/" + str(part).replace("~", "~0").replace("/", "~1")
    return out


def check_safe(pm_json: Mapping[str, Any], pointer: str = "") -> None:
    """Raise `UnsafeContent` at the first node, mark or attribute outside the safe schema.

    *pm_json* must already have the ProseMirror shape (`validate_pm_json`); *pointer*
    is where it sits in the request body (``/contentJson``).  An unknown node or mark
    is pointed at itself, a bad attribute at its value.
    """
    found = find_unsafe(pm_json, pointer)
    if found:
        raise found[0]


def find_unsafe(pm_json: Mapping[str, Any], pointer: str = "") -> list[UnsafeContent]:
    """Every place where *pm_json* leaves the safe schema, in document order."""
    found: list[UnsafeContent] = []
    _check_node(pm_json, pointer, found)
    return found


def check_node_safe(node: Mapping[str, Any], at: str) -> None:
    """Raise `UnsafeContent` when *node* itself (its type, attributes, marks; not its
    children) leaves the safe schema: the step `check_doc` takes at each node of its walk."""
    found: list[UnsafeContent] = []
    _check_here(node, at, found)
    if found:
        raise found[0]


def _check_node(node: Mapping[str, Any], at: str, found: list[UnsafeContent]) -> None:
    if not _check_here(node, at, found):
        return
    for i, child in enumerate(node.get("content") or ()):
        _check_node(child, _pointer(at, "content", i), found)


def _check_here(node: Mapping[str, Any], at: str, found: list[UnsafeContent]) -> bool:
    """Check *node* but not its children; False when it is of an unknown type (whose
    content goes with it, so is not looked at)."""
    kind = node["type"]
    if kind != "text":
        spec = NODES.get(kind)
        if spec is None:
            found.append(UnsafeContent(at, f"node type {kind[:64]!r} is not allowed"))
            return False
        _check_attrs(spec, node.get("attrs"), _pointer(at, "attrs"), f"node {kind!r}", found)
    for i, mark in enumerate(node.get("marks") or ()):
        where = _pointer(at, "marks", i)
        mark_spec = MARKS.get(mark["type"])
        if mark_spec is None:
            found.append(UnsafeContent(where, f"mark type {mark['type'][:64]!r} is not allowed"))
            continue
        what = f"mark {mark['type']!r}"
        _check_attrs(mark_spec, mark.get("attrs"), _pointer(where, "attrs"), what, found)
    return True


def _check_attrs(
    spec: TypeSpec,
    attrs: Mapping[str, Any] | None,
    at: str,
    what: str,
    found: list[UnsafeContent],
) -> None:
    attrs = attrs or {}
    for name in sorted(spec.required):
        if attrs.get(name) is None:
            found.append(UnsafeContent(at, f"{what} needs the attribute {name!r}"))
    for name, value in attrs.items():
        if value is None:
            continue  # null is absent (y-prosemirror drops it)
        rule = spec.attrs.get(name)
        if rule is None:
            found.append(
                UnsafeContent(_pointer(at, name), f"{what} has no attribute {name[:64]!r}")
            )
        elif not rule.accepts(value):
            detail = "an unsafe URL" if rule.kind == "url" else "not allowed"
            found.append(UnsafeContent(_pointer(at, name), f"{what}: this {name!r} is {detail}"))


def sanitize(pm_json: Mapping[str, Any]) -> PmNode:
    """A copy of *pm_json* within the safe schema.

    Nodes of unknown types go with everything inside them (a ``script`` keeps no text),
    as do nodes that lose a required attribute (an ``image`` with a ``javascript:``
    source); unknown or unsafe marks and attributes are dropped (the text stays).  The
    shape is kept otherwise, an ``attrs`` key included, so safe content reads back
    exactly as it was written.
    """
    root = _clean_node(pm_json)
    return root if root is not None else {"type": "doc", "content": []}


def _clean_node(node: object) -> PmNode | None:
    if not isinstance(node, Mapping):
        return None
    kind = node.get("type")
    out: PmNode = {"type": kind}
    if kind == "text":
        text = node.get("text")
        if not isinstance(text, str) or not text:
            return None
        out["text"] = text
    else:
        spec = NODES.get(kind) if isinstance(kind, str) else None
        if spec is None:
            return None
        attrs = _clean_attrs(spec, node.get("attrs"))
        if attrs is None:
            return None
        if "attrs" in node:
            out["attrs"] = attrs
    if "marks" in node:
        marks = [m for m in map(_clean_mark, node.get("marks") or ()) if m is not None]
        if marks or node.get("marks") == []:
            out["marks"] = marks
    if "content" in node and kind != "text":
        content = node.get("content")
        children = content if isinstance(content, list) else []
        out["content"] = [c for c in map(_clean_node, children) if c is not None]
    return out


def _clean_mark(mark: object) -> PmNode | None:
    if not isinstance(mark, Mapping):
        return None
    kind = mark.get("type")
    spec = MARKS.get(kind) if isinstance(kind, str) else None
    if spec is None:
        return None
    attrs = _clean_attrs(spec, mark.get("attrs"))
    if attrs is None:
        return None
    out: PmNode = {"type": kind}
    if "attrs" in mark:
        out["attrs"] = attrs
    return out


def _clean_attrs(spec: TypeSpec, attrs: object) -> dict[str, Any] | None:
    """The allowed attributes of *attrs*, or None when a required one is missing or unsafe."""
    given = attrs if isinstance(attrs, Mapping) else {}
    kept = {
        name: value
        for name, value in given.items()
        if value is not None and name in spec.attrs and spec.attrs[name].accepts(value)
    }
    if any(name not in kept for name in spec.required):
        return None
    return kept
