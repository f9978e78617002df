"""A note's content as HTML: rendered from safe ProseMirror JSON, then cleaned again by nh3.

The renderer only ever sees `sanitize`d JSON, and escapes every text and attribute; nh3
(ammonia) is the second wall, with an allow-list of exactly the tags, attributes and URL
schemes the renderer produces, so a bug in the renderer cannot become script in a CRM page.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from typing import Any

import nh3

from ._safety import sanitize
from .schema import SAFE_URL_SCHEMES

__all__ = ["render_html", "render_html_document"]

_BLOCKS = {
    "paragraph": "p",
    "blockquote": "blockquote",
    "bullet_list": "ul",
    "bulletList": "ul",
    "ordered_list": "ol",
    "orderedList": "ol",
    "list_item": "li",
    "listItem": "li",
    "table_row": "tr",
    "tableRow": "tr",
    "table_cell": "td",
    "tableCell": "td",
    "table_header": "th",
    "tableHeader": "th",
}
_VOID = {
    "horizontal_rule": "<hr>",
    "horizontalRule": "<hr>",
    "hard_break": "<br>",
    "hardBreak": "<br>",
}
# outermost first: a link wraps the emphasis inside it, code is innermost
_MARK_TAGS = {
    "em": "em",
    "italic": "em",
    "strong": "strong",
    "bold": "strong",
    "strike": "s",
    "underline": "u",
    "subscript": "sub",
    "superscript": "sup",
    "code": "code",
}
_MARK_ORDER = ["link", "strong", "bold", "em", "italic", "strike", "underline", "subscript"]
_MARK_ORDER += ["superscript", "code"]

_TAGS = {"p", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "pre", "code", "hr", "br"}
_TAGS |= {"ul", "ol", "li", "img", "table", "tbody", "tr", "td", "th", "span", "a"}
_TAGS |= {"em", "strong", "s", "u", "sub", "sup", "input"}
_ATTRIBUTES = {
    "ul": {"data-type"},
    "li": {"data-type", "data-checked"},
    "input": {"type", "checked", "disabled"},
    "a": {"href", "title", "target"},
    "img": {"src", "alt", "title"},
    "ol": {"start", "type"},
    "td": {"colspan", "rowspan"},
    "th": {"colspan", "rowspan"},
    "code": {"class"},
    "span": {"data-type", "data-id", "data-label"},
    "p": {"style"},
    "h1": {"style"},
    "h2": {"style"},
    "h3": {"style"},
    "h4": {"style"},
    "h5": {"style"},
    "h6": {"style"},
}


def render_html(pm_json: Mapping[str, Any]) -> str:
    """An HTML fragment of *pm_json*, sanitised (whatever it holds) with nh3."""
    raw = "".join(_node(child) for child in sanitize(pm_json).get("content", []))
    return nh3.clean(
        raw,
        tags=_TAGS,
        attributes=_ATTRIBUTES,
        url_schemes=set(SAFE_URL_SCHEMES),
        link_rel="noopener noreferrer nofollow",
        filter_style_properties={"text-align"},
        strip_comments=True,
    )


def render_html_document(pm_json: Mapping[str, Any], title: str) -> str:
    """A whole UTF-8 HTML page: the note's title and its content (`render_html`)."""
    name = html.escape(title)
    return (
        '<!DOCTYPE html>\n<html>\n<head>\n<meta charset="utf-8">\n'
        f"<title>{name}</title>\n</head>\n<body>\n<h1>{name}</h1>\n"
        f"{render_html(pm_json)}\n</body>\n</html>\n"
    )


def _attr(name: str, value: object) -> str:
    return f' {name}="{html.escape(str(value), quote=True)}"'


def _children(node: Mapping[str, Any]) -> str:
    return "".join(_node(child) for child in node.get("content", []))


def _align(attrs: Mapping[str, Any]) -> str:
    align = attrs.get("textAlign")
    return _attr("style", f"text-align: {align}") if align else ""


def _node(node: Mapping[str, Any]) -> str:
    kind = node["type"]
    attrs = node.get("attrs") or {}
    if kind == "text":
        return _text(node)
    if kind in _VOID:
        return _VOID[kind]
    if kind == "heading":
        level = attrs.get("level") or 1
        return f"<h{level}{_align(attrs)}>{_children(node)}</h{level}>"
    if kind in ("code_block", "codeBlock"):
        language = attrs.get("language")
        css = _attr("class", f"language-{language}") if language else ""
        code = "".join(html.escape(c.get("text", "")) for c in node.get("content", []))
        return f"<pre><code{css}>{code}</code></pre>"
    if kind == "image":
        return (
            "<img"
            + "".join(_attr(name, attrs[name]) for name in ("src", "alt", "title") if name in attrs)
            + ">"
        )
    if kind == "mention":
        label = attrs.get("label") or attrs.get("id") or ""
        data = _attr("data-type", "mention")
        data += "".join(_attr(f"data-{k}", attrs[k]) for k in ("id", "label") if k in attrs)
        return f"<span{data}>@{html.escape(str(label))}</span>"
    if kind == "table":
        return f"<table><tbody>{_children(node)}</tbody></table>"
    if kind == "taskList":
        return f'<ul data-type="taskList">{_children(node)}</ul>'
    if kind == "taskItem":
        # Tiptap's own markup names the item; the box is a disabled checkbox (an export
        # is read, not edited); an item without `checked` is an open task, as in Tiptap
        checked = attrs.get("checked") is True
        box = f'<input type="checkbox"{" checked" if checked else ""} disabled>'
        state = "true" if checked else "false"
        return f'<li data-type="taskItem" data-checked="{state}">{box}{_children(node)}</li>'
    tag = _BLOCKS.get(kind)
    if tag is None:  # `doc` nested, or a type sanitize let through: keep the content
        return _children(node)
    extra = ""
    if tag == "p":
        extra = _align(attrs)
    elif tag == "ol":
        start = attrs.get("start", attrs.get("order"))
        extra = _attr("start", start) if start not in (None, 1) else ""
        extra += _attr("type", attrs["type"]) if attrs.get("type") else ""
    elif tag in ("td", "th"):
        extra = "".join(_attr(k, attrs[k]) for k in ("colspan", "rowspan") if attrs.get(k, 1) != 1)
    return f"<{tag}{extra}>{_children(node)}</{tag}>"


def _text(node: Mapping[str, Any]) -> str:
    out = html.escape(node["text"]).replace("\n", "<br>")
    marks = sorted(node.get("marks") or [], key=lambda m: _MARK_ORDER.index(m["type"]))
    for mark in reversed(marks):
        if mark["type"] == "link":
            attrs = mark.get("attrs") or {}
            extra = "".join(_attr(k, attrs[k]) for k in ("href", "title", "target") if k in attrs)
            out = f"<a{extra}>{out}</a>"
        else:
            tag = _MARK_TAGS[mark["type"]]
            out = f"<{tag}>{out}</{tag}>"
    return out
