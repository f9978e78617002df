"""Read a note's rich text out of a pycrdt Doc laid out the way y-prosemirror lays it out.

Layout (y-prosemirror 1.3, ``src/lib.js`` and ``src/plugins/sync-plugin.js``):
the root is a ``Y.XmlFragment`` (y-prosemirror's default name ``"prosemirror"``,
Tiptap's ``"default"``); each non-text ProseMirror node is a ``Y.XmlElement``
whose nodeName is the node type and whose attributes are the node's non-null
attrs; each run of adjacent text nodes is one ``Y.XmlText`` whose formatting
attributes are the marks (see ``_marks``).
"""

from __future__ import annotations

from typing import Any, cast

import pycrdt

from ._marks import mark_name, normalize_value, sort_marks

__all__ = [
    "DEFAULT_FIELD",
    "doc_to_json",
    "doc_to_text",
    "fragment_to_json",
    "fragment_to_text",
    "get_fragment",
    "json_to_text",
    "text_to_json",
]

DEFAULT_FIELD = "prosemirror"
"""y-prosemirror's default root name; Tiptap's Collaboration extension uses "default"."""

PmNode = dict[str, Any]

# Leaf nodes whose plain-text rendering is not "", ProseMirror `leafText` style.
_BREAKS = frozenset({"hard_break", "hardBreak"})
_MENTION = "mention"
# Childless nodes that are leaves, not empty textblocks (no line of their own).
_LEAVES = _BREAKS | {_MENTION, "horizontal_rule", "horizontalRule", "image"}


def get_fragment(doc: pycrdt.Doc, field: str = DEFAULT_FIELD) -> pycrdt.XmlFragment:
    """The doc's root XmlFragment named *field* (created empty if the doc has none).

    Yjs updates do not carry root types; a root is whatever the reader asks for.
    """
    return doc.get(field, type=pycrdt.XmlFragment)


def fragment_to_json(fragment: pycrdt.XmlFragment) -> PmNode:
    """ProseMirror JSON of *fragment*, as y-prosemirror's ``yXmlFragmentToProsemirrorJSON``.

    Differences, all for content y-prosemirror never writes: text directly under
    the fragment is flattened into ``content`` (y-prosemirror nests an array),
    non-string embeds in text are skipped, and a formatting value that is not an
    object becomes ``attrs: {}``.  Attribute dicts are key-sorted, integral
    numbers are ints, and marks are in the order of ``_marks.sort_marks``.
    """
    with fragment.doc.transaction():
        return {"type": "doc", "content": _children_to_json(fragment)}


def doc_to_json(doc: pycrdt.Doc, field: str = DEFAULT_FIELD) -> PmNode:
    return fragment_to_json(get_fragment(doc, field))


def fragment_to_text(fragment: pycrdt.XmlFragment) -> str:
    """Plain text of *fragment*; see `json_to_text`."""
    return json_to_text(fragment_to_json(fragment))


def doc_to_text(doc: pycrdt.Doc, field: str = DEFAULT_FIELD) -> str:
    return fragment_to_text(get_fragment(doc, field))


def text_to_json(text: str) -> PmNode:
    """ProseMirror JSON for plain text: one paragraph per line, an empty line an empty paragraph."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return {
        "type": "doc",
        "content": [
            {"type": "paragraph", "content": [{"type": "text", "text": line}]}
            if line
            else {"type": "paragraph"}
            for line in lines
        ],
    }


def json_to_text(pm_json: PmNode) -> str:
    """Plain text of ProseMirror JSON, like ``doc.textBetween(0, size, "\\n", leafText)``.

    Textblocks are separated by "\\n"; a mention renders as "@label" (or "@id"
    without a label), a hard break as "\\n", other leaves as "".  Without the
    schema, a node counts as a textblock when it holds text or inline leaves,
    or when it is childless and not a known leaf (an empty paragraph).
    """
    lines: list[str] = []
    _collect_lines(pm_json.get("content") or [], lines)
    return "\n".join(lines)


# --- reading ----------------------------------------------------------------------


def _children_to_json(parent: pycrdt.XmlFragment | pycrdt.XmlElement) -> list[PmNode]:
    out: list[PmNode] = []
    for child in parent.children:
        if isinstance(child, pycrdt.XmlText):
            out.extend(_text_to_json(child))
        elif isinstance(child, pycrdt.XmlElement):
            out.append(_element_to_json(child))
    return out


def _element_to_json(element: pycrdt.XmlElement) -> PmNode:
    node: PmNode = {"type": element.tag or ""}
    attrs = normalize_value(attributes_of(element))
    if attrs:
        node["attrs"] = attrs
    if len(element.children):  # y-prosemirror: `content` iff the element has children,
        node["content"] = _children_to_json(element)  # even an emptied XmlText ([])
    return node


def _text_to_json(text: pycrdt.XmlText) -> list[PmNode]:
    nodes: list[PmNode] = []
    for insert, formatting in text.diff():
        if not isinstance(insert, str) or not insert:
            continue  # embeds are not part of y-prosemirror's layout
        node: PmNode = {"type": "text", "text": insert}
        if formatting:
            node["marks"] = sort_marks(
                {
                    "type": mark_name(key),
                    "attrs": normalize_value(value) if isinstance(value, dict) else {},
                }
                for key, value in formatting.items()
            )
        nodes.append(node)
    return nodes


# --- plain text -------------------------------------------------------------------


def _is_inline(node: PmNode) -> bool:
    return node.get("type") == "text" or node.get("type") in _LEAVES


def _collect_lines(blocks: list[Any], lines: list[str]) -> None:
    for node in blocks:
        if not isinstance(node, dict) or node.get("type") in _LEAVES:
            continue  # leaf blocks (rules, block images) add no line, as in textBetween
        content = node.get("content") or []
        if node.get("type") == "text":
            lines.append(str(node.get("text", "")))
        elif not content or any(isinstance(c, dict) and _is_inline(c) for c in content):
            lines.append(_inline_text(content))
        else:
            _collect_lines(content, lines)


def _inline_text(nodes: list[Any]) -> str:
    parts: list[str] = []
    for node in nodes:
        if not isinstance(node, dict):
            continue
        kind = node.get("type")
        if kind == "text":
            parts.append(str(node.get("text", "")))
        elif kind == _MENTION:
            attrs = node.get("attrs") or {}
            parts.append(f"@{attrs.get('label') or attrs.get('id') or ''}")
        elif kind in _BREAKS:
            parts.append("\n")
        else:
            parts.append(_inline_text(node.get("content") or []))
    return "".join(parts)


def attributes_of(element: pycrdt.XmlElement) -> dict[str, Any]:
    """The element's attributes (pycrdt's view iterates (key, value) pairs; its type
    does not say so)."""
    return dict(cast(Any, element.attributes))
