"""The page hosted on another origin (a CRM's own site) talks to syncd through
`<meta name="syncd-url">`, with `FRONTEND_URL` allowing that origin on syncd."""

from __future__ import annotations

import asyncio
import shutil
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, expect

from syncd.api.webapp import STATIC
from tests.browser.webapp import create_note, editor, saved, sign_in
from tests.integration.collab_helpers import FAST
from tests.support.fixtures import StartServer
from tests.support.server import free_port


@pytest.fixture
async def other_origin(tmp_path: Path) -> AsyncIterator[tuple[str, Path]]:
    """A plain static web server on another port (another origin) serving the built app."""
    site = tmp_path / "site"
    shutil.copytree(STATIC, site)
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "http.server",
        str(port),
        "--bind",
        "127.0.0.1",
        cwd=site,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        yield f"http://127.0.0.1:{port}", site
    finally:
        proc.terminate()
        await proc.wait()


async def test_the_app_works_from_another_origin_allowed_by_frontend_url(
    browser: Browser, start_syncd: StartServer, other_origin: tuple[str, Path]
) -> None:
    origin, site = other_origin
    server = await start_syncd(env={**FAST, "FRONTEND_URL": origin})
    page = (site / "index.html").read_text()
    meta = f'<meta name="syncd-url" content="{server.http_url}">'
    (site / "index.html").write_text(page.replace("<head>", f"<head>\n  {meta}", 1))

    ann = await sign_in(browser, server, "ann", "Ann Lee")  # the link points at FRONTEND_URL
    assert ann.page.url.startswith(origin)
    await create_note(ann.page, "From the CRM")
    await editor(ann.page).click()
    await ann.page.keyboard.type("Hosted elsewhere")
    await saved(ann.page)
    await expect(ann.page.get_by_role("button", name="Notifications")).to_be_visible()
    assert not ann.errors, ann.errors
