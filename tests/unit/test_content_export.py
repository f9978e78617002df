"""HTML and Markdown export: the text survives a round trip through a real parser
(markdown-it-py for CommonMark), markup-looking text stays text, nothing unsafe gets out."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from markdown_it import MarkdownIt

from syncd.content import json_to_text, sanitize
from syncd.content.export_html import render_html, render_html_document
from syncd.content.export_markdown import render_markdown
from tests.support.export_text import html_lines, markdown_lines, markdown_parser, text_lines


def t(text: str, *marks: str, href: str | None = None) -> dict[str, Any]:
    node: dict[str, Any] = {"type": "text", "text": text}
    chosen = [{"type": m} for m in marks]
    if href is not None:
        chosen.insert(0, {"type": "link", "attrs": {"href": href}})
    if chosen:
        node["marks"] = chosen
    return node


def p(*inline: dict[str, Any]) -> dict[str, Any]:
    return {"type": "paragraph", "content": list(inline)}


def item(*blocks: dict[str, Any]) -> dict[str, Any]:
    return {"type": "list_item", "content": list(blocks)}


EVERYTHING = {
    "type": "doc",
    "content": [
        {"type": "heading", "attrs": {"level": 1}, "content": [t("Kickoff #3 with *ACME*")]},
        p(
            t("Plain, "),
            t("bold", "strong"),
            t(" and "),
            t("both", "strong", "em"),
            t(", "),
            t("code `x`", "code"),
            t(", "),
            t("a link", href="https://example.com/a_(b)?q=1&r=2"),
            t(" and "),
            t("bold link", "strong", href="mailto:ann@example.com"),
            t(" and "),
            t("gone", "strike"),
            t(" "),
            t("under", "underline"),
            t(" "),
            {"type": "mention", "attrs": {"id": "ann", "label": "Ann_Lee"}},
        ),
        p(t("# not a heading")),
        p(t("1. not a list"), {"type": "hard_break"}, t("- nor this"), {"type": "hard_break"}),
        p(t("> nor a quote & <b>no tag</b> [no](link) \\ back_slash_ *stars*")),
        {"type": "blockquote", "content": [p(t("quoted")), p(t("twice"))]},
        {
            "type": "bullet_list",
            "content": [
                item(p(t("one"))),
                item(
                    p(t("two")),
                    {"type": "ordered_list", "attrs": {"order": 7}, "content": [item(p(t("7th")))]},
                ),
            ],
        },
        {
            "type": "code_block",
            "attrs": {"language": "python"},
            "content": [t("x = '```'\n# comment\n    indented")],
        },
        {"type": "horizontal_rule"},
        p({"type": "image", "attrs": {"src": "/img/a b.png", "alt": "chart", "title": "Q3"}}),
        {
            "type": "table",
            "content": [
                {
                    "type": "table_row",
                    "content": [
                        {"type": "table_header", "content": [p(t("Name"))]},
                        {"type": "table_header", "content": [p(t("Stage"))]},
                    ],
                },
                {
                    "type": "table_row",
                    "content": [
                        {"type": "table_cell", "content": [p(t("ACME"))]},
                        {"type": "table_cell", "content": [p(t("won"))]},
                    ],
                },
            ],
        },
    ],
}


def test_markdown_reads_back_as_the_same_text() -> None:
    markdown = render_markdown(EVERYTHING)
    assert markdown_lines(markdown) == text_lines(json_to_text(EVERYTHING))
    # a reader of plain CommonMark (no GFM) still sees the text, tables as rows of cells
    html = MarkdownIt("commonmark").render(markdown)
    assert "~~gone~~" in html and "| ACME | won |" in html


def test_markdown_has_the_formatting() -> None:
    html = markdown_parser().render(render_markdown(EVERYTHING))
    assert "<em><strong>both</strong></em>" in html or "<strong><em>both</em></strong>" in html
    for fragment in (
        "<h1>Kickoff #3 with *ACME*</h1>",
        "<strong>bold</strong>",
        "<s>gone</s>",
        "<th>Name</th>",
        "<td>won</td>",
        "<code>code `x`</code>",
        '<a href="https://example.com/a_(b)?q=1&amp;r=2">a link</a>',
        '<a href="mailto:ann@example.com"><strong>bold link</strong></a>',
        "<blockquote>",
        '<ol start="7">',
        '<code class="language-python">',
        "<hr />",
        '<img src="/img/a%20b.png" alt="chart" title="Q3" />',
        "@Ann_Lee",
    ):
        assert fragment in html, (fragment, html)
    assert "<h1>" in html and html.count("<h1>") == 1  # "# not a heading" stayed text
    assert "<b>" not in html  # the text "<b>" is text


def test_html_reads_back_as_the_same_text_and_keeps_the_formatting() -> None:
    page = render_html_document(EVERYTHING, "Deal <ACME>")
    assert page.startswith("<!DOCTYPE html>") and "<title>Deal &lt;ACME&gt;</title>" in page
    assert html_lines(page) == ["Deal <ACME>", *text_lines(json_to_text(EVERYTHING))]
    fragment = render_html(EVERYTHING)
    for part in (
        "<strong><em>both</em></strong>",
        '<a href="mailto:ann@example.com" rel="noopener noreferrer nofollow"><strong>',
        '<ol start="7">',
        "<s>gone</s>",
        "<u>under</u>",
        '<span data-type="mention" data-id="ann" data-label="Ann_Lee">@Ann_Lee</span>',
        "<th><p>Name</p></th>",
        "&lt;b&gt;no tag&lt;/b&gt;",
    ):
        assert part in fragment, (part, fragment)


UNSAFE = {
    "type": "doc",
    "content": [
        {"type": "script", "content": [t("alert(1)")]},
        p(
            t("click", href="javascript:alert(1)"),
            t(" "),
            t("too", href="JAVA\tSCRIPT:alert(1)"),
            {"type": "image", "attrs": {"src": "/a.png", "onerror": "alert(1)"}},
            {"type": "image", "attrs": {"src": "javascript:alert(1)"}},
        ),
        {"type": "iframe", "attrs": {"src": "https://evil.example"}},
        {"type": "heading", "attrs": {"level": "1 onclick=alert(1)"}, "content": [t("x")]},
    ],
}


@pytest.mark.parametrize(
    "render",
    [render_markdown, render_html, lambda doc: render_html_document(doc, "t")],
    ids=["markdown", "html", "page"],
)
def test_nothing_unsafe_gets_out(render: Any) -> None:
    out = render(UNSAFE).lower()
    for bad in ("javascript", "alert", "onerror", "onclick", "<script", "iframe", "evil"):
        assert bad not in out, (bad, out)
    assert "click" in out and "too" in out


def test_empty_and_odd_docs() -> None:
    assert render_markdown({"type": "doc", "content": []}) == ""
    assert render_html({"type": "doc"}) == ""
    # text directly under the doc (not written by y-prosemirror, but a Yjs client can)
    odd = {"type": "doc", "content": [t("loose *text*")]}
    assert markdown_lines(render_markdown(odd)) == ["loose *text*"]
    assert sanitize(odd) == odd


_PRINTABLE = st.text(
    alphabet=st.characters(codec="ascii", min_codepoint=32, max_codepoint=126),
    min_size=1,
    max_size=12,
)
_MARK = st.sampled_from(["strong", "em", "code", "strike", "link"])


def _text_node(text: str, marks: list[str]) -> dict[str, Any]:
    node: dict[str, Any] = {"type": "text", "text": text}
    if marks:
        node["marks"] = [
            {"type": m, "attrs": {"href": "https://x.org/(a)"}} if m == "link" else {"type": m}
            for m in marks
        ]
    return node


_INLINE = st.one_of(
    st.builds(_text_node, _PRINTABLE, st.lists(_MARK, unique=True, max_size=3)),
    st.just({"type": "mention", "attrs": {"id": "u1", "label": "Ann"}}),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_INLINE, min_size=1, max_size=6))
def test_any_marked_ascii_text_reads_back_from_markdown(inline: list[dict[str, Any]]) -> None:
    # emphasis that CommonMark's flanking rules would not open where it stands is
    # written as inline HTML, so the text never gains stray `*` or loses a character
    doc = {"type": "doc", "content": [p(*inline)]}
    expected = [line.strip(" ") for line in text_lines(json_to_text(doc))]
    assert markdown_lines(render_markdown(doc)) == [line for line in expected if line]


def task(checked: bool | None, *blocks: dict[str, Any]) -> dict[str, Any]:
    attrs = {} if checked is None else {"checked": checked}
    return {"type": "taskItem", "attrs": attrs, "content": list(blocks)}


TASKS = {
    "type": "doc",
    "content": [
        p(t("Next steps")),
        {
            "type": "taskList",
            "content": [
                task(True, p(t("call "), t("ACME", "strong"))),
                task(False, p(t("send the quote")), p(t("with the discount"))),
                task(
                    None,
                    p(t("[x] not a checkbox")),
                    {"type": "taskList", "content": [task(True, p(t("nested")))]},
                ),
            ],
        },
    ],
}


def test_a_task_list_exports_as_checkboxes_and_the_same_text() -> None:
    lines = text_lines(json_to_text(TASKS))
    assert lines == [
        "Next steps",
        "call ACME",
        "send the quote",
        "with the discount",
        "[x] not a checkbox",
        "nested",
    ]
    markdown = render_markdown(TASKS)
    assert markdown.splitlines()[2:4] == ["- [x] call **ACME**", "- [ ] send the quote"]
    assert "\n  - [x] nested" in markdown
    # plain CommonMark reads a box as text in front of the item's text, which is the same
    tasks = markdown_parser().render(markdown)
    assert tasks.count("<li>") == 4 and "[ ] [x] not a checkbox" in tasks
    # read as GFM does (the box is no text), the text is the doc's; the text's own
    # brackets are escaped, so they are not taken for a second box
    assert markdown_lines(markdown) == lines
    fragment = render_html(TASKS)
    for part in (
        '<ul data-type="taskList">',
        '<li data-type="taskItem" data-checked="true">'
        '<input type="checkbox" checked="" disabled=""><p>call <strong>ACME</strong></p></li>',
        '<li data-type="taskItem" data-checked="false"><input type="checkbox" disabled="">',
    ):
        assert part in fragment, (part, fragment)
    assert html_lines(fragment) == lines


def _list_of(kind: str, *texts: str) -> dict[str, Any]:
    item = "taskItem" if kind == "taskList" else "list_item"
    return {"type": kind, "content": [{"type": item, "content": [p(t(x))]} for x in texts]}


def test_lists_in_a_row_stay_apart_in_markdown() -> None:
    """CommonMark joins two lists of one marker into one, a blank line between or not:
    the second takes the other marker, the third the first again."""
    doc = {
        "type": "doc",
        "content": [
            _list_of("bullet_list", "a"),
            _list_of("taskList", "b"),
            _list_of("bulletList", "c"),
            _list_of("ordered_list", "d"),
            _list_of("orderedList", "e"),
            p(t("f")),
            _list_of("bullet_list", "g"),
        ],
    }
    markdown = render_markdown(doc)
    kinds = [
        token.type
        for token in markdown_parser().parse(markdown)
        if token.type in ("bullet_list_open", "ordered_list_open")
    ]
    assert kinds == ["bullet_list_open"] * 3 + ["ordered_list_open"] * 2 + ["bullet_list_open"]
    assert markdown.split("\n\n")[:5] == ["- a", "* [ ] b", "- c", "1. d", "1) e"]
    assert markdown_lines(markdown) == list("abcdefg")
