"""Payloads of random editing sessions with stock npm yjs (`tests/node/ytraffic.mjs`)."""

from __future__ import annotations

import base64
import json
import subprocess
from dataclasses import dataclass

from tests.support.yjs_node import NODE_DIR


@dataclass(frozen=True, slots=True)
class Traffic:
    """Updates in the order the session's docs emitted them, then each doc's whole state,
    a merge and a diff; the state vectors the docs exchanged."""

    updates: list[bytes]
    state_vectors: list[bytes]


def yjs_traffic(seed: int, steps: int = 300) -> Traffic:
    """Run one seeded session in Node (bounded: 60 s)."""
    done = subprocess.run(
        ["node", str(NODE_DIR / "ytraffic.mjs"), str(seed), str(steps)],
        capture_output=True,
        check=True,
        timeout=60,
        cwd=NODE_DIR,
    )
    found = json.loads(done.stdout)
    return Traffic(
        [base64.b64decode(u) for u in found["updates"]],
        [base64.b64decode(s) for s in found["stateVectors"]],
    )
