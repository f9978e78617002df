"""Long sessions: an access token that expires while the user types, and a server that
restarts (SIGTERM, then start) while two people type. Nothing typed is lost."""

from __future__ import annotations

import asyncio

from playwright.async_api import Browser, expect

from tests.browser.webapp import (
    _TEXT,
    create_note,
    editor,
    saved,
    screenshot,
    share,
    shows_text,
    sign_in,
    text_of,
)
from tests.integration.collab_helpers import FAST, NOTES
from tests.support.fixtures import StartServer
from tests.support.server import make_token

TYPED = "The quick brown fox jumps over the lazy dog while the token expires. " * 2


async def test_a_token_that_expires_while_typing_is_refreshed_and_no_keystroke_is_lost(
    browser: Browser, start_syncd: StartServer
) -> None:
    # 4 s tokens: refreshed before they end (at 80%), and the server closes the socket
    # with 4401 when the token it was opened with ends; typing spans several of both.
    server = await start_syncd(env={**FAST, "SYNCD_ACCESS_TOKEN_TTL": "4"})
    ann = await sign_in(browser, server, "ann", "Ann Lee")
    sockets: list[str] = []
    ann.page.on("websocket", lambda ws: sockets.append(ws.url) if "/ws/notes/" in ws.url else None)
    note_id = await create_note(ann.page, "Long session")
    # a second tab of the same session: both refresh, yet the refresh token is spent once
    # (a second use would revoke the session and sign both tabs out)
    other_tab = await ann.new_tab(ann.page.url)
    await saved(other_tab)
    await editor(ann.page).click()
    first = await ann.page.evaluate("JSON.parse(localStorage.getItem('syncd.session')).accessToken")
    await ann.page.keyboard.type(TYPED, delay=70)  # about 10 s
    now = await ann.page.evaluate("JSON.parse(localStorage.getItem('syncd.session')).accessToken")
    assert now != first
    # the server closed the note's socket (4401) as tokens ended; the page came back each time
    assert len(sockets) >= 3, sockets
    for tab in ann.pages:
        await shows_text(tab, TYPED)
        await saved(tab)
    async with server.client(make_token("ann")) as api:
        stored = (await api.get(f"{NOTES}/{note_id}")).json()["content"]
    assert stored.strip() == TYPED.strip()
    assert not ann.page_errors(), ann.errors


async def test_a_server_restart_while_two_people_type_loses_nothing(
    browser: Browser, start_syncd: StartServer
) -> None:
    server = await start_syncd(env=FAST)
    ann = await sign_in(browser, server, "ann", "Ann Lee")
    bob = await sign_in(browser, server, "bob", "Bob Stone")
    note_id = await create_note(ann.page, "Restart")
    await share(ann.page, can_edit="bob")
    await bob.page.goto(f"{server.http_url}/#/notes/{note_id}")
    await saved(bob.page)
    await editor(ann.page).click()
    await ann.page.keyboard.type("Ann:")
    await saved(ann.page)
    # Bob starts his own line after hers, once it is on his screen. Enter acts where
    # Control+End put the caret even if it comes before the browser's selectionchange
    # (web/src/selection.js; before, it split at the start of her line now and then, and
    # Bob's words went before hers in her paragraph, under an empty one)
    await shows_text(bob.page, "Ann:")
    await editor(bob.page).click()
    await bob.page.keyboard.press("Control+End")
    await bob.page.keyboard.press("Enter")

    async def restart() -> None:
        # stop once both are typing: when each one's first words show on the other's screen
        await bob.page.wait_for_function(
            "() => document.querySelector('.ProseMirror').textContent.includes('one two')"
        )
        await ann.page.wait_for_function(
            "() => document.querySelector('.ProseMirror').textContent.includes('alpha beta')"
        )
        await server.stop()
        # what they type meanwhile is counted, and not called saved
        status = ann.page.locator('.status[data-state="offline"]')
        await expect(status).to_contain_text("unsynced edit")
        await expect(status).not_to_have_attribute("data-unsynced", "0")
        await screenshot(ann.page, "editor-offline")
        await server.start()

    ann_text = " one two three four five six seven eight nine ten"
    bob_text = "Bob: alpha beta gamma delta epsilon zeta eta theta"
    await asyncio.gather(
        ann.page.keyboard.type(ann_text, delay=60),
        bob.page.keyboard.type(bob_text, delay=60),
        restart(),
    )
    # Nothing typed is lost, both screens agree, and each line is in its own paragraph:
    # Ann's first, Bob's after it
    expected = f"Ann:{ann_text}\n{bob_text}"
    for user in (ann, bob):
        await user.page.wait_for_function(
            f"want => want.every(w => ({_TEXT})().includes(w))",
            arg=[ann_text.strip(), bob_text],
        )
        await saved(user.page)
    await shows_text(bob.page, await text_of(ann.page))  # the same on both screens
    for user in (ann, bob):
        await shows_text(user.page, expected)
    async with server.client(make_token("ann")) as api:
        stored = (await api.get(f"{NOTES}/{note_id}")).json()["content"]
    assert ann_text.strip() in stored and bob_text in stored
    assert stored.strip() == expected, stored
    assert not ann.page_errors() and not bob.page_errors(), ann.errors + bob.errors
