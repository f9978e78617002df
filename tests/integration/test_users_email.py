"""Users registered by the CRM get notification e-mail with an HTML part and a link to the
note, from a real server to a real SMTP server (aiosmtpd); users may turn e-mail off."""

from __future__ import annotations

from collections.abc import Iterator
from email.message import EmailMessage
from typing import Any

import pytest

from tests.integration.collab_helpers import FAST, notify
from tests.support.fixtures import StartServer, create_note
from tests.support.polling import eventually
from tests.support.server import SyncdProcess, free_port, make_token
from tests.support.smtp import SmtpServer

CRM = make_token("crm", roles=("service",))
HOSTILE = '<img src=x onerror="alert(1)">Deal & "Co"'


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer(free_port()).start()
    yield server
    server.stop()


async def _server(start_syncd: StartServer, smtp: SmtpServer) -> SyncdProcess:
    env = {
        **FAST,
        "SMTP_URL": smtp.url,
        "FRONTEND_URL": "https://crm.example.com, https://staging.example.com",
    }
    return await start_syncd(env=env)


async def _register(server: SyncdProcess, user: str, **body: Any) -> dict[str, Any]:
    async with server.client(CRM) as api:
        response = await api.put(f"/api/users/{user}", json=body)
    assert response.status_code == 200, response.text
    return response.json()


async def _delivery(server: SyncdProcess, notification_id: str) -> dict[str, Any]:
    async with server.client(make_token("ops", roles=("admin",))) as api:

        async def done() -> dict | None:
            body = (await api.get(f"/api/jobs/critical.deliver-{notification_id}")).json()
            return body if body.get("status") == "complete" else None

        return (await eventually(done, what="the delivery job"))["result"]


def _parts(message: EmailMessage) -> tuple[str, str]:
    assert message.get_content_type() == "multipart/alternative"
    plain = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert plain is not None and html is not None
    return plain.get_content(), html.get_content()


async def test_a_registered_user_gets_html_mail_with_a_link_and_escaped_title(
    start_syncd: StartServer, smtp: SmtpServer
) -> None:
    server = await _server(start_syncd, smtp)
    user = await _register(server, "ivy", name="Ivy", email="ivy@example.com")
    assert user == {
        "id": "ivy",
        "name": "Ivy",
        "email": "ivy@example.com",
        "roles": [],
        "emailNotifications": True,
    }
    note = await create_note(server, title=HOSTILE, permissions={"canView": ["ivy"]})
    [message] = await smtp.wait_for(1)
    assert message["To"] == "ivy@example.com"
    text, html = _parts(message)
    link = f"https://crm.example.com/#/notes/{note['id']}"
    assert link in text and HOSTILE in text  # plain text is shown as text
    assert f'href="{link}"' in html
    assert "<img" not in html and 'onerror="' not in html
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;Deal &amp; &quot;Co&quot;" in html


async def test_a_user_with_email_off_gets_none(start_syncd: StartServer, smtp: SmtpServer) -> None:
    server = await _server(start_syncd, smtp)
    await _register(server, "jo", email="jo@example.com", emailNotifications=False)
    [quiet] = await notify(server, ["jo"], "Not by mail")
    assert await _delivery(server, quiet["id"]) == {"delivered": True, "emailQueued": False}
    # Jo turns it on herself, and the next one comes by mail
    async with server.client(make_token("jo", name="Jo")) as jo:
        mine = await jo.put("/api/users/me/settings", json={"emailNotifications": True})
        assert mine.status_code == 200, mine.text
        assert mine.json()["emailNotifications"] is True
        assert mine.json()["email"] == "jo@example.com" and mine.json()["name"] == "Jo"
    [loud] = await notify(server, ["jo"], "By mail")
    assert await _delivery(server, loud["id"]) == {"delivered": True, "emailQueued": True}
    [message] = await smtp.wait_for(1)
    assert message["Subject"] == "By mail"
    async with server.client(make_token("jo")) as jo:
        off = await jo.put("/api/users/me/settings", json={"emailNotifications": False})
        assert off.json()["emailNotifications"] is False
        assert (await jo.get("/api/users/me/settings")).json()["emailNotifications"] is False
    [again] = await notify(server, ["jo"], "Quiet again")
    assert await _delivery(server, again["id"]) == {"delivered": True, "emailQueued": False}
    assert len(smtp.inbox.messages) == 1


async def test_only_service_or_admin_registers_users_and_input_is_checked(
    syncd: SyncdProcess,
) -> None:
    async with syncd.client(make_token("mallory")) as api:
        refused = await api.put("/api/users/bob", json={"email": "evil@example.com"})
        assert refused.status_code == 403
    async with syncd.client(make_token("ops", roles=("admin",))) as admin:
        for bad in (
            {"email": "bob@example.com\r\nBcc: all@example.com"},
            {"email": "not-an-address"},
            {"emailNotifications": "no"},
            {"emailNotifications": None},
            {"name": "  "},
            {"role": "admin"},
        ):
            response = await admin.put("/api/users/bob", json=bad)
            assert response.status_code == 422, (bad, response.text)
        first = await admin.put("/api/users/bob", json={"name": "Bob", "email": "b@example.com"})
        assert first.json()["name"] == "Bob"
        cleared = await admin.put("/api/users/bob", json={"email": None})
        assert cleared.json() == {
            "id": "bob",
            "name": "Bob",
            "email": None,
            "roles": [],
            "emailNotifications": True,
        }
    async with syncd.client(make_token("bob")) as bob:
        assert (await bob.put("/api/users/me/settings", json={})).status_code == 422
