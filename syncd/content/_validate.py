"""Shape check for ProseMirror JSON that arrives over the REST API.

The server has no ProseMirror schema, so this checks the shape every schema
shares (what ``Node.fromJSON`` needs), plus bounds, before anything touches a
doc.  Editors re-check content against their schema; y-prosemirror drops nodes
its schema cannot build.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

from ._marks import JSON_SAFE_INT, is_hashed_key

__all__ = ["MAX_TEXT", "ContentError", "NodeVisitor", "validate_pm_json"]

#: the longest string in a document (a text node, an attribute value)
MAX_TEXT = 1_000_000


class ContentError(ValueError):
    """Content that is not a well-formed ProseMirror document (the REST layer answers 422);
    `pointer`, when known, is the JSON pointer (RFC 6901) of the offending value in the doc."""

    pointer: str | None = None


#: called on each node once its shape is checked, with its JSON pointer in the doc: the
#: safe-schema check rides the same walk (`syncd.content.check_doc`)
NodeVisitor = Callable[[dict[str, Any], str], None]


# Node and mark type names: identifiers as schemas spell them (`bullet_list`,
# `hardBreak`, `ns:tag`).  Keeps garbage out of XML node names.
_TYPE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_\-:.]{0,127}")
_NODE_KEYS = frozenset({"type", "attrs", "content", "marks", "text"})
_MARK_KEYS = frozenset({"type", "attrs"})


class _Budget:
    __slots__ = ("left", "limit", "max_text", "visit")

    def __init__(self, limit: int, max_text: int, visit: NodeVisitor | None) -> None:
        self.limit = limit
        self.left = limit
        self.max_text = max_text
        self.visit = visit

    def spend(self, path: str) -> None:
        self.left -= 1
        if self.left < 0:
            raise ContentError(f"{path}: document has more than {self.limit} nodes and values")


def validate_pm_json(
    pm_json: object,
    *,
    max_depth: int = 64,
    max_nodes: int = 100_000,
    max_text: int = MAX_TEXT,
    visit: NodeVisitor | None = None,
) -> dict[str, Any]:
    """Return *pm_json* if it is a ProseMirror doc; raise ContentError saying what is wrong.

    Checks: root ``{"type": "doc", "content": [...]}`` with block (non-text)
    children; every node a dict with a type name and only the keys ``type``,
    ``attrs``, ``content``, ``marks``, ``text``; text nodes with a non-empty
    string and no content; marks a list of ``{type, attrs?}``; attrs dicts of
    JSON values (finite numbers, integers within JS's safe range); no string
    (text, attribute value) longer than *max_text*.  *max_depth* bounds node
    nesting plus attribute nesting; *max_nodes* bounds nodes, marks and
    attribute values together.  *visit*, if given, sees each node (and its JSON pointer)
    after its own shape is checked and before its children are.
    """
    budget = _Budget(max_nodes, max_text, visit)
    kind = pm_json.get("type") if isinstance(pm_json, dict) else None
    if isinstance(kind, str) and kind != "doc":  # before *visit* judges the type
        raise ContentError(f'doc: root type must be "doc", got {kind!r}')
    try:
        root = _check_node(pm_json, "doc", 0, max_depth, budget, "")
    except RecursionError:  # only with a max_depth beyond Python's stack
        raise ContentError("doc: nested too deeply") from None
    if root["type"] != "doc":
        raise ContentError(f'doc: root type must be "doc", got {root["type"]!r}')
    if "text" in root or "marks" in root:
        raise ContentError("doc: the root node cannot have text or marks")
    for i, child in enumerate(root.get("content", [])):
        if child["type"] == "text":
            raise ContentError(f"doc.content[{i}]: text must be inside a block node")
    return root


def _check_node(
    node: object, path: str, depth: int, max_depth: int, budget: _Budget, at: str
) -> dict[str, Any]:
    if depth > max_depth:
        raise ContentError(f"{path}: nested deeper than {max_depth} levels")
    budget.spend(path)
    if not isinstance(node, dict):
        raise ContentError(f"{path}: a node must be an object, got {_kind(node)}")
    extra = set(node) - _NODE_KEYS
    if extra:
        raise ContentError(f"{path}: unknown keys {sorted(map(str, extra))}")
    kind = _check_type_name(node.get("type"), path)
    if kind == "text":
        text = node.get("text")
        if not isinstance(text, str) or not text:
            raise ContentError(f"{path}: a text node needs a non-empty string 'text'")
        if len(text) > budget.max_text:
            raise ContentError(f"{path}: text is longer than {budget.max_text} characters")
        if "content" in node or "attrs" in node:
            raise ContentError(f"{path}: a text node cannot have content or attrs")
    elif "text" in node:
        raise ContentError(f"{path}: only text nodes have 'text' (type is {kind!r})")
    if "attrs" in node:
        _check_attrs(node["attrs"], f"{path}.attrs", depth + 1, max_depth, budget)
    if "marks" in node:
        _check_marks(node["marks"], f"{path}.marks", depth + 1, max_depth, budget)
    if "content" in node:
        content = node["content"]
        if not isinstance(content, list):
            raise ContentError(f"{path}.content: must be a list, got {_kind(content)}")
    if budget.visit is not None:
        budget.visit(node, at)
    for i, child in enumerate(node.get("content", ())):
        _check_node(
            child, f"{path}.content[{i}]", depth + 1, max_depth, budget, f"{at}/content/{i}"
        )
    return node


def _check_type_name(value: object, path: str) -> str:
    if not isinstance(value, str):
        raise ContentError(f"{path}: 'type' must be a string, got {_kind(value)}")
    if not _TYPE_NAME.fullmatch(value):
        raise ContentError(f"{path}: invalid type name {value[:64]!r}")
    return value


def _check_marks(marks: object, path: str, depth: int, max_depth: int, budget: _Budget) -> None:
    if not isinstance(marks, list):
        raise ContentError(f"{path}: must be a list, got {_kind(marks)}")
    for i, mark in enumerate(marks):
        where = f"{path}[{i}]"
        budget.spend(where)
        if not isinstance(mark, dict):
            raise ContentError(f"{where}: a mark must be an object, got {_kind(mark)}")
        extra = set(mark) - _MARK_KEYS
        if extra:
            raise ContentError(f"{where}: unknown keys {sorted(map(str, extra))}")
        name = _check_type_name(mark.get("type"), where)
        if is_hashed_key(name):
            # y-prosemirror would read "name--xxxxxxxx" back as "name"
            raise ContentError(f"{where}: mark type {name!r} looks like a hashed Yjs key")
        if "attrs" in mark:
            _check_attrs(mark["attrs"], f"{where}.attrs", depth + 1, max_depth, budget)


def _check_attrs(attrs: object, path: str, depth: int, max_depth: int, budget: _Budget) -> None:
    if not isinstance(attrs, dict):
        raise ContentError(f"{path}: must be an object, got {_kind(attrs)}")
    _check_value(attrs, path, depth, max_depth, budget)


def _check_value(value: object, path: str, depth: int, max_depth: int, budget: _Budget) -> None:
    if depth > max_depth:
        raise ContentError(f"{path}: nested deeper than {max_depth} levels")
    budget.spend(path)
    if value is None or isinstance(value, bool):
        return
    if isinstance(value, str):
        if len(value) > budget.max_text:
            raise ContentError(f"{path}: longer than {budget.max_text} characters")
        return
    if isinstance(value, int):
        if abs(value) > JSON_SAFE_INT:
            raise ContentError(f"{path}: integer outside the JSON-safe range")
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise ContentError(f"{path}: numbers must be finite")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _check_value(item, f"{path}[{i}]", depth + 1, max_depth, budget)
    elif isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise ContentError(f"{path}: object keys must be strings")
            _check_value(item, f"{path}.{key[:64]}", depth + 1, max_depth, budget)
    else:
        raise ContentError(f"{path}: {_kind(value)} is not a JSON value")


def _kind(value: object) -> str:
    return "null" if value is None else type(value).__name__
