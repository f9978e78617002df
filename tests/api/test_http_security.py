"""Security basics on a real server: headers, CORS for FRONTEND_URL only, body limit, no
token in the logs, and a `/docs` page that loads nothing from elsewhere."""

from __future__ import annotations

import base64
import hashlib
import re

from tests.support.fixtures import StartServer, create_note
from tests.support.raw_ws import open_raw, recv_message
from tests.support.server import SyncdProcess, make_token

NOTES = "/api/collaborative-notes"


async def test_every_response_carries_the_security_headers(syncd: SyncdProcess) -> None:
    async with syncd.client(make_token("ann")) as api:
        responses = [
            await api.get(NOTES),
            await api.get(f"{NOTES}/missing"),
            await api.get("/healthz"),
            await api.get("/nowhere"),
        ]
    async with syncd.client() as anonymous:
        responses.append(await anonymous.get(NOTES))
    assert [r.status_code for r in responses] == [200, 404, 200, 404, 401]
    for response in responses:
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["referrer-policy"] == "no-referrer"
        assert "default-src 'none'" in response.headers["content-security-policy"]
    assert responses[0].headers["cache-control"] == "no-store"


async def test_cors_allows_only_the_frontend_origin(start_syncd: StartServer) -> None:
    server = await start_syncd(env={"FRONTEND_URL": "https://crm.example"})
    preflight = {
        "access-control-request-method": "PUT",
        "access-control-request-headers": "authorization, content-type",
    }
    async with server.client(make_token("ann")) as api:
        allowed = await api.options(NOTES, headers={"origin": "https://crm.example", **preflight})
        denied = await api.options(NOTES, headers={"origin": "https://evil.example", **preflight})
        simple = await api.get(NOTES, headers={"origin": "https://crm.example"})
        foreign = await api.get(NOTES, headers={"origin": "https://evil.example"})
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == "https://crm.example"
    assert denied.status_code == 400
    assert "access-control-allow-origin" not in denied.headers
    assert simple.headers["access-control-allow-origin"] == "https://crm.example"
    assert "access-control-allow-origin" not in foreign.headers


async def test_an_oversized_body_is_refused_with_413(start_syncd: StartServer) -> None:
    server = await start_syncd(env={"SYNCD_MAX_BODY_BYTES": "2048"})
    async with server.client(make_token("ann")) as api:
        response = await api.post(NOTES, json={"title": "x", "content": "y" * 4096})
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"


async def test_tokens_never_reach_the_log(syncd: SyncdProcess) -> None:
    note = await create_note(syncd)
    token = make_token("owner")
    ws = await open_raw(f"{syncd.ws_url}/{note['id']}", token=token)
    await recv_message(ws)
    await ws.close()
    async with syncd.client() as api:
        await api.post("/api/auth/refresh", json={"refreshToken": token})
    await syncd.stop()
    log = syncd.log_path.read_text()
    assert "WebSocket" in log and "token=[redacted]" in log  # the handshake line is there
    signature = token.rsplit(".", 1)[-1]
    assert token not in log and signature not in log


async def test_the_docs_page_is_served_whole_from_the_server(syncd: SyncdProcess) -> None:
    async with syncd.client() as browser:
        page = await browser.get("/docs")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        # every script and style comes from this server (the pinned package), none from a CDN
        sources = re.findall(r'(?:src|href)="([^"]+)"', page.text)
        assert sources and all(source.startswith("/docs/assets/") for source in sources)
        assert "//" not in "".join(sources)
        for source in sources:
            asset = await browser.get(source)
            assert asset.status_code == 200 and len(asset.content) > 100, source
        bundle = await browser.get("/docs/assets/swagger-ui-bundle.js")
        assert "SwaggerUIBundle" in bundle.text
        assert (await browser.get("/docs/assets/nothing.js")).status_code == 404
    # the page's own policy lets in its inline start-up script (by hash) and nothing foreign
    policy = page.headers["content-security-policy"]
    inline = re.search(r"<script>(.*?)</script>", page.text, re.DOTALL)
    assert inline is not None and '"/openapi.json"' in inline.group(1)
    digest = base64.b64encode(hashlib.sha256(inline.group(1).encode()).digest()).decode()
    assert f"script-src 'self' 'sha256-{digest}'" in policy
    assert "default-src 'none'" in policy and "http" not in policy
