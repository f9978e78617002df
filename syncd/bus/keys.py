"""The Redis key layout. Every key of one doc carries the hash tag `{doc:<id>}` so that a
Redis Cluster keeps them in one slot.

- `<prefix>:{doc:<id>}:updates` (stream): the doc's updates not yet folded into its
  Postgres snapshot; fields `o` (origin instance id) and `u` (the Yjs update).
- `<prefix>:{doc:<id>}:lease` (string with a PX TTL): the instance compacting the doc now.
- `<prefix>:{doc:<id>}:awareness` (pub/sub channel): awareness updates, ephemeral, prefixed
  with the origin instance id.
- `<prefix>:docs` (sorted set): doc ids that have a stream, scored by their last append time;
  finds the streams of docs whose instance died.
- `<prefix>:events` (pub/sub channel): note events every instance acts on (rights changed,
  note deleted).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Keys:
    """Key names under one prefix (`SYNCD_REDIS_PREFIX`, default `syncd`), so several
    deployments or test runs can share one Redis without seeing each other."""

    prefix: str = "syncd"

    @property
    def doc_index(self) -> str:
        return f"{self.prefix}:docs"

    @property
    def events(self) -> str:
        return f"{self.prefix}:events"

    def _tag(self, doc_id: str) -> str:
        return f"{self.prefix}:{{doc:{doc_id}}}"

    def updates(self, doc_id: str) -> str:
        return f"{self._tag(doc_id)}:updates"

    def lease(self, doc_id: str) -> str:
        return f"{self._tag(doc_id)}:lease"

    def awareness(self, doc_id: str) -> str:
        return f"{self._tag(doc_id)}:awareness"


def doc_of(key: bytes | str) -> str:
    """The doc id in a per-doc key or channel name."""
    text = key.decode() if isinstance(key, bytes) else key
    start = text.index("{doc:") + 5
    return text[start : text.index("}", start)]


def id_order(stream_id: bytes | str) -> tuple[int, int]:
    """A stream id (`<ms>-<seq>`) as a tuple that sorts like Redis orders ids."""
    text = stream_id.decode() if isinstance(stream_id, bytes) else stream_id
    ms, _, seq = text.partition("-")
    return int(ms), int(seq or 0)
