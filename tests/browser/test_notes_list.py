"""The notes list: pages, search and filters, and deletion that other lists see live."""

from __future__ import annotations

from playwright.async_api import Browser, expect

from tests.browser.webapp import screenshot, sign_in
from tests.integration.collab_helpers import FAST
from tests.support.fixtures import StartServer, create_note


async def test_a_list_pages_searches_filters_and_loses_a_deleted_note_live(
    browser: Browser, start_syncd: StartServer
) -> None:
    server = await start_syncd(env=FAST)
    for n in range(12):
        await create_note(
            server,
            "ann",
            title=f"Call {n:02d}" if n % 3 else f"Offer {n:02d}",
            leadId="lead-7" if n < 4 else None,
            metadata={"tags": ["q3"] if n % 2 else [], "category": "sales", "priority": "high"},
            permissions={"canView": ["bob"]},
        )
    ann = await sign_in(browser, server, "ann", "Ann Lee")
    bob = await sign_in(browser, server, "bob", "Bob Stone")
    items = ann.page.locator(".note-list li[data-note]")
    await expect(items).to_have_count(10)
    await expect(ann.page.get_by_role("navigation", name="Pages")).to_contain_text(
        "Page 1 of 2 (12 notes)"
    )
    await ann.page.get_by_role("button", name="Next").click()
    await expect(items).to_have_count(2)

    await ann.page.get_by_label("Search").fill("Offer")
    await expect(items).to_have_count(4)
    await ann.page.get_by_label("Tag").fill("q3")
    await expect(items).to_have_count(2)  # Offer 03 and Offer 09
    await ann.page.get_by_label("Search").fill("")
    await ann.page.get_by_label("Tag").fill("")
    await ann.page.get_by_label("Lead").fill("lead-7")
    await expect(items).to_have_count(4)
    await screenshot(ann.page, "notes-list-filtered")

    await ann.page.get_by_label("Lead").fill("")
    await expect(items).to_have_count(10)
    offer = 'li:has(a:text-is("Offer 09"))'
    await expect(bob.page.locator(offer)).to_be_visible()
    # Bob may view but not delete: no delete button for him.
    await expect(bob.page.get_by_role("button", name="Delete Offer 09")).to_have_count(0)
    ann.page.once("dialog", lambda dialog: dialog.accept())
    await ann.page.get_by_role("button", name="Delete Offer 09").click()
    await expect(ann.page.locator(offer)).to_have_count(0)
    await expect(bob.page.locator(offer)).to_have_count(0)
    assert not ann.errors and not bob.errors, ann.errors + bob.errors
