"""The safe ProseMirror schema: the node types, mark types and attributes syncd stores and serves.

syncd keeps no editor schema of its own (editors enforce structure, and y-prosemirror
drops what its schema cannot build), but a CRM renders notes into its own pages, PDFs
and e-mails, so what a note may *carry* is fixed here: the nodes and marks of
prosemirror-schema-basic and prosemirror-schema-list (snake_case names), their Tiptap
StarterKit counterparts (camelCase), tables (prosemirror-tables / Tiptap), task lists
(Tiptap's TaskList / TaskItem: `taskItem` has a boolean `checked`) and `mention`
(Tiptap's Mention extension).  Each type lists the attributes it may have; a null
attribute is the same as a missing one (y-prosemirror drops nulls) and is always allowed.
Links and images may only point at `SAFE_URL_SCHEMES` or relative URLs.

Structure (which node may hold which) is not checked: it carries no risk, and
editors differ on it (an `image` is inline in prosemirror-schema-basic, a block in Tiptap).

REST writes are refused when they leave this schema (`check_safe`, with the JSON pointer
of the offending value); content that arrived from Yjs clients cannot be refused after
the fact, so every output goes through `sanitize`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

__all__ = [
    "MARKS",
    "NODES",
    "SAFE_URL_PATTERN",
    "SAFE_URL_SCHEMES",
    "Attr",
    "TypeSpec",
    "is_safe_url",
]

SAFE_URL_SCHEMES = ("http", "https", "mailto", "tel")

#: A URL a browser cannot turn into script: no control characters anywhere, no space or
#: control character at either end (browsers strip those before finding the scheme), and
#: either one of `SAFE_URL_SCHEMES` (any case) or no scheme at all (no `:` before the
#: first `/`, `?` or `#`: a relative URL).  Written for ECMA-262 and Python alike, as
#: `/openapi.json` states it.
SAFE_URL_PATTERN = (
    r"^(?![\x00-\x20])(?![\s\S]*[\x00-\x1f\x7f])(?![\s\S]*[\x00-\x20]$)"
    r"(?:(?:[Hh][Tt][Tt][Pp][Ss]?|[Mm][Aa][Ii][Ll][Tt][Oo]|[Tt][Ee][Ll]):|[^:/?#]*(?:[/?#]|$))"
)
_SAFE_URL = re.compile(SAFE_URL_PATTERN)

MAX_URL_LENGTH = 2048


def is_safe_url(value: object) -> bool:
    """True for a non-empty string URL within `SAFE_URL_PATTERN` and `MAX_URL_LENGTH`."""
    return (
        isinstance(value, str)
        and 0 < len(value) <= MAX_URL_LENGTH
        and _SAFE_URL.match(value) is not None
    )


@dataclass(frozen=True, slots=True)
class Attr:
    """What one attribute may hold (besides null).

    kind: ``int`` (within minimum..maximum), ``str`` (at most max_length, one of enum
    when given), ``url`` (`is_safe_url`), ``id`` (a string or an integer: mention ids),
    ``ints`` (a list of at most 1000 integers within minimum..maximum: column widths),
    ``bool`` (true or false: a task's `checked`).
    """

    kind: str
    minimum: int = 0
    maximum: int = 2**31 - 1
    max_length: int = 1000
    enum: tuple[str, ...] | None = None

    def accepts(self, value: object) -> bool:
        if self.kind == "url":
            return is_safe_url(value)
        if self.kind == "str":
            return (
                isinstance(value, str)
                and len(value) <= self.max_length
                and (self.enum is None or value in self.enum)
            )
        if self.kind == "int":
            return _is_int(value) and self.minimum <= value <= self.maximum  # type: ignore[operator]
        if self.kind == "id":
            return (isinstance(value, str) and 0 < len(value) <= self.max_length) or (
                _is_int(value)
            )
        if self.kind == "bool":
            return isinstance(value, bool)
        if self.kind == "ints":
            return (
                isinstance(value, list)
                and len(value) <= 1000
                and all(_is_int(v) and self.minimum <= v <= self.maximum for v in value)
            )
        raise ValueError(f"unknown attribute kind {self.kind!r}")


def _is_int(value: object) -> bool:
    # JSON numbers arrive as floats from yrs: an integral float is an integer
    if isinstance(value, bool):
        return False
    return isinstance(value, int) or (isinstance(value, float) and value.is_integer())


@dataclass(frozen=True, slots=True)
class TypeSpec:
    """A node or mark type: its attributes, and those it cannot be without (or it is dropped)."""

    attrs: Mapping[str, Attr] = field(default_factory=dict)
    required: frozenset[str] = frozenset()


_ALIGN = Attr("str", enum=("left", "center", "right", "justify"))
_TEXTBLOCK = TypeSpec({"textAlign": _ALIGN})
_PLAIN = TypeSpec()
_CODE = TypeSpec({"language": Attr("str", max_length=64)})
_ORDERED = TypeSpec(
    {
        "order": Attr("int", minimum=0),  # prosemirror-schema-list
        "start": Attr("int", minimum=0),  # Tiptap
        "type": Attr("str", enum=("1", "a", "A", "i", "I")),
    }
)
_IMAGE = TypeSpec(
    {"src": Attr("url"), "alt": Attr("str"), "title": Attr("str")}, frozenset({"src"})
)
_CELL = TypeSpec(
    {
        "colspan": Attr("int", minimum=1, maximum=1000),
        "rowspan": Attr("int", minimum=1, maximum=65534),
        "colwidth": Attr("ints", minimum=0, maximum=100_000),
    }
)
_MENTION = TypeSpec(
    {
        "id": Attr("id", max_length=200),
        "label": Attr("str", max_length=200),
        "mentionSuggestionChar": Attr("str", max_length=4),
    }
)

NODES: Mapping[str, TypeSpec] = {
    "doc": _PLAIN,
    "paragraph": _TEXTBLOCK,
    "heading": TypeSpec({"level": Attr("int", minimum=1, maximum=6), "textAlign": _ALIGN}),
    "blockquote": _PLAIN,
    "code_block": _CODE,
    "codeBlock": _CODE,
    "horizontal_rule": _PLAIN,
    "horizontalRule": _PLAIN,
    "hard_break": _PLAIN,
    "hardBreak": _PLAIN,
    "bullet_list": _PLAIN,
    "bulletList": _PLAIN,
    "ordered_list": _ORDERED,
    "orderedList": _ORDERED,
    "list_item": _PLAIN,
    "listItem": _PLAIN,
    "image": _IMAGE,
    "table": _PLAIN,
    "table_row": _PLAIN,
    "tableRow": _PLAIN,
    "table_cell": _CELL,
    "tableCell": _CELL,
    "table_header": _CELL,
    "tableHeader": _CELL,
    "taskList": _PLAIN,
    "taskItem": TypeSpec({"checked": Attr("bool")}),
    "mention": _MENTION,
}
"""Element node types (``text`` is the one other node type; it has no attributes)."""

_LINK = TypeSpec(
    {
        "href": Attr("url"),
        "title": Attr("str"),
        "target": Attr("str", enum=("_blank", "_self")),
        "rel": Attr("str", max_length=200),
    },
    frozenset({"href"}),
)

MARKS: Mapping[str, TypeSpec] = {
    "link": _LINK,
    "em": _PLAIN,
    "italic": _PLAIN,
    "strong": _PLAIN,
    "bold": _PLAIN,
    "code": _PLAIN,
    "strike": _PLAIN,
    "underline": _PLAIN,
    "subscript": _PLAIN,
    "superscript": _PLAIN,
}
