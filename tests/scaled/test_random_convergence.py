"""A seeded, bounded random run: stock clients on two instances behind a plain load
balancer insert, delete, disconnect and reconnect (landing on either instance, editing
offline meanwhile); at the end every replica holds the same content, and so does the
snapshot the instances store in Postgres, byte for byte.

`SYNCD_TEST_SEED=<int>` replays another run; failures name the seed.
"""

from __future__ import annotations

import asyncio
import os
import random
import string
import time
from collections import Counter

from tests.scaled.helpers import connect_many, converged, open_backing
from tests.support.balancer import Balancer
from tests.support.fixtures import StartServer, create_note
from tests.support.server import make_token
from tests.support.yjs_node import NodeYjs, NodeYjsError, YClient

CLIENTS = 6
OPS = 300
#: seconds the random phase may take at most (it stops early, never fails, when over)
OPS_BUDGET = 30.0
ALPHABET = string.ascii_letters + string.digits + " "


async def test_random_edits_disconnects_and_reconnects_converge_with_the_snapshot(
    postgres_url: str,
    redis_server_url: str,
    redis_prefix: str,
    start_scaled: StartServer,
    node: NodeYjs,
) -> None:
    seed = int(os.environ.get("SYNCD_TEST_SEED", "20240611"))
    rng = random.Random(seed)
    a = await start_scaled(name="a")
    b = await start_scaled(name="b")
    note_id = (await create_note(a))["id"]
    token = make_token("owner")
    async with Balancer([a.port, b.port]) as lb:
        clients = await connect_many(
            node, lb.ws_url, note_id, count=CLIENTS, prefix="r", max_backoff_ms=500
        )
        online = dict.fromkeys((c.name for c in clients), True)
        done: Counter[str] = Counter()
        deadline = time.monotonic() + OPS_BUDGET
        for _ in range(OPS):
            if time.monotonic() > deadline:
                break
            roll = rng.random()
            if roll < 0.08:
                client = rng.choice(clients)
                if online[client.name]:
                    await client.disconnect()
                    done["disconnect"] += 1
                else:
                    await client.reconnect()  # the balancer picks the instance
                    done["reconnect"] += 1
                online[client.name] = not online[client.name]
            elif roll < 0.18:
                # Several clients edit at once: concurrent inserts at the same spots.
                burst = rng.sample(clients, 3)
                edits = [(c, rng.choice((0, None)), _word(rng)) for c in burst]
                await asyncio.gather(*(c.insert(word, index) for c, index, word in edits))
                done["burst"] += 1
            elif roll < 0.7:
                done[await _insert(rng, rng.choice(clients))] += 1
            else:
                done[await _delete(rng, rng.choice(clients))] += 1
        for client in clients:
            if not online[client.name]:
                await client.reconnect()
        for client in clients:
            await client.wait_synced(timeout=30)
        why = f"seed={seed}, ops={dict(done)}"
        assert done["insert"] and done["delete"] and done["disconnect"] and done["reconnect"], why
        final = await converged(clients, timeout=60)
        assert final, why

        fresh = await node.connect(
            "fresh", url=lb.ws_url, room=note_id, token=token, wait_synced=True, timeout=20
        )
        assert await fresh.wait_text(equals=final, timeout=20) == final, why
        for client in [*clients, fresh]:
            await client.destroy()

    # A graceful stop checkpoints every room: the snapshot then holds the whole doc.
    await a.stop()
    await b.stop()
    async with open_backing(postgres_url, redis_server_url, redis_prefix) as backing:
        stored = await backing.read(note_id)
    assert stored.tail == [], why
    assert stored.snapshot_text.encode() == final.encode(), why
    assert stored.text.encode() == final.encode(), why


def _word(rng: random.Random) -> str:
    return "".join(rng.choices(ALPHABET, k=rng.randint(1, 6)))


async def _insert(rng: random.Random, client: YClient) -> str:
    length = len(await client.text())
    try:
        await client.insert(_word(rng), rng.randint(0, length))
    except NodeYjsError as error:
        # A remote delete landed between reading the length and inserting.
        if "out of range" not in str(error):
            raise
        return "skipped"
    return "insert"


async def _delete(rng: random.Random, client: YClient) -> str:
    length = len(await client.text())
    if length == 0:
        return "skipped"
    index = rng.randrange(length)
    try:
        await client.delete(index, min(rng.randint(1, 4), length - index))
    except NodeYjsError as error:
        if "out of" not in str(error):
            raise
        return "skipped"
    return "delete"
