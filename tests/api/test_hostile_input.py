"""Hostile input on the REST API, against real servers (embedded, and scaled on Postgres,
which refuses NUL bytes and integers past its column types): every request gets a 4xx with
the `{"error": {"code", "message"}}` envelope, the server logs no traceback, and it goes
on serving. Black-box: HTTP in, status and envelope out. Where a rule holds for every
route, the cases are drawn from `/openapi.json`, so a new route is covered by the same
bar without a new test.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from tests.support.fixtures import StartServer, create_note
from tests.support.server import SyncdProcess, make_token

NOTES = "/api/collaborative-notes"
SERVICE = make_token("crm", roles=["service"])
# a note id and a version number that need not exist: the checks come first
PATH_VALUES = {
    "note_id": "n1",
    "number": "1",
    "notification_id": "x1",
    "job_id": "default.j1",
    "endpoint_id": "we_1",
    "delivery_id": "1",
    "user_id": "u1",
}


@pytest.fixture(params=["embedded", "scaled"])
def start_server(request: pytest.FixtureRequest) -> StartServer:
    return request.getfixturevalue("start_syncd" if request.param == "embedded" else "start_scaled")


@pytest.fixture
async def server(start_server: StartServer) -> AsyncIterator[SyncdProcess]:
    started = await start_server(env={"SYNCD_LOG_LEVEL": "warning"})
    yield started
    # after every case: nothing reached the database it would refuse, nothing crashed
    async with started.client() as api:
        assert (await api.get("/healthz")).status_code == 200
    log = started.log_tail(5000)
    assert "Traceback" not in log, log[-4000:]
    assert "database refused a value" not in log, log[-4000:]


def refused(response: httpx.Response, status: int, message: str = "") -> None:
    """`response` has `status`, the error envelope, and a message that says `message`."""
    assert response.status_code == status, (response.request.url, response.text)
    error = response.json()["error"]
    # `pointer`: where in the body, when the refusal is about one value of it
    assert {"code", "message"} <= set(error) <= {"code", "message", "pointer"}, response.text
    assert error["code"], response.text
    assert message in error["message"], (message, error["message"])


async def document(api: httpx.AsyncClient) -> Iterator[tuple[str, str, dict[str, Any]]]:
    paths = (await api.get("/openapi.json")).json()["paths"]
    return (
        (method.upper(), path, op)
        for path, methods in paths.items()
        for method, op in methods.items()
        if path.startswith("/api/")
    )


def fill(path: str, **values: str) -> str:
    return re.sub(r"{(\w+)}", lambda m: values.get(m.group(1), PATH_VALUES[m.group(1)]), path)


async def test_a_nul_byte_in_any_body_field_is_refused(server: SyncdProcess) -> None:
    owner = make_token("owner")
    note = await create_note(server)
    nul = "a\x00b"
    creates = [
        ({"title": nul}, "title"),
        ({"title": "t", "content": nul}, "content"),
        ({"title": "t", "leadId": nul}, "leadId"),
        ({"title": "t", "permissions": {"canView": ["ann", nul]}}, "permissions.canView[1]"),
        ({"title": "t", "metadata": {"tags": [nul]}}, "metadata.tags[0]"),
        ({"title": "t", "metadata": {"category": nul}}, "metadata.category"),
        ({"title": "t", "metadata": {"priority": nul}}, "metadata.priority"),
        ({"title": "t", "metadata": {"dueDate": "2030-01-01\x00"}}, "metadata.dueDate"),
        ({"title": "t", "unknown": {"deep": [nul]}}, "unknown.deep[0]"),
        ({"title": "t", nul: 1}, "a key in body"),
        (
            {
                "title": "t",
                "contentJson": {
                    "type": "doc",
                    "content": [{"type": "paragraph", "content": [{"type": "text", "text": nul}]}],
                },
            },
            "contentJson.content[0].content[0].text",
        ),
    ]
    async with server.client(owner) as api:
        for body, field in creates:
            refused(await api.post(NOTES, json=body), 422, f"{field} contains a NUL byte")
            update = {k: v for k, v in body.items() if k != "title"} or body
            refused(await api.put(f"{NOTES}/{note['id']}", json=update), 422, "NUL byte")
        refused(await api.post(f"{NOTES}/sessions/start", json={"noteId": nul}), 422)
        refused(await api.post(f"{NOTES}/{note['id']}/versions", json={"label": nul}), 422)
        refused(await api.post("/api/auth/refresh", json={"refreshToken": nul}), 422)
    async with server.client(SERVICE) as api:
        for body in (
            {"userId": "ann", "title": nul},
            {"userIds": ["ann", nul], "title": "t"},
            {"userId": "ann", "title": "t", "data": {"k": {"v": nul}}},
        ):
            refused(await api.post("/api/notifications", json=body), 422, "NUL byte")
        refused(await api.post("/api/auth/tokens", json={"userId": nul}), 422, "NUL byte")
        # what was refused left no trace
        assert (await api.get(NOTES)).json()["pagination"]["total"] == 1


async def test_a_nul_byte_in_any_query_or_path_parameter_is_refused(
    server: SyncdProcess,
) -> None:
    cases = 0
    async with server.client(SERVICE) as api:
        for method, path, op in await document(api):
            for parameter in op.get("parameters", []):
                name = parameter["name"]
                if parameter["in"] == "query":
                    url = fill(path)
                    response = await api.request(method, url, params={name: "a\x00b"})
                    refused(response, 422, f"query parameter {name} contains a NUL byte")
                else:
                    url = fill(path, **{name: "a%00b"})
                    refused(await api.request(method, url), 422, "the path contains a NUL byte")
                cases += 1
            # an undeclared parameter is held to the same rule
            refused(await api.request(method, fill(path), params={"x": "\x00"}), 422)
    assert cases >= 25  # the parameters of the document were walked


async def test_url_text_that_is_not_utf8_is_refused(server: SyncdProcess) -> None:
    async with server.client(SERVICE) as api:
        refused(await api.get(f"{NOTES}?q=%FF%FE"), 400, "query parameter q is not UTF-8")
        refused(await api.get(f"{NOTES}?%C3=1"), 400, "not UTF-8")
        refused(await api.get(f"{NOTES}/%ED%A0%80"), 400, "the path is not UTF-8")
        # a '/' hidden in a segment would be routed as a separator
        refused(await api.get(f"{NOTES}/n1%2Fsessions"), 422, "encoded '/'")
        refused(await api.get(f"{NOTES}?q=" + "x" * 9000), 422, "query string is longer")


async def test_deep_nesting_is_refused_on_every_body(server: SyncdProcess) -> None:
    deep_list = "[" * 5000 + "]" * 5000
    deep_object = '{"a":' * 5000 + "1" + "}" * 5000
    just_past = "[" * 128 + "]" * 128  # the body object is level 1
    bodies = 0
    async with server.client(SERVICE) as api:
        for method, path, op in await document(api):
            if "requestBody" not in op:
                continue
            url = fill(path)
            for nested in (deep_list, deep_object, just_past):
                response = await api.request(
                    method,
                    url,
                    content=f'{{"title": {nested}}}'.encode(),
                    headers={"content-type": "application/json"},
                )
                refused(response, 422, "nested deeper than 128 levels")
            bodies += 1
    assert bodies >= 10


async def test_a_document_as_deep_as_editors_make_them_is_accepted(
    server: SyncdProcess,
) -> None:
    # a list nested 12 levels deep holding a table: deeper than editors let users indent
    node: dict[str, Any] = {
        "type": "table",
        "content": [
            {
                "type": "tableRow",
                "content": [
                    {
                        "type": "tableCell",
                        "content": [
                            {"type": "paragraph", "content": [{"type": "text", "text": "x"}]}
                        ],
                    }
                ],
            }
        ],
    }
    for _ in range(12):
        node = {"type": "bulletList", "content": [{"type": "listItem", "content": [node]}]}
    doc = {"type": "doc", "content": [node]}
    async with server.client(make_token("owner")) as api:
        response = await api.post(NOTES, json={"title": "deep", "contentJson": doc})
    assert response.status_code == 201, response.text
    assert response.json()["contentJson"] == doc


async def test_numbers_out_of_bounds_are_refused(server: SyncdProcess) -> None:
    note = await create_note(server)
    huge = str(10**40)
    async with server.client(SERVICE) as api:
        integers = 0
        for method, path, op in await document(api):
            for parameter in op.get("parameters", []):
                if parameter["schema"].get("type") != "integer":
                    continue
                name = parameter["name"]
                for bad in (huge, "-1", "0", "1.5", "1e3", "²", "", " 1", "0x10"):
                    if parameter["in"] == "query":
                        response = await api.request(method, fill(path), params={name: bad})
                        refused(response, 422, name)
                    elif re.fullmatch(r"[0-9]+", bad):  # other text does not match the route
                        refused(await api.request(method, fill(path, **{name: bad})), 422)
                integers += 1
        assert integers >= 6
        # the limits of the routes themselves
        refused(await api.get(NOTES, params={"limit": "101"}), 422, "limit must be at most 100")
        refused(await api.get(NOTES, params=[("page", "1"), ("page", "2")]), 422, "more than once")
        diff = f"{NOTES}/{note['id']}/versions/1/diff"
        refused(await api.get(diff, params={"against": str(2**31)}), 422, "against")
        # numbers in bodies: JavaScript's safe integers, finite, and never 5,000 digits
        for raw, status in (
            (b'{"userId": "ann", "title": "t", "data": {"n": 100000000000000000000}}', 422),
            (b'{"userId": "ann", "title": "t", "data": {"n": 1e400}}', 422),
            (b'{"userId": "ann", "title": "t", "data": {"n": -9007199254740992}}', 422),
            (b'{"userId": "ann", "title": "t", "data": {"n": NaN}}', 400),
            (b'{"userId": "ann", "title": "t", "data": {"n": -Infinity}}', 400),
            (b'{"userId": "ann", "title": "t", "data": {"n": ' + b"9" * 5000 + b"}}", 422),
        ):
            response = await api.post(
                "/api/notifications", content=raw, headers={"content-type": "application/json"}
            )
            refused(response, status)
        pm = {
            "type": "doc",
            "content": [{"type": "heading", "attrs": {"level": 10**30}}],
        }
        refused(await api.post(NOTES, json={"title": "t", "contentJson": pm}), 422, "beyond")
        # within bounds, the same places take them
        response = await api.post(
            "/api/notifications",
            json={"userId": "ann", "title": "t", "data": {"n": 2**53 - 1, "f": 1.5e15}},
        )
        assert response.status_code == 201, response.text


async def test_bodies_that_are_not_json_objects_are_refused(server: SyncdProcess) -> None:
    note = await create_note(server)
    yjs = f"{NOTES}/{note['id']}/yjs-update"
    versions = f"{NOTES}/{note['id']}/versions"
    json_type = {"content-type": "application/json"}
    async with server.client(make_token("owner")) as api:
        for raw, status, message in (
            (b'{"title": "caf\xe9"}', 400, "not UTF-8"),
            (b"\xef\xbb\xbf" + b'{"title": "t"}', 400, "not valid JSON"),  # a BOM
            (b'{"title": "t"', 400, "not valid JSON"),
            (b'{"title": "a", "title": "b"}', 422, "'title' appears more than once"),
            (b'{"title": "\\ud800"}', 422, "title contains an unpaired surrogate"),
            (b'["title"]', 422, "must be a JSON object"),
            (b"null", 422, "must be a JSON object"),
            (b"", 422, "body is required"),
        ):
            refused(await api.post(NOTES, content=raw, headers=json_type), status, message)
        for content_type in (
            "text/plain",
            "application/x-www-form-urlencoded",
            "application/json; charset=latin-1",
        ):
            response = await api.post(
                NOTES, content=b'{"title": "t"}', headers={"content-type": content_type}
            )
            refused(response, 415, "application/json")
        # JSON without a declared type is still read (scripts, curl -d)
        assert (await api.post(NOTES, content=b'{"title": "t"}')).status_code == 201
        # an optional body may be left out, but not be something else than an object
        assert (await api.post(versions)).status_code == 201
        refused(await api.post(versions, content=b"null", headers=json_type), 422)
        refused(await api.post(versions, content=b"[]", headers=json_type), 422)
        # types and shapes of fields
        refused(await api.post(NOTES, json={"title": 5}), 422, "title must be a string")
        refused(await api.post(NOTES, json={"title": "   "}), 422, "title must not be blank")
        refused(await api.post(NOTES, json={"title": "t" * 501}), 422, "longer than 500")
        refused(await api.post(NOTES, json={"title": "t", "id": "a/b"}), 422, "id")
        both = {"title": "t", "content": "x", "contentJson": {"type": "doc"}}
        refused(await api.post(NOTES, json=both), 422, "either content or contentJson")
        refused(await api.post(NOTES, json={"title": "t", "x" * 300: 1}), 422, "key longer")
        for update in ("not base64!", "QUJD=", "QQ", "====", "AAAA" + "\x00"):
            refused(await api.post(yjs, json={"update": update}), 422, "update")
        refused(await api.post(yjs, json={"update": "/////w=="}), 422)  # base64, not Yjs
    async with server.client(SERVICE) as api:
        refused(await api.post("/api/notifications", json={"title": "t"}), 422, "userIds")
        empty = {"title": "t", "userIds": []}
        refused(await api.post("/api/notifications", json=empty), 422, "at least 1")
