"""The trash over REST on one server: who sees it (`?deleted=true`), who restores, who
purges at once (`?permanent=true`), and the notifications of a trashed note."""

from __future__ import annotations

from tests.integration.collab_helpers import FAST, NOTES, notifications_of
from tests.support.fixtures import StartServer, create_note
from tests.support.polling import eventually
from tests.support.server import SyncdProcess, make_token
from tests.support.webhook_receiver import webhook_env, webhook_receiver

ADMIN = make_token("ops", roles=("admin",))
SERVICE = make_token("crm", roles=("service",))


async def _trash(server: SyncdProcess, user: str) -> list[str]:
    async with server.client(make_token(user)) as api:
        response = await api.get(NOTES, params={"deleted": "true"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["pagination"]["total"] == len(body["notes"])
    return [note["id"] for note in body["notes"]]


async def test_the_trash_lists_and_restores_for_those_who_may_delete(
    syncd: SyncdProcess,
) -> None:
    note = await create_note(
        syncd,
        title="Pipeline",
        content="Call the lead",
        permissions={"canView": ["vic"], "canEdit": ["eve"], "canDelete": ["dan"]},
    )
    url = f"{NOTES}/{note['id']}"
    async with syncd.client(make_token("dan")) as dan:
        assert (await dan.delete(url)).status_code == 204
        assert (await dan.delete(url)).status_code == 404  # in the trash already
    assert await _trash(syncd, "owner") == [note["id"]]
    assert await _trash(syncd, "dan") == [note["id"]]
    assert await _trash(syncd, "vic") == [] and await _trash(syncd, "eve") == []
    async with syncd.client(ADMIN) as admin:
        [listed] = (await admin.get(NOTES, params={"deleted": "true"})).json()["notes"]
        assert listed["title"] == "Pipeline" and listed["deletedAt"].endswith("Z")
        assert (await admin.get(NOTES)).json()["notes"] == []
        assert (await admin.get(url)).status_code == 404
        bad = await admin.get(NOTES, params={"deleted": "yes"})
        assert bad.status_code == 422 and "deleted" in bad.json()["error"]["message"]
    for user in ("vic", "eve", "stranger"):
        async with syncd.client(make_token(user)) as api:
            refused = await api.post(f"{url}/restore")
            assert refused.status_code == 403, (user, refused.text)
    async with syncd.client(make_token("dan")) as dan:
        restored = await dan.post(f"{url}/restore")
        assert restored.status_code == 200, restored.text
        assert restored.json()["content"] == "Call the lead"
        assert (await dan.post(f"{url}/restore")).status_code == 409  # live again
        assert (await dan.post(f"{NOTES}/no-such-note/restore")).status_code == 404
    async with syncd.client(make_token("vic")) as vic:
        shown = await vic.get(url)
        assert shown.status_code == 200 and shown.json()["permissions"]["canDelete"] == ["dan"]
    assert await _trash(syncd, "owner") == []


async def test_only_an_admin_purges_at_once(syncd: SyncdProcess) -> None:
    live = await create_note(syncd, title="live", permissions={"canDelete": ["dan"]})
    trashed = await create_note(syncd, title="trashed")
    purge = {"permanent": "true"}
    async with syncd.client(make_token("owner")) as owner:
        assert (await owner.delete(f"{NOTES}/{trashed['id']}")).status_code == 204
        for note in (live, trashed):
            refused = await owner.delete(f"{NOTES}/{note['id']}", params=purge)
            assert refused.status_code == 403
            assert refused.json()["error"]["code"] == "forbidden"
    for token in (make_token("dan"), SERVICE):
        async with syncd.client(token) as api:
            assert (await api.delete(f"{NOTES}/{live['id']}", params=purge)).status_code == 403
    async with syncd.client(ADMIN) as admin:
        for note in (live, trashed):
            assert (await admin.delete(f"{NOTES}/{note['id']}", params=purge)).status_code == 204
            assert (await admin.post(f"{NOTES}/{note['id']}/restore")).status_code == 404
            assert (await admin.delete(f"{NOTES}/{note['id']}", params=purge)).status_code == 404
        bad = await admin.delete(f"{NOTES}/{live['id']}", params={"permanent": "1"})
        assert bad.status_code == 422
    assert await _trash(syncd, "owner") == []


async def test_notifications_of_a_trashed_note_are_hidden_then_purged(
    start_syncd: StartServer,
) -> None:
    server = await start_syncd(env=FAST)
    note = await create_note(server, title="Shared", permissions={"canView": ["bob"]})
    other = await create_note(server, title="Other", permissions={"canView": ["bob"]})
    shares, unread = await notifications_of(server, "bob")
    assert {n["noteId"] for n in shares} == {note["id"], other["id"]} and unread == 2
    [about] = [n for n in shares if n["noteId"] == note["id"]]
    url = f"{NOTES}/{note['id']}"
    async with server.client(make_token("owner")) as owner:
        assert (await owner.delete(url)).status_code == 204
    listed, unread = await notifications_of(server, "bob")
    assert [n["noteId"] for n in listed] == [other["id"]] and unread == 1
    async with server.client(make_token("owner")) as owner:
        assert (await owner.post(f"{url}/restore")).status_code == 200
    listed, unread = await notifications_of(server, "bob")
    assert {n["noteId"] for n in listed} == {note["id"], other["id"]} and unread == 2
    async with server.client(make_token("owner")) as owner:
        assert (await owner.delete(url)).status_code == 204
    async with server.client(ADMIN) as admin:
        assert (await admin.delete(url, params={"permanent": "true"})).status_code == 204
    listed, unread = await notifications_of(server, "bob")
    assert [n["noteId"] for n in listed] == [other["id"]] and unread == 1
    async with server.client(make_token("bob")) as bob:  # gone, not hidden
        assert (await bob.put(f"/api/notifications/{about['id']}/read")).status_code == 404


async def test_webhooks_tell_trash_restore_and_purge_apart(start_syncd: StartServer) -> None:
    events = "note.deleted,note.restored"
    async with webhook_receiver() as receiver:
        server = await start_syncd(env=webhook_env(receiver, SYNCD_WEBHOOK_EVENTS=events))
        note = await create_note(server, title="Hooked")
        url = f"{NOTES}/{note['id']}"
        async with server.client(make_token("owner")) as owner:
            assert (await owner.delete(url)).status_code == 204
            assert (await owner.post(f"{url}/restore")).status_code == 200
        async with server.client(ADMIN) as admin:
            assert (await admin.delete(url, params={"permanent": "true"})).status_code == 204

        async def three() -> list | None:
            got = receiver.delivered
            return got if len(got) == 3 else None

        delivered = await eventually(three, what="three deliveries")
        assert receiver.forged == []
        kinds = [(r.body["type"], r.body["data"].get("permanent")) for r in delivered]
        assert sorted(kinds, key=str) == sorted(
            [("note.deleted", False), ("note.restored", None), ("note.deleted", True)], key=str
        )
        [restored] = receiver.of_type("note.restored")
        assert restored["data"]["by"] == "owner"
        assert restored["data"]["note"]["title"] == "Hooked"
