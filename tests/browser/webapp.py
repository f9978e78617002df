"""What the browser tests do as a user: sign in with a link, open notes, type, and wait
on what the page shows (every wait bounded by Playwright's timeouts)."""

from __future__ import annotations

import asyncio
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from playwright.async_api import Browser, BrowserContext, Page, expect

from tests.support.server import SyncdProcess

#: milliseconds a user waits for what should appear
WAIT_MS = 15_000
expect.set_options(timeout=WAIT_MS)
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
#: `SYNCD_SCREENSHOTS=1` writes the README's screenshots; otherwise they are taken (the page
#: must render) but not written, so a test run leaves the checkout as it was
WRITE_SCREENSHOTS = os.environ.get("SYNCD_SCREENSHOTS", "") not in ("", "0")


async def sign_in_link(server: SyncdProcess, user: str, name: str) -> str:
    """`syncd token USER --link` with the server's own configuration."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "syncd",
        "token",
        user,
        "--name",
        name,
        "--link",
        env=server.env(),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0
    link = out.decode().strip().splitlines()[-1]
    home = server.env().get("FRONTEND_URL") or f"{server.http_url}/"
    assert link.startswith(f"{home.rstrip('/')}/#signin="), link
    return link


@dataclass
class User:
    """One person: a browser context of their own (storage, tabs)."""

    id: str
    name: str
    context: BrowserContext
    pages: list[Page] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def page(self) -> Page:
        return self.pages[0]

    async def new_tab(self, url: str | None = None) -> Page:
        page = await self.context.new_page()
        page.set_default_timeout(WAIT_MS)
        page.on("pageerror", lambda exc: self.errors.append(f"pageerror: {exc}"))
        page.on(
            "console",
            lambda msg: self.errors.append(f"console: {msg.text}") if msg.type == "error" else None,
        )
        self.pages.append(page)
        if url:
            await page.goto(url)
        return page

    def page_errors(self) -> list[str]:
        return [e for e in self.errors if e.startswith("pageerror")]


async def sign_in(browser: Browser, server: SyncdProcess, user_id: str, name: str) -> User:
    user = User(user_id, name, await browser.new_context(viewport={"width": 1280, "height": 760}))
    page = await user.new_tab(await sign_in_link(server, user_id, name))
    await expect(page.locator("header.top .me")).to_contain_text(name)
    return user


async def create_note(page: Page, title: str) -> str:
    await page.get_by_label("New note").fill(title)
    await page.get_by_role("button", name="Create").click()
    await expect(page.locator(".note-screen")).to_be_visible()
    note_id = await page.locator(".note-screen").get_attribute("data-note")
    assert note_id
    return note_id


def editor(page: Page):  # type: ignore[no-untyped-def]
    return page.locator(".ProseMirror")


#: the editor's text without the remote carets' name labels, paragraphs joined by "\n"
_TEXT = """() => [...document.querySelectorAll('.ProseMirror > *')].map(block => {
  const copy = block.cloneNode(true)
  copy.querySelectorAll('.caret').forEach(c => c.remove())
  return copy.textContent
}).join('\\n')"""


async def text_of(page: Page) -> str:
    return await page.evaluate(_TEXT)


async def shows_text(page: Page, want: str) -> None:
    """Wait until the editor holds exactly `want` (paragraphs separated by newlines)."""
    try:
        await page.wait_for_function(f"want => ({_TEXT})() === want", arg=want)
    except Exception:
        raise AssertionError(f"editor shows {await text_of(page)!r}, want {want!r}") from None


async def open_note(page: Page, server: SyncdProcess, note_id: str) -> None:
    await page.goto(f"{server.http_url}/#/notes/{note_id}")
    await expect(page.locator(f'.note-screen[data-note="{note_id}"]')).to_be_visible()
    await expect(page.locator(".status")).to_have_attribute("data-state", "saved")


async def share(page: Page, *, can_view: str = "", can_edit: str = "") -> None:
    await page.get_by_role("button", name="Share").click()
    dialog = page.get_by_role("dialog")
    await dialog.get_by_label("Can view").fill(can_view)
    await dialog.get_by_label("Can edit").fill(can_edit)
    await dialog.get_by_role("button", name="Save").click()
    await expect(dialog).to_be_hidden()


async def saved(page: Page) -> None:
    """The page says its edits are stored (see web/src/status.js: a state-vector round
    trip after the last edit)."""
    await expect(page.locator(".status")).to_have_attribute("data-state", "saved")


async def screenshot(page: Page, name: str) -> None:
    """Take the screenshot `docs/screenshots/NAME.png`; written only when asked for."""
    if not WRITE_SCREENSHOTS:
        assert (await page.screenshot())[:8] == b"\x89PNG\r\n\x1a\n"
        return
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SCREENSHOTS / f"{name}.png"))
