"""The safe ProseMirror schema: what is refused on the way in and cleaned on the way out."""

from __future__ import annotations

from typing import Any

import jsonschema
import pycrdt
import pytest

from syncd.api.models.content import COMPONENTS
from syncd.api.validation import _pointer
from syncd.content import (
    UnsafeContent,
    check_safe,
    check_update_safe,
    doc_to_json,
    sanitize,
    write_json,
)
from syncd.content.schema import is_safe_url


def para(*inline: dict) -> dict:
    return {"type": "paragraph", "content": list(inline)}


def text(value: str, *marks: dict) -> dict:
    node: dict = {"type": "text", "text": value}
    if marks:
        node["marks"] = list(marks)
    return node


def link(href: str) -> dict:
    return {"type": "link", "attrs": {"href": href}}


SAFE = {
    "type": "doc",
    "content": [
        {"type": "heading", "attrs": {"level": 2}, "content": [text("Plan")]},
        para(
            text("see "),
            text("the site", link("https://example.com/a?b#c")),
            text(" or "),
            text("mail", link("mailto:ann@example.com")),
            {"type": "mention", "attrs": {"id": "ann", "label": "Ann"}},
            {"type": "hard_break"},
            text("bold", {"type": "strong"}, {"type": "em"}),
        ),
        {"type": "bulletList", "content": [{"type": "listItem", "content": [para(text("a"))]}]},
        {"type": "image", "attrs": {"src": "/files/1.png", "alt": "chart"}},
        {"type": "codeBlock", "attrs": {"language": "python"}, "content": [text("x = 1")]},
    ],
}


@pytest.mark.parametrize(
    "url",
    ["https://x.org", "HTTP://X.ORG", "mailto:a@b.c", "tel:+331", "/rel", "rel/x:y", "#top", "?q"],
)
def test_safe_urls(url: str) -> None:
    assert is_safe_url(url)


@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(1)",
        "JaVaScRiPt:alert(1)",
        " javascript:alert(1)",
        "java\tscript:alert(1)",
        "java\nscript:alert(1)",
        "\x01javascript:alert(1)",
        "data:text/html,<script>alert(1)</script>",
        "vbscript:msgbox",
        "file:///etc/passwd",
        "https://x.org ",
        "",
    ],
)
def test_unsafe_urls(url: str) -> None:
    assert not is_safe_url(url)


def test_safe_content_passes_and_reads_back_unchanged() -> None:
    check_safe(SAFE, "/contentJson")
    assert _schema_error(SAFE) is None
    assert sanitize(SAFE) == SAFE


def test_a_null_attribute_is_an_absent_one() -> None:
    # Tiptap sends its defaults as nulls (`class: null` on links): accepted, read as absent
    doc = {
        "type": "doc",
        "content": [
            para(
                text(
                    "x",
                    {
                        "type": "link",
                        "attrs": {"href": "https://x.org", "class": None, "target": None},
                    },
                )
            )
        ],
    }
    check_safe(doc)
    assert _schema_error(doc) is None
    assert sanitize(doc)["content"][0]["content"][0]["marks"] == [link("https://x.org")]


@pytest.mark.parametrize(
    ("content", "pointer", "reason"),
    [
        (
            [para(text("x", link("javascript:alert(1)")))],
            "/contentJson/content/0/content/0/marks/0/attrs/href",
            "unsafe URL",
        ),
        ([{"type": "script", "content": [text("alert(1)")]}], "/contentJson/content/0", "script"),
        (
            [para(text("a")), para({"type": "iframe"})],
            "/contentJson/content/1/content/0",
            "iframe",
        ),
        (
            [para({"type": "image", "attrs": {"src": "x", "onerror": "alert(1)"}})],
            "/contentJson/content/0/content/0/attrs/onerror",
            "onerror",
        ),
        ([para(text("x", {"type": "blink"}))], "/contentJson/content/0/content/0/marks/0", "blink"),
        ([{"type": "heading", "attrs": {"level": 9}}], "/contentJson/content/0/attrs/level", ""),
        ([para(text("x", {"type": "link"}))], "/contentJson/content/0/content/0/marks/0/attrs", ""),
    ],
)
def test_unsafe_content_is_refused_with_a_pointer(content: list, pointer: str, reason: str) -> None:
    doc = {"type": "doc", "content": content}
    with pytest.raises(UnsafeContent) as caught:
        check_safe(doc, "/contentJson")
    assert caught.value.pointer == pointer
    assert reason in str(caught.value)
    # the document's schema refuses it too, at the same place
    refused = _schema_error(doc)
    assert refused is not None and pointer.startswith(refused)


def test_sanitize_drops_unsafe_nodes_marks_and_attributes_and_keeps_text() -> None:
    dirty = {
        "type": "doc",
        "content": [
            {"type": "script", "content": [text("alert(1)")]},
            para(
                text("click", link("javascript:alert(1)"), {"type": "strong"}),
                text(" here", {"type": "blink"}),
                {"type": "image", "attrs": {"src": "javascript:x", "alt": "a"}},
                {"type": "image", "attrs": {"src": "/ok.png", "onerror": "alert(1)"}},
            ),
            {"type": "heading", "attrs": {"level": "1; x", "textAlign": "center"}},
        ],
    }
    assert sanitize(dirty) == {
        "type": "doc",
        "content": [
            para(
                text("click", {"type": "strong"}),
                {"type": "text", "text": " here"},
                {"type": "image", "attrs": {"src": "/ok.png"}},
            ),
            {"type": "heading", "attrs": {"textAlign": "center"}},
        ],
    }


def test_a_yjs_update_that_adds_unsafe_content_is_refused() -> None:
    doc = pycrdt.Doc()
    write_json(doc, SAFE)
    before = doc_to_json(doc)
    other = pycrdt.Doc()
    other.apply_update(doc.get_update())
    fragment = other.get("prosemirror", type=pycrdt.XmlFragment)
    fragment.children.append(pycrdt.XmlElement("script", {}, [pycrdt.XmlText("alert(1)")]))
    update = other.get_update(doc.get_state())
    with pytest.raises(UnsafeContent) as caught:
        check_update_safe(doc, update, "prosemirror", "/contentJson")
    assert caught.value.pointer == "/contentJson/content/5"
    assert doc_to_json(doc) == before  # the doc is untouched
    # once a Yjs client brought it in, later safe updates are not held against it
    doc.apply_update(update)
    safe = pycrdt.Doc()
    safe.apply_update(doc.get_update())
    heading = safe.get("prosemirror", type=pycrdt.XmlFragment).children[0]
    heading.children[0].insert(0, "New ")
    check_update_safe(doc, safe.get_update(doc.get_state()), "prosemirror", "/contentJson")


def test_an_update_is_judged_by_the_unsafe_content_it_adds() -> None:
    doc = pycrdt.Doc()
    fragment = doc.get("prosemirror", type=pycrdt.XmlFragment)
    fragment.children.append(pycrdt.XmlElement("script", {}, [pycrdt.XmlText("old")]))

    def edit(change: Any) -> bytes:
        other = pycrdt.Doc()
        other.apply_update(doc.get_update())
        change(other.get("prosemirror", type=pycrdt.XmlFragment))
        return other.get_update(doc.get_state())

    def add(tag: str) -> Any:
        return lambda f: f.children.append(pycrdt.XmlElement(tag, {}, []))

    for update in (edit(add("script")), edit(add("iframe"))):
        with pytest.raises(UnsafeContent) as caught:
            check_update_safe(doc, update, "prosemirror")
        assert caught.value.pointer == "/content/1"

    # swapping the old script for an iframe removes one kind and adds another: refused
    def swap(f: pycrdt.XmlFragment) -> None:
        del f.children[0]
        f.children.append(pycrdt.XmlElement("iframe", {}, []))

    with pytest.raises(UnsafeContent, match="iframe"):
        check_update_safe(doc, edit(swap), "prosemirror")
    # removing it is fine
    check_update_safe(doc, edit(lambda f: f.children.__delitem__(0)), "prosemirror")


@pytest.mark.parametrize(
    ("loc", "pointer"),
    [
        ((), ""),
        (("metadata",), "/metadata"),
        (("contentJson", "content", 10, "attrs", "href"), "/contentJson/content/10/attrs/href"),
        (("data", "a/b~c"), "/data/a~1b~0c"),
    ],
)
def test_validation_errors_carry_a_json_pointer(loc: tuple, pointer: str) -> None:
    assert _pointer(loc, "body") == pointer
    assert _pointer(loc, "query") is None  # a pointer is into the body


def _schema_error(doc: dict) -> str | None:
    """The JSON pointer (under /contentJson) where `/openapi.json`'s ProseMirrorDoc
    refuses `doc`, or None when it accepts it."""
    schema = {"$ref": "#/components/schemas/ProseMirrorDoc", "components": {"schemas": COMPONENTS}}
    error = jsonschema.exceptions.best_match(
        jsonschema.Draft202012Validator(schema).iter_errors(doc)
    )
    if error is None:
        return None
    return "/contentJson" + "".join(f"/{part}" for part in error.absolute_path)


def task(checked: Any, *blocks: dict) -> dict:
    return {"type": "taskItem", "attrs": {"checked": checked}, "content": list(blocks)}


TASKS = {
    "type": "doc",
    "content": [
        {
            "type": "taskList",
            "content": [
                task(True, para(text("call ACME"))),
                task(False, para(text("send the quote"))),
            ],
        }
    ],
}


def test_task_lists_as_tiptap_writes_them_are_safe_and_survive_the_doc() -> None:
    check_safe(TASKS, "/contentJson")
    assert _schema_error(TASKS) is None
    assert sanitize(TASKS) == TASKS
    doc = pycrdt.Doc()
    write_json(doc, TASKS)
    assert doc_to_json(doc) == TASKS


@pytest.mark.parametrize("checked", ["true", 1, {"x": 1}])
def test_a_task_items_checked_is_a_boolean_or_nothing(checked: Any) -> None:
    doc = {"type": "doc", "content": [{"type": "taskList", "content": [task(checked)]}]}
    with pytest.raises(UnsafeContent) as info:
        check_safe(doc, "/contentJson")
    assert info.value.pointer == "/contentJson/content/0/content/0/attrs/checked"
    assert _schema_error(doc) is not None
    [item] = sanitize(doc)["content"][0]["content"]
    assert item == {"type": "taskItem", "attrs": {}, "content": []}
    loose = {"type": "doc", "content": [{"type": "taskItem", "attrs": {"onclick": "x"}}]}
    with pytest.raises(UnsafeContent):
        check_safe(loose)
