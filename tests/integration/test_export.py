"""`GET .../export` against a real server: what a stock y-prosemirror client typed comes
out as HTML, Markdown, text and JSON with the same text; nothing unsafe comes out."""

from __future__ import annotations

from typing import Any

import pycrdt

from tests.support.export_text import html_lines, markdown_lines, markdown_parser, text_lines
from tests.support.fixtures import create_note
from tests.support.polling import eventually
from tests.support.server import SyncdProcess, make_token
from tests.support.yjs_node import NodeYjs

NOTES = "/api/collaborative-notes"


def _t(text: str, *marks: dict[str, Any]) -> dict[str, Any]:
    node: dict[str, Any] = {"type": "text", "text": text}
    if marks:
        node["marks"] = list(marks)
    return node


# every node and mark of the Node clients' schema (prosemirror-schema-basic + mention)
EVERYTHING = {
    "type": "doc",
    "content": [
        {"type": "heading", "attrs": {"level": 2}, "content": [_t("Deal #7: *ACME*")]},
        {
            "type": "paragraph",
            "content": [
                _t("Call "),
                _t("Ann", {"type": "strong"}),
                _t(" about "),
                _t("pricing_v2", {"type": "em"}, {"type": "strong"}),
                _t(" at "),
                _t("the portal", {"type": "link", "attrs": {"href": "https://acme.example/x"}}),
                _t(", run "),
                _t("make `all`", {"type": "code"}),
                {"type": "hard_break"},
                _t("then ping "),
                {"type": "mention", "attrs": {"id": "ann", "label": "Ann"}},
            ],
        },
        {"type": "blockquote", "content": [{"type": "paragraph", "content": [_t("> 1. q")]}]},
        {"type": "code_block", "content": [_t("SELECT * FROM leads;\n-- ```")]},
        {"type": "horizontal_rule"},
        {
            "type": "paragraph",
            "content": [{"type": "image", "attrs": {"src": "/files/chart.png", "alt": "chart"}}],
        },
    ],
}


def _without_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value


async def _exports(api: Any, url: str) -> dict[str, Any]:
    out = {}
    for fmt in ("html", "markdown", "text", "json"):
        response = await api.get(f"{url}/export", params={"format": fmt})
        assert response.status_code == 200, response.text
        out[fmt] = response
    return out


async def test_what_a_stock_editor_typed_exports_with_the_same_text(
    syncd: SyncdProcess, node: NodeYjs
) -> None:
    note = await create_note(syncd, title="ACME <deal>")
    url = f"{NOTES}/{note['id']}"
    editor = await node.connect(
        "e", url=syncd.ws_url, room=note["id"], token=make_token("owner"), wait_synced=True
    )
    await editor.pm_set(EVERYTHING)
    await editor.pm_type("now", at="new_paragraph")  # keystrokes, one update each
    typed = await editor.pm_text()
    assert typed.endswith("\nnow")
    async with syncd.client(make_token("owner")) as api:
        # the REST view reads the live doc: the last keystroke may still be on its way
        # (the Node client's text has an empty line for the rule, the server's none)
        async def arrived() -> str | None:
            content = str((await api.get(url)).json()["content"])
            return content if text_lines(content) == text_lines(typed) else None

        text = await eventually(arrived, timeout=10, what="the typed text on the server")
        out = await _exports(api, url)
    expected = text_lines(typed)
    assert out["text"].text == text + "\n"
    assert markdown_lines(out["markdown"].text) == expected
    assert html_lines(out["html"].text) == ["ACME <deal>", *expected]
    # null attributes count as absent, and the export leaves them out
    assert out["json"].json() == _without_nulls(await editor.pm_get(raw=True))
    assert "<strong><em>pricing_v2</em></strong>" in out["html"].text
    assert (
        '<a href="https://acme.example/x" rel="noopener noreferrer nofollow">' in out["html"].text
    )
    for fmt, media_type, extension in (
        ("html", "text/html; charset=utf-8", "html"),
        ("markdown", "text/markdown; charset=utf-8; variant=CommonMark", "md"),
        ("text", "text/plain; charset=utf-8", "txt"),
        ("json", "application/json", "json"),
    ):
        assert out[fmt].headers["content-type"] == media_type
        disposition = out[fmt].headers["content-disposition"]
        assert disposition == f'attachment; filename="{note["id"]}.{extension}"'


def _item(kind: str, *paragraphs: str, **attrs: Any) -> dict[str, Any]:
    item: dict[str, Any] = {
        "type": kind,
        "content": [{"type": "paragraph", "content": [_t(p)]} for p in paragraphs],
    }
    if attrs:
        item["attrs"] = attrs
    return item


# the lists of the Node clients' schema: prosemirror-schema-list's and Tiptap's task list
LISTS = {
    "type": "doc",
    "content": [
        {"type": "paragraph", "content": [_t("Next steps")]},
        {
            "type": "bullet_list",
            "content": [
                _item("list_item", "call *Ann*"),
                {
                    "type": "list_item",
                    "content": [
                        {"type": "paragraph", "content": [_t("send")]},
                        {
                            "type": "ordered_list",
                            "attrs": {"order": 3},
                            "content": [
                                _item("list_item", "quote"),
                                _item("list_item", "1. terms"),
                            ],
                        },
                    ],
                },
            ],
        },
        {
            "type": "taskList",
            "content": [
                _item("taskItem", "signed", checked=True),
                _item("taskItem", "- [ ] paid", checked=False),
            ],
        },
    ],
}


async def test_lists_typed_by_a_stock_editor_export_with_the_same_text(
    syncd: SyncdProcess, node: NodeYjs
) -> None:
    """Bullet, ordered (starting at 3, nested) and task lists, with text that looks like
    list syntax: HTML and Markdown read back as the doc's text, and keep the structure."""
    note = await create_note(syncd, title="Lists")
    url = f"{NOTES}/{note['id']}"
    editor = await node.connect(
        "e", url=syncd.ws_url, room=note["id"], token=make_token("owner"), wait_synced=True
    )
    await editor.pm_set(LISTS)
    assert await editor.pm_get() == LISTS  # the client's schema took every list as it is
    await editor.pm_type(" today", at="end")  # a keystroke in the last task item
    typed = await editor.pm_text()
    assert typed.endswith("paid today")
    async with syncd.client(make_token("owner")) as api:

        async def arrived() -> str | None:
            content = str((await api.get(url)).json()["content"])
            return content if text_lines(content) == text_lines(typed) else None

        await eventually(arrived, timeout=10, what="the typed text on the server")
        out = await _exports(api, url)
    expected = text_lines(typed)
    assert markdown_lines(out["markdown"].text) == expected, out["markdown"].text
    assert html_lines(out["html"].text) == ["Lists", *expected], out["html"].text
    assert out["json"].json() == _without_nulls(await editor.pm_get(raw=True))
    html = out["html"].text
    assert html.count("<ul") == 2 and '<ol start="3">' in html, html
    tokens = [t.type for t in markdown_parser().parse(out["markdown"].text)]
    assert tokens.count("bullet_list_open") == 2 and tokens.count("ordered_list_open") == 1


async def test_nothing_unsafe_is_exported_and_versions_export_too(
    syncd: SyncdProcess, node: NodeYjs
) -> None:
    note = await create_note(syncd)
    url = f"{NOTES}/{note['id']}"
    editor = await node.connect(
        "e", url=syncd.ws_url, room=note["id"], token=make_token("owner"), wait_synced=True
    )
    js = {"type": "link", "attrs": {"href": "javascript:alert(1)"}}
    await editor.pm_set(
        {"type": "doc", "content": [{"type": "paragraph", "content": [_t("click", js)]}]}
    )
    # a raw Yjs client adds what no editor schema would: a script and an onerror image
    raw = pycrdt.Doc()
    raw.apply_update(await editor.state_update())
    fragment = raw.get("prosemirror", type=pycrdt.XmlFragment)
    fragment.children.append(pycrdt.XmlElement("script", {}, [pycrdt.XmlText("alert(2)")]))
    image = pycrdt.XmlElement("image", {"src": "/x.png", "onerror": "alert(3)"})
    fragment.children.append(pycrdt.XmlElement("paragraph", {}, [image]))
    await editor.apply_update(raw.get_update(await editor.state_vector()))
    await editor.wait_pm_text(equals="click\nalert(2)\n")
    async with syncd.client(make_token("owner")) as api:
        version = (await api.post(f"{url}/versions", json={})).json()["number"]
        current = await _exports(api, url)
        responses = list(current.values())
        for fmt in ("html", "markdown", "text", "json"):
            response = await api.get(f"{url}/versions/{version}/export", params={"format": fmt})
            assert response.status_code == 200, response.text
            assert response.text == current[fmt].text.replace(
                "<title>A note</title>", f"<title>A note (version {version})</title>"
            ).replace("<h1>A note</h1>", f"<h1>A note (version {version})</h1>")
            responses.append(response)
    for response in responses:
        body = response.text.lower()
        for bad in ("javascript", "alert", "onerror", "<script"):
            assert bad not in body, (bad, response.text)
        assert "click" in body
    assert '<img src="/x.png">' in current["html"].text


async def test_export_needs_view_and_a_known_format(syncd: SyncdProcess) -> None:
    note = await create_note(syncd, content="secret")
    url = f"{NOTES}/{note['id']}/export"
    async with syncd.client(make_token("owner")) as api:
        response = await api.get(url, params={"format": "pdf"})
        assert response.status_code == 422
        assert "format" in response.json()["error"]["message"]
        assert (await api.get(f"{NOTES}/no-such-note/export")).status_code == 404
        assert (await api.get(f"{NOTES}/{note['id']}/versions/9/export")).status_code == 404
        default = await api.get(url)
        assert default.headers["content-type"] == "text/html; charset=utf-8"
    async with syncd.client(make_token("stranger")) as api:
        assert (await api.get(url)).status_code == 403
