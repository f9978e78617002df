"""The web app's routes: `/` and `/assets/` only, built or not; the API keeps its answers."""

from __future__ import annotations

from pathlib import Path

import httpx
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from syncd.api.openapi import build_document
from syncd.api.webapp import CSP, routes


async def _api(request: Request) -> JSONResponse:
    return JSONResponse({"ok": True})


async def _not_found(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    return JSONResponse({"error": {"code": "not_found"}}, status_code=exc.status_code)


def _client(static: Path) -> httpx.AsyncClient:
    app = Starlette(
        routes=[Route("/api/thing", _api), *routes(static)],
        exception_handlers={HTTPException: _not_found},
    )
    return httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://syncd")


def _build(static: Path) -> None:
    (static / "assets").mkdir(parents=True)
    (static / "assets" / "app.js").write_text("console.log('app')")
    (static / "index.html").write_text("<!doctype html><title>syncd notes</title>")


async def test_the_built_app_is_served_at_the_root_with_its_own_policy(tmp_path: Path) -> None:
    _build(tmp_path)
    client = _client(tmp_path)
    page = await client.get("/")
    assert page.status_code == 200 and "syncd notes" in page.text
    assert page.headers["content-security-policy"] == CSP
    script = await client.get("/assets/app.js")
    assert script.status_code == 200 and "javascript" in script.headers["content-type"]
    assert (await client.get("/assets/nope.js")).json() == {"error": {"code": "not_found"}}
    assert (await client.get("/api/thing")).json() == {"ok": True}
    assert (await client.get("/notes/abc")).status_code == 404  # the app routes by fragment


async def test_without_built_assets_the_root_says_how_to_build_them(tmp_path: Path) -> None:
    client = _client(tmp_path / "missing")
    page = await client.get("/")
    assert page.status_code == 200 and "bash scripts/build-web.sh" in page.text
    assert (await client.get("/assets/app.js")).json() == {"error": {"code": "not_found"}}
    assert (await client.get("/api/thing")).json() == {"ok": True}


def test_the_root_is_declared_in_the_generated_openapi_document(tmp_path: Path) -> None:
    document = build_document(routes(tmp_path), version="test")
    assert list(document["paths"]) == ["/"]  # the assets are not API operations
    index = document["paths"]["/"]["get"]
    assert index["security"] == []
    assert index["responses"]["200"]["content"] == {"text/html": {"schema": {"type": "string"}}}
