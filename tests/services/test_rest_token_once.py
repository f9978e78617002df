"""A REST call verifies its token once: the rate-limit middleware verifies it and hands
the principal on in the request state; the route does not verify it again."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from syncd.app import create_app
from syncd.auth import mint_token
from syncd.settings import Settings

SECRET = "t" * 32
NOTES = "/api/collaborative-notes"


async def test_a_put_verifies_the_token_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = Settings.from_env(
        {"DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite'}", "JWT_SECRET": SECRET}
    )
    token = mint_token(SECRET, "ann")
    headers = {"authorization": f"Bearer {token}"}
    app = create_app(settings)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client,
    ):
        notes = app.state.services.notes
        created = await client.post(NOTES, json={"title": "t"}, headers=headers)
        assert created.status_code == 201, created.text
        verified: list[Any] = []
        verify = notes.verify_token

        def counting(value: str | None) -> Any:
            verified.append(value)
            return verify(value)

        monkeypatch.setattr(notes, "verify_token", counting)
        note_id = created.json()["id"]
        response = await client.put(f"{NOTES}/{note_id}", json={"title": "new"}, headers=headers)
        assert response.status_code == 200, response.text
        assert response.json()["title"] == "new"
        assert verified == [token]
