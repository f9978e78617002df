"""Browser tests: the web app in Debian's Chromium, driven by Playwright for Python.

Playwright's own browser downloads do not work here, so the tests launch the system
Chromium (`SYNCD_TEST_CHROMIUM`, default /usr/bin/chromium; .ci/run installs it). They
never skip: a missing browser or unbuilt app fails with what to install or run.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, async_playwright

from syncd.api.webapp import built
from tests.support.fixtures import start_syncd  # noqa: F401

CHROMIUM = os.environ.get("SYNCD_TEST_CHROMIUM", "/usr/bin/chromium")


def _check_prerequisites() -> None:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"no Chromium at {CHROMIUM}: apt-get install -y chromium")
    if not built():
        pytest.fail("the web app is not built: bash scripts/build-web.sh")


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    _check_prerequisites()
    async with async_playwright() as playwright:
        # --no-sandbox: CI runs as root, where Chromium's sandbox cannot start
        launched = await playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            yield launched
        finally:
            await launched.close()
