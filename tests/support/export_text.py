"""The text lines a reader sees in exported HTML and Markdown (parsed back with an HTML
parser and markdown-it-py), to compare exports with a doc's plain text."""

from __future__ import annotations

import re
from html.parser import HTMLParser

from markdown_it import MarkdownIt

_BLOCK_TAGS = {"p", "h1", "h2", "h3", "h4", "h5", "h6", "li", "pre", "blockquote", "tr", "td"}
_BLOCK_TAGS |= {"th", "br", "hr", "ul", "ol", "table"}
#: GFM's task list checkbox at the start of a list item's first paragraph
_TASK_BOX = re.compile(r"\[[ xX]\] ")


def markdown_parser() -> MarkdownIt:
    """CommonMark plus the two GFM extensions the export uses (strikethrough, tables)."""
    return MarkdownIt("commonmark").enable(["strikethrough", "table"])


def markdown_lines(markdown: str) -> list[str]:
    """Non-empty text lines of the Markdown as markdown-it-py reads it (a line per table
    cell, as a doc's plain text has one per cell paragraph)."""
    lines: list[str] = []
    tokens = markdown_parser().parse(markdown)
    for index, token in enumerate(tokens):
        if token.type == "inline":
            parts: list[str] = []
            first_of_item = index >= 2 and tokens[index - 2].type == "list_item_open"
            children = token.children or []
            if first_of_item and children and children[0].type == "text":
                # GFM's task list item: a checkbox, not text (markdown-it's CommonMark
                # reads it as text; an escaped `\[ ]` is text and stays)
                box = _TASK_BOX.match(children[0].content)
                if box and token.content.startswith(box.group()):
                    parts.append(children[0].content[box.end() :])
                    children = children[1:]
            for child in children:
                if child.type in ("text", "code_inline"):
                    parts.append(child.content)
                elif child.type in ("softbreak", "hardbreak"):
                    parts.append("\n")
                # an image's alt text is its child, not read here: a doc's plain text
                # has no text for an image either
            lines.extend("".join(parts).split("\n"))
        elif token.type in ("fence", "code_block"):
            lines.extend(token.content.rstrip("\n").split("\n"))
        elif token.type == "html_block":
            raise AssertionError(f"Markdown export holds raw HTML: {token.content!r}")
    return [line for line in lines if line]


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.in_head = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "head":
            self.in_head = True
        if tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag == "head":
            self.in_head = False
        if tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self.in_head:
            self.parts.append(data)


def html_lines(html: str) -> list[str]:
    """Non-empty text lines of HTML, a line per block element or `<br>`."""
    parser = _Text()
    parser.feed(html)
    parser.close()
    return [line for line in "".join(parser.parts).split("\n") if line.strip()]


def text_lines(text: str) -> list[str]:
    return [line for line in text.split("\n") if line]
