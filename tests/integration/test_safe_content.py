"""Safe content against a real server: unsafe REST writes are refused with a JSON pointer;
what a stock Yjs client wrote is served back within the safe schema."""

from __future__ import annotations

import base64
from typing import Any

import pycrdt

from tests.support.fixtures import create_note
from tests.support.polling import eventually
from tests.support.server import SyncdProcess, make_token
from tests.support.yjs_node import NodeYjs

NOTES = "/api/collaborative-notes"


def _para(*inline: dict[str, Any]) -> dict[str, Any]:
    return {"type": "paragraph", "content": list(inline)}


def _js_link() -> dict[str, Any]:
    return _para(
        {
            "type": "text",
            "text": "click",
            "marks": [{"type": "link", "attrs": {"href": "javascript:alert(1)"}}],
        }
    )


async def test_unsafe_rest_writes_are_refused_with_a_pointer(syncd: SyncdProcess) -> None:
    note = await create_note(syncd, content="safe")
    url = f"{NOTES}/{note['id']}"
    cases = [
        (
            {"type": "doc", "content": [_js_link()]},
            "/contentJson/content/0/content/0/marks/0/attrs/href",
        ),
        (
            {"type": "doc", "content": [_para(), {"type": "script", "content": [_para()]}]},
            "/contentJson/content/1",
        ),
        (
            {
                "type": "doc",
                "content": [_para({"type": "image", "attrs": {"src": "x", "onerror": "a"}})],
            },
            "/contentJson/content/0/content/0/attrs/onerror",
        ),
    ]
    async with syncd.client(make_token("owner")) as api:
        for content, pointer in cases:
            for response in (
                await api.put(url, json={"contentJson": content}),
                await api.post(NOTES, json={"title": "t", "contentJson": content}),
            ):
                assert response.status_code == 422, response.text
                error = response.json()["error"]
                assert error["code"] == "invalid"
                assert error["pointer"] == pointer, error
        # a Yjs update that would add a script node is refused too, the note unchanged
        empty = await create_note(syncd)
        doc = pycrdt.Doc()
        fragment = doc.get("prosemirror", type=pycrdt.XmlFragment)
        fragment.children.append(pycrdt.XmlElement("script", {}, [pycrdt.XmlText("alert(1)")]))
        update = base64.b64encode(doc.get_update()).decode()
        response = await api.post(f"{NOTES}/{empty['id']}/yjs-update", json={"update": update})
        assert response.status_code == 422, response.text
        assert response.json()["error"]["pointer"] == "/contentJson/content/0"
        body = (await api.get(f"{NOTES}/{empty['id']}")).json()
        assert body["contentJson"] == {"type": "doc", "content": []}


async def test_what_a_yjs_client_wrote_is_served_sanitised(
    syncd: SyncdProcess, node: NodeYjs
) -> None:
    note = await create_note(syncd)
    url = f"{NOTES}/{note['id']}"
    editor = await node.connect(
        "e", url=syncd.ws_url, room=note["id"], token=make_token("owner"), wait_synced=True
    )
    # a stock y-prosemirror client writes a javascript: link (its schema does not object)
    await editor.pm_set(
        {"type": "doc", "content": [_para({"type": "text", "text": "intro"}), _js_link()]}
    )
    # and a raw Yjs client appends a script element
    raw = pycrdt.Doc()
    raw.apply_update(await editor.state_update())
    fragment = raw.get("prosemirror", type=pycrdt.XmlFragment)
    fragment.children.append(pycrdt.XmlElement("script", {}, [pycrdt.XmlText("alert(1)")]))
    await editor.apply_update(raw.get_update(await editor.state_vector()))
    await editor.wait_pm_text(equals="intro\nclick\nalert(1)")
    async with syncd.client(make_token("owner")) as api:
        body = (await api.get(url)).json()
        assert body["contentJson"] == {
            "type": "doc",
            "content": [
                _para({"type": "text", "text": "intro"}),
                _para({"type": "text", "text": "click"}),
            ],
        }
        assert body["content"] == "intro\nclick"
        response = await api.post(f"{url}/versions", json={"label": "dirty"})
        assert response.status_code == 201, response.text
        version = (await api.get(f"{url}/versions/{response.json()['number']}")).json()
        assert version["contentJson"] == body["contentJson"]
        assert "javascript" not in str(version) and "alert" not in str(version)

        # the plain text stored at the checkpoint when the last peer leaves (what the note
        # list shows) is that of the safe content too
        await editor.disconnect()

        async def listed() -> str:
            notes = (await api.get(NOTES)).json()["notes"]
            return next(n["content"] for n in notes if n["id"] == note["id"])

        async def checkpointed() -> str | None:
            text = await listed()
            return text if text != "" else None

        assert await eventually(checkpointed, timeout=10, what="the checkpoint") == "intro\nclick"


#: event-handler attributes a raw Yjs client can put where no editor schema would
_HANDLERS = ("onerror", "onclick", "onmouseover", "onload")


async def test_no_event_handler_attribute_reaches_any_rest_json(
    syncd: SyncdProcess, node: NodeYjs
) -> None:
    """A raw Yjs client writes `onerror` on an image, `onclick` on a paragraph, and
    `onmouseover` inside a link mark and `onload` beside a mention's id: every REST JSON
    answer that carries content (the note, the list, versions, a diff, both restores)
    keeps the safe attributes and drops those."""
    note = await create_note(syncd, title="Handlers")
    url = f"{NOTES}/{note['id']}"
    editor = await node.connect(
        "e", url=syncd.ws_url, room=note["id"], token=make_token("owner"), wait_synced=True
    )
    raw = pycrdt.Doc()
    raw.apply_update(await editor.state_update())
    fragment = raw.get("prosemirror", type=pycrdt.XmlFragment)
    image = pycrdt.XmlElement("image", {"src": "/x.png", "onerror": "alert(1)"})
    fragment.children.append(pycrdt.XmlElement("paragraph", {}, [image]))
    clicked = pycrdt.XmlElement("paragraph", {"onclick": "alert(2)"}, [pycrdt.XmlText("hi ")])
    fragment.children.append(clicked)
    link = {"link": {"href": "https://example.com/", "onmouseover": "alert(3)"}}
    clicked.children[0].insert(3, "there", link)
    person = pycrdt.XmlElement("mention", {"id": "ann", "label": "Ann", "onload": "alert(4)"})
    fragment.children.append(pycrdt.XmlElement("paragraph", {}, [person]))
    written = str(fragment)
    assert all(handler in written for handler in _HANDLERS), written
    await editor.apply_update(raw.get_update(await editor.state_vector()))
    await editor.wait_pm_text(contains="hi there")
    bodies: list[str] = []
    async with syncd.client(make_token("owner")) as api:
        shown = await api.get(url)
        bodies.append(shown.text)
        content = shown.json()["contentJson"]["content"]
        assert content[0]["content"][0]["attrs"]["src"] == "/x.png"
        link_marks = [m for m in content[1]["content"][1]["marks"] if m["type"] == "link"]
        assert link_marks[0]["attrs"]["href"] == "https://example.com/"
        assert content[2]["content"][0]["attrs"]["id"] == "ann"
        version = await api.post(f"{url}/versions", json={"label": "dirty"})
        assert version.status_code == 201, version.text
        number = version.json()["number"]
        await editor.disconnect()
        for path in (url, NOTES, f"{url}/versions", f"{url}/versions/{number}"):
            response = await api.get(path)
            assert response.status_code == 200, response.text
            bodies.append(response.text)
        diff = await api.get(f"{url}/versions/{number}/diff")
        assert diff.status_code == 200, diff.text
        bodies.append(diff.text)
        again = await api.post(f"{url}/versions/{number}/restore")
        assert again.status_code in (200, 201), again.text
        bodies.append(again.text)
        assert (await api.delete(url)).status_code == 204
        trash = await api.get(NOTES, params={"deleted": "true"})
        restored = await api.post(f"{url}/restore")
        assert restored.status_code == 200, restored.text
        bodies += [version.text, trash.text, restored.text]
    for body in bodies:
        for bad in (*_HANDLERS, "alert"):
            assert bad not in body.lower(), (bad, body)
