"""Two people in two browsers: sign in, create, share, write at once, see each other, a
viewer who follows along but cannot type, and Enter acting where the caret is on screen."""

from __future__ import annotations

import asyncio

from playwright.async_api import Browser, expect

from tests.browser.webapp import (
    create_note,
    editor,
    open_note,
    saved,
    screenshot,
    share,
    shows_text,
    sign_in,
)
from tests.integration.collab_helpers import FAST
from tests.support.fixtures import StartServer


async def test_two_people_write_one_note_at_once_and_see_each_other(
    browser: Browser, start_syncd: StartServer
) -> None:
    server = await start_syncd(env=FAST)
    ann = await sign_in(browser, server, "ann", "Ann Lee")
    bob = await sign_in(browser, server, "bob", "Bob Stone")

    note_id = await create_note(ann.page, "Kickoff")
    await editor(ann.page).click()
    await ann.page.keyboard.type("Agenda")
    await saved(ann.page)

    # Bob's list shows the note as soon as Ann shares it with him (note:updated).
    await expect(bob.page.locator(".note-list")).to_contain_text("No notes")
    await share(ann.page, can_edit="bob")
    await expect(bob.page.locator(f'.note-list li[data-note="{note_id}"]')).to_be_visible()
    await screenshot(bob.page, "notes-list")
    await bob.page.locator(f'.note-list li[data-note="{note_id}"] a').click()
    await expect(editor(bob.page)).to_have_text("Agenda")

    # Each sees the other's avatar and labelled caret.
    await expect(ann.page.locator('.avatars [data-user="bob"]')).to_be_visible()
    await expect(bob.page.locator('.avatars [data-user="ann"]')).to_be_visible()
    await editor(bob.page).click()
    await bob.page.keyboard.press("Control+Home")
    await expect(ann.page.locator('.caret[data-user="bob"]')).to_contain_text("Bob Stone")
    await editor(ann.page).click()
    await ann.page.keyboard.press("Control+End")
    await expect(bob.page.locator('.caret[data-user="ann"]')).to_contain_text("Ann Lee")

    # Both type at once: Ann at the end of a new paragraph, Bob at the very start.
    ann_text, bob_text = "Ann writes the budget part.", "Bob writes the intro. "
    await ann.page.keyboard.press("Enter")
    await asyncio.gather(
        ann.page.keyboard.type(ann_text, delay=15), bob.page.keyboard.type(bob_text, delay=15)
    )
    expected = f"{bob_text}Agenda\n{ann_text}"
    for user in (ann, bob):
        await shows_text(user.page, expected)
        await saved(user.page)
    await screenshot(ann.page, "editor-two-people")

    # What the browsers show is what the server stores.
    await ann.page.reload()
    await open_note(ann.page, server, note_id)
    await shows_text(ann.page, expected)
    assert not ann.page_errors() and not bob.page_errors()
    assert not ann.errors and not bob.errors, ann.errors + bob.errors


async def test_a_viewer_follows_edits_live_but_cannot_type_until_promoted(
    browser: Browser, start_syncd: StartServer
) -> None:
    server = await start_syncd(env=FAST)
    ann = await sign_in(browser, server, "ann", "Ann Lee")
    cy = await sign_in(browser, server, "cy", "Cy Vue")
    note_id = await create_note(ann.page, "Minutes")
    await share(ann.page, can_view="cy")
    await open_note(cy.page, server, note_id)
    await expect(cy.page.locator(".badge-readonly")).to_have_text("Read only")
    await expect(editor(cy.page)).to_have_attribute("contenteditable", "false")
    await expect(cy.page.get_by_role("toolbar")).to_have_count(0)

    await editor(ann.page).click()
    await ann.page.keyboard.type("Decisions: ship it")
    await shows_text(cy.page, "Decisions: ship it")
    await expect(ann.page.locator('.avatars [data-user="cy"]')).to_have_attribute(
        "aria-label", "Cy Vue, viewing"
    )

    await editor(cy.page).click()
    await cy.page.keyboard.type("nope")
    await shows_text(cy.page, "Decisions: ship it")
    await saved(ann.page)
    await shows_text(ann.page, "Decisions: ship it")
    await screenshot(cy.page, "editor-read-only")

    # Renamed and promoted while looking: the title follows, and Cy may type at once.
    title = ann.page.get_by_label("Title")
    await title.fill("Minutes, final")
    await title.press("Enter")
    await expect(cy.page.get_by_label("Title")).to_have_value("Minutes, final")
    await share(ann.page, can_edit="cy")
    await expect(editor(cy.page)).to_have_attribute("contenteditable", "true")
    await editor(cy.page).click()
    await cy.page.keyboard.press("Control+End")
    await cy.page.keyboard.type(" (Cy agrees)")
    await shows_text(ann.page, "Decisions: ship it (Cy agrees)")
    assert not ann.errors and not cy.errors, ann.errors + cy.errors


#: in the page: put the caret at the end of the note, as Control+End or a click does, and
#: press Enter in the same task, before the browser's selectionchange can be delivered
_CARET_TO_END_THEN_ENTER = """() => {
  const editor = document.querySelector('.ProseMirror')
  const walker = document.createTreeWalker(editor, NodeFilter.SHOW_TEXT)
  let last = null
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    if (!node.parentElement.closest('.caret')) last = node
  }
  document.getSelection().collapse(last, last.length)
  const enter = { key: 'Enter', code: 'Enter', keyCode: 13, bubbles: true, cancelable: true }
  editor.dispatchEvent(new KeyboardEvent('keydown', enter))
}"""


async def test_enter_acts_where_the_caret_is_on_screen(
    browser: Browser, start_syncd: StartServer
) -> None:
    # Bob's editor opens on an empty note, its caret at the start, and Ann's line arrives.
    # Bob puts the caret after her line and presses Enter at once. The editor learns of the
    # caret from the browser's selectionchange, which Chromium delivers asynchronously, and
    # under load after the next keydown (Playwright's click + Control+End + Enter did, about
    # 1 in 8): Enter then split before her line, and Bob typed at the start of her paragraph.
    # Here the keydown comes in the same task as the caret move, so always before the event.
    server = await start_syncd(env=FAST)
    ann = await sign_in(browser, server, "ann", "Ann Lee")
    bob = await sign_in(browser, server, "bob", "Bob Stone")
    note_id = await create_note(ann.page, "Quick hands")
    await share(ann.page, can_edit="bob")
    await open_note(bob.page, server, note_id)
    await editor(ann.page).click()
    await ann.page.keyboard.type("Ann:")
    await shows_text(bob.page, "Ann:")
    await bob.page.evaluate(_CARET_TO_END_THEN_ENTER)
    await bob.page.keyboard.type("Bob")
    for user in (ann, bob):
        await shows_text(user.page, "Ann:\nBob")
    await saved(bob.page)
    assert not bob.page_errors(), bob.errors
