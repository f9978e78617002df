"""Fixtures of the storage contract suite: an open, migrated store per backend."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from syncd.storage import Store, open_store


@pytest.fixture
async def store(store_url: str) -> AsyncIterator[Store]:
    async with open_store(store_url) as opened:
        yield opened
