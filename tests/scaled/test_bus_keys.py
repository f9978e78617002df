"""The Redis bus keeps docs apart whatever their ids hold, even ids the edges refuse.

Two `RedisBus` instances (different instance ids) on one real Redis and Postgres, used
directly, so no REST or WebSocket check stands in the way: ids that differ only by a brace,
a colon, an escape-looking `%7D`, non-ASCII or length each get their own stream, lease,
awareness channel and cluster slot, and what is appended or published for one never reaches
the listener of another. (NUL is left out here only because Postgres text cannot hold it;
`tests/unit/test_keys.py` covers it at the key level.)
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from pycrdt import Doc, Text

from syncd.bus.keys import id_of_part
from syncd.storage import Store
from tests.scaled.helpers import doc_text
from tests.support.bus import Recorder, store_with_notes, two_buses
from tests.support.polling import eventually

IDS = [
    "V",
    "V}x",
    "V%7Dx",
    "V}",
    "a:b",
    "a%3Ab",
    "{x}",
    "{doc:V}",
    "V}:updates",
    "Vé-日本",
    "x" * 1000,
]
#: a doc appended last: once its entry has arrived, every earlier append has been read
SENTINEL = "sentinel"


def hash_tag(key: str) -> str:
    """What Redis Cluster hashes: the text between the first `{` and the first `}` after
    it, if that is not empty; else the whole key."""
    start = key.find("{")
    end = key.find("}", start + 1) if start >= 0 else -1
    if start < 0 or end < 0 or end == start + 1:
        return key
    return key[start + 1 : end]


def update_of(text: str) -> bytes:
    """A Yjs update that inserts `text` into Y.Text `text` of a fresh doc."""
    doc = Doc()
    doc["text"] = body = Text()
    body += text
    return doc.get_update()


@pytest.fixture
async def store(postgres_url: str) -> AsyncIterator[Store]:
    async with store_with_notes(postgres_url, [*IDS, SENTINEL]) as opened:
        yield opened


async def test_updates_and_awareness_of_one_doc_never_reach_another(
    redis_server_url: str, redis_prefix: str, store: Store
) -> None:
    async with two_buses(redis_server_url, redis_prefix, store, [*IDS, SENTINEL]) as (
        redis,
        keys,
        (bus_a, on_a),
        (bus_b, on_b),
    ):
        channels = [keys.awareness(doc_id) for doc_id in [*IDS, SENTINEL]]

        async def both_listening() -> bool:
            counts = dict(await redis.pubsub_numsub(*channels))
            return all(counts.get(c.encode()) == 2 for c in channels)

        await eventually(both_listening, timeout=10, what="both buses subscribed to awareness")

        sent: dict[str, list[bytes]] = {doc_id: [] for doc_id in IDS}
        for source, name in ((bus_a, "a"), (bus_b, "b")):
            for index, doc_id in enumerate(IDS):
                update = update_of(f"<{name}:{index}>")
                sent[doc_id].append(update)
                await source.append(doc_id, [update])
                source.publish_awareness(doc_id, f"aw-{name}-{index}".encode())
            await source.append(SENTINEL, [update_of(f"<{name}:end>")])
            source.publish_awareness(SENTINEL, f"aw-{name}-end".encode())

        for target, recorders in ((bus_b, on_b), (bus_a, on_a)):
            sentinel = recorders[SENTINEL]

            async def sentinel_arrived(sentinel: Recorder = sentinel) -> bool:
                return len(sentinel.updates) == 1 and len(sentinel.awareness) == 1

            await eventually(sentinel_arrived, timeout=15, what=f"{target.instance_id} sentinel")

        # Each listener got exactly what the other bus sent for its doc, and nothing else.
        for recorders, other, index_of in ((on_b, "a", 0), (on_a, "b", 1)):
            for index, doc_id in enumerate(IDS):
                recorder = recorders[doc_id]
                assert recorder.updates == [sent[doc_id][index_of]], doc_id[:40]
                assert recorder.awareness == [f"aw-{other}-{index}".encode()], doc_id[:40]

        # Stored apart: one stream per id holding both buses' appends for that id only.
        for index, doc_id in enumerate(IDS):
            entries = await redis.xrange(keys.updates(doc_id))
            assert [fields[b"u"] for _, fields in entries] == sent[doc_id], doc_id[:40]
            assert doc_text(sent[doc_id]) in (f"<a:{index}><b:{index}>", f"<b:{index}><a:{index}>")

        # One cluster slot per doc (all of its keys share it), a different tag for each id.
        tags = set()
        for doc_id in IDS:
            per_doc = {
                hash_tag(key)
                for key in (
                    keys.updates(doc_id),
                    keys.lease(doc_id),
                    keys.awareness(doc_id),
                    keys.cache(doc_id),
                )
            }
            assert len(per_doc) == 1, per_doc
            tags |= per_doc
        assert len(tags) == len(IDS)

        # The orphan index names every doc exactly, and compaction folds each stream into
        # its own snapshot.
        members = await redis.zrange(keys.doc_index, 0, -1)
        assert {id_of_part(member) for member in members} == {*IDS, SENTINEL}
        compacted = await bus_a.compactor.compact_idle(older_than=0, skip=set())
        assert compacted == len(IDS) + 1
        for index, doc_id in enumerate(IDS):
            snapshot = await store.load_snapshot(doc_id)
            assert snapshot is not None
            text = doc_text([snapshot.state])
            assert sorted(text.replace("><", ">\n<").split("\n")) == [
                f"<a:{index}>",
                f"<b:{index}>",
            ], doc_id[:40]
            assert await redis.xlen(keys.updates(doc_id)) == 0
