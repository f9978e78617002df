"""A viewer cannot write into a note through an id that confuses Redis key names.

The attack (issue 10): a user who may only view note `V` creates note `V}x`, opens it on
instance A and on instance B and types on A. When the doc id was cut out of the stream key
`{doc:V}x}:updates` at the first `}`, B delivered the update into the live room of `V`.
Here two real scaled instances with auto-create on meet the attempt with ids holding `}`,
`{`, `:`, NUL, non-ASCII and 1,000 characters: creating is refused (422), connecting closes
4404, writing over REST is refused, and `V` — on both instances, in Redis and in Postgres —
holds exactly what its owner typed.
"""

from __future__ import annotations

import base64
from urllib.parse import quote

from pycrdt import Doc, Text

from tests.scaled.helpers import open_backing
from tests.support.fixtures import StartServer, create_note
from tests.support.server import make_token
from tests.support.yjs_node import NodeYjs

VICTIM = "V"
BAD_IDS = ["V}x", "V}", "{V}", "V{x", "V:x", "V\x00x", "Vé", "V}" + "x" * 998]
NOTES = "/api/collaborative-notes"


def _evil_update() -> str:
    doc = Doc()
    doc["text"] = text = Text()
    text += "EVIL"
    return base64.b64encode(doc.get_update()).decode()


async def test_a_viewer_cannot_reach_a_note_through_a_confusing_id(
    start_scaled: StartServer,
    node: NodeYjs,
    postgres_url: str,
    redis_server_url: str,
    redis_prefix: str,
) -> None:
    auto = {"SYNCD_AUTO_CREATE_NOTES": "1", "SYNCD_COMPACT_INTERVAL": "0.5"}
    a = await start_scaled(name="a", env=auto)
    b = await start_scaled(name="b", env=auto)
    await create_note(a, "owner", id=VICTIM, permissions={"canView": ["mallory"]})
    owner = make_token("owner")
    on_a = await node.connect("owner-a", url=a.ws_url, room=VICTIM, token=owner, wait_synced=True)
    on_b = await node.connect("owner-b", url=b.ws_url, room=VICTIM, token=owner, wait_synced=True)
    await on_a.insert("typed by the owner.")
    await on_b.wait_text(equals="typed by the owner.")

    mallory = make_token("mallory")
    assert len(BAD_IDS[-1]) == 1000
    for index, bad in enumerate(BAD_IDS):
        for server in (a, b):
            async with server.client(mallory) as api:
                created = await api.post(NOTES, json={"title": "t", "id": bad})
                assert created.status_code == 422, (bad[:20], created.text[:200])
                error = created.json()["error"]  # `pointer`: when the schema refused it
                assert {"code", "message"} <= set(error) <= {"code", "message", "pointer"}
                assert error.get("pointer", "/id") == "/id"
                written = await api.post(
                    f"{NOTES}/{quote(bad, safe='')}/yjs-update", json={"update": _evil_update()}
                )
                assert written.status_code == 422, (bad[:20], written.text[:200])
        # the stock client appends the id to the URL as it is (its URL parser escapes what
        # a URL cannot hold); A and B both close it before looking anything up
        clients = []
        for server, name in ((a, "a"), (b, "b")):
            client = await node.connect(
                f"mallory-{name}-{index}",
                url=server.ws_url,
                room=bad,
                token=mallory,
                reconnect=False,
            )
            code, _ = await client.wait_closed(timeout=15)
            assert code == 4404, (bad[:20], name, code)
            clients.append(client)
        await clients[0].insert("EVIL")

    # The owner goes on typing: once B shows this, anything sent earlier would show too.
    await on_a.insert(" And more.")
    expected = "typed by the owner. And more."
    await on_b.wait_text(equals=expected)
    assert await on_a.text() == expected
    late = await node.connect("late-b", url=b.ws_url, room=VICTIM, token=owner, wait_synced=True)
    assert await late.text() == expected

    # no note came into being under any of those ids (an admin sees every note)
    async with a.client(make_token("root", roles=("admin",))) as api:
        listed = (await api.get(NOTES, params={"limit": 100})).json()["notes"]
    assert [note["id"] for note in listed] == [VICTIM]

    async with open_backing(postgres_url, redis_server_url, redis_prefix) as backing:
        stored = await backing.read(VICTIM)
        assert stored.text == expected
        for bad in BAD_IDS:
            assert not await backing.redis.exists(backing.keys.updates(bad))
        # no doc key of this deployment names any doc but the victim
        prefix = redis_prefix.rstrip(":")
        doc_keys = [key async for key in backing.redis.scan_iter(match=f"{prefix}:{{doc:*")]
        assert doc_keys, "the victim's stream exists"
        assert all(key.startswith(f"{prefix}:{{doc:{VICTIM}}}:".encode()) for key in doc_keys)
