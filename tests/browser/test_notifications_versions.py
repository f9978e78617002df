"""The notification center (live shares and @mentions, read state shared by tabs) and the
version history (label, view, diff, restore shown in every open editor)."""

from __future__ import annotations

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


async def test_shares_and_mentions_notify_live_and_reading_clears_every_tab(
    browser: Browser, start_syncd: StartServer
) -> None:
    server = await start_syncd(env=FAST)
    ann = await sign_in(browser, server, "ann", "Ann Lee")
    bob = await sign_in(browser, server, "bob", "Bob Stone")
    second_tab = await bob.new_tab(server.http_url + "/")
    badges = [page.locator(".bell .count") for page in bob.pages]
    for badge in badges:
        await expect(badge).to_be_hidden()

    await create_note(ann.page, "Roadmap")
    await share(ann.page, can_edit="bob")
    for badge in badges:
        await expect(badge).to_have_text("1")

    # @mention with the completion list: "@bo", then Enter picks Bob.
    await editor(ann.page).click()
    await ann.page.keyboard.type("Owner: @bo")
    menu = ann.page.get_by_role("listbox", name="Mention someone")
    await expect(menu.get_by_role("option")).to_contain_text(["bob"])
    await screenshot(ann.page, "editor-mention-completion")
    await ann.page.keyboard.press("Enter")
    await expect(editor(ann.page).locator('[data-mention="bob"]')).to_be_visible()
    await saved(ann.page)
    for badge in badges:
        await expect(badge).to_have_text("2")

    await bob.page.get_by_role("button", name="Notifications, 2 unread").click()
    panel = bob.page.get_by_role("region", name="Notification list")
    await expect(panel).to_contain_text("Ann Lee mentioned you in “Roadmap”")
    await expect(panel).to_contain_text("Ann Lee shared “Roadmap” with you")
    await screenshot(bob.page, "notification-center")
    await panel.get_by_role("button", name="Mark read").first.click()
    for badge in badges:
        await expect(badge).to_have_text("1")
    await panel.get_by_role("button", name="Mark all read").click()
    for badge in badges:
        await expect(badge).to_be_hidden()
    await second_tab.reload()
    await expect(second_tab.get_by_role("button", name="Notifications")).to_be_visible()
    await expect(second_tab.locator(".bell .count")).to_be_hidden()
    assert not ann.errors and not bob.errors, ann.errors + bob.errors


async def test_a_labelled_version_is_restored_in_both_editors_and_survives_a_reload(
    browser: Browser, start_syncd: StartServer
) -> None:
    server = await start_syncd(env=FAST)
    ann = await sign_in(browser, server, "ann", "Ann Lee")
    bob = await sign_in(browser, server, "bob", "Bob Stone")
    note_id = await create_note(ann.page, "Budget")
    await share(ann.page, can_edit="bob")
    await editor(ann.page).click()
    await ann.page.keyboard.type("First draft")
    await saved(ann.page)

    await ann.page.get_by_role("button", name="Versions").click()
    versions = ann.page.get_by_role("region", name="Versions")
    await versions.get_by_label("Version label").fill("Before review")
    await versions.get_by_role("button", name="Save version").click()
    labelled = versions.locator("li", has_text="Before review")
    await expect(labelled).to_be_visible()

    await open_note(bob.page, server, note_id)
    await editor(bob.page).click()
    await bob.page.keyboard.press("Control+End")
    await bob.page.keyboard.type(", then rewritten by Bob")
    await shows_text(ann.page, "First draft, then rewritten by Bob")
    await saved(bob.page)

    await labelled.get_by_role("button", name="View").click()
    await expect(versions.locator(".version-detail")).to_contain_text("First draft")
    await labelled.get_by_role("button", name="Diff").click()
    await expect(versions.locator(".version-detail")).to_contain_text("then rewritten by Bob")
    await screenshot(ann.page, "versions-panel")
    await labelled.get_by_role("button", name="Restore").click()
    for user in (ann, bob):
        await shows_text(user.page, "First draft")

    for user in (ann, bob):
        await user.page.reload()
        await open_note(user.page, server, note_id)
        await shows_text(user.page, "First draft")
    assert not ann.errors and not bob.errors, ann.errors + bob.errors
