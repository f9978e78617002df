"""Every webhook event type reaches one real HTTP receiver, each signature checked by the
`standardwebhooks` verifier, each body the message the OpenAPI `webhooks` section
documents for its type: a scripted session with a stock y-prosemirror client, a mention,
a version, a rights change, the trash and back."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from syncd.api.models.events import WEBHOOK_MESSAGES
from syncd.services.events.payloads import WEBHOOK_EVENT_TYPES, EventMessage
from tests.integration.collab_helpers import FAST, mention
from tests.support.fixtures import StartServer, create_note, paragraphs
from tests.support.polling import eventually
from tests.support.server import make_token
from tests.support.webhook_receiver import Receiver, webhook_env, webhook_receiver
from tests.support.yjs_node import NodeYjs

NOTES = "/api/collaborative-notes"


def _types(receiver: Receiver) -> set[str]:
    return {r.body["type"] for r in receiver.delivered}


async def test_every_event_type_arrives_signed(start_syncd: StartServer, node: NodeYjs) -> None:
    async with webhook_receiver() as receiver:
        server = await start_syncd(env=webhook_env(receiver, **FAST))
        note = await create_note(server, title="Deal", permissions={"canEdit": ["bob", "dave"]})
        url = f"{NOTES}/{note['id']}"
        token = make_token("owner")
        alice = await node.connect(
            "alice", url=server.ws_url, room=note["id"], token=token, wait_synced=True
        )
        await alice.pm_set(paragraphs("hello"))

        async def typed() -> list[dict[str, Any]]:
            return [u for u in receiver.of_type("note.updated") if u["data"]["text"] == "hello"]

        (updated, *_) = await eventually(typed, what="note.updated with the typed text")
        async with server.client(token) as api:
            put = await api.put(url, json={"contentJson": mention("dave")})
            assert put.status_code == 200, put.text

            async def mentioned() -> bool:
                return "mention.created" in _types(receiver)

            await eventually(mentioned, what="mention.created")
            version = await api.post(f"{url}/versions", json={"label": "v1"})
            assert version.status_code == 201, version.text
            await alice.disconnect()
            rights = {"canEdit": ["bob", "dave"], "canView": ["erin"]}
            assert (await api.put(url, json={"permissions": rights})).status_code == 200
            assert (await api.delete(url)).status_code == 204
            restored = await api.post(f"{url}/restore")
            assert restored.status_code == 200, restored.text

        async def all_arrived() -> bool:
            return _types(receiver) >= set(WEBHOOK_EVENT_TYPES)

        await eventually(all_arrived, timeout=30, what=f"each of {WEBHOOK_EVENT_TYPES}")

    assert len(WEBHOOK_EVENT_TYPES) == 10
    assert receiver.forged == []
    assert all(r.verified_with == (0,) for r in receiver.requests)
    for received in receiver.delivered:
        parsed = EventMessage.parse(json.dumps(received.body))
        assert parsed.id == received.webhook_id and parsed.note_id == note["id"]
        WEBHOOK_MESSAGES[parsed.type].model_validate(received.body)  # as documented
    ids = Counter(r.webhook_id for r in receiver.delivered)
    assert max(ids.values()) == 1, ids

    # note.updated: the row with its version, the plain text and the ProseMirror JSON
    data = updated["data"]
    assert data["note"]["noteId"] == note["id"] and data["note"]["version"] >= 1
    assert data["content"] == paragraphs("hello")
    first = {t: _first(receiver, t) for t in WEBHOOK_EVENT_TYPES}
    assert first["mention.created"]["userIds"] == ["dave"]
    assert first["note.shared"]["userIds"] in (["bob", "dave"], ["erin"])
    assert first["version.created"]["label"] == "v1"
    assert first["session.ended"]["participants"] == ["owner"]
    assert first["session.started"]["sessionId"] == first["session.ended"]["sessionId"]
    assert first["note.deleted"]["permanent"] is False
    assert "erin" in first["note.restored"]["note"]["permissions"]["canView"]
    order = [r.body["type"] for r in receiver.delivered]
    assert order[0] == "note.created"
    assert order.index("note.deleted") < order.index("note.restored")


def _first(receiver: Receiver, event_type: str) -> dict[str, Any]:
    data: dict[str, Any] = receiver.of_type(event_type)[0]["data"]
    return data
