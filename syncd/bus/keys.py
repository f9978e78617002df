"""The Redis key layout: every key and channel name syncd uses is built here.

An id (doc, note, user, token family, ...) enters a key name only through `key_part`: the
UTF-8 bytes of the id, percent-encoded except for the unreserved characters of RFC 3986
(`A-Z a-z 0-9 - . _ ~`). So an id can never contain a `{` or `}` (Redis Cluster hashes the
text between the first `{` and the first `}` after it: every key of one doc stays in the
doc's slot, and no id can move a key into another doc's tag), nor a `:`, nor a `%` that
was not written by the encoding. The encoding is injective, so two ids never share a key,
whatever they contain (NUL, non-ASCII, lone surrogates). Note ids (`syncd.ids`: letters,
digits, `_`, `-`) come out unchanged, so the keys of a running deployment stay where they
were across an upgrade.

Nothing ever recovers an id by cutting a key name: the stream reader and the pub/sub
listener map the exact names they subscribed to back to ids, and note events carry the id
in their JSON body.

Per doc (hash tag `{doc:<id>}`):
- `<prefix>:{doc:<id>}:updates` (stream): the doc's updates not yet folded into its
  Postgres snapshot; fields `o` (origin instance id) and `u` (the Yjs update).
- `<prefix>:{doc:<id>}:lease` (string with a PX TTL): the instance compacting the doc now.
- `<prefix>:{doc:<id>}:awareness` (pub/sub channel): awareness updates, ephemeral, prefixed
  with the origin instance id.
- `<prefix>:{doc:<id>}:cache` (hash, TTL): cached note metadata and permission look-ups.
Shared:
- `<prefix>:docs` (sorted set): `key_part(doc id)` of the docs that have a stream, scored by
  their last append time; finds the streams of docs whose instance died.
- `<prefix>:amqp:outbox` (stream), `<prefix>:amqp:lease` (string, TTL): the AMQP outbox
  and the one instance that publishes it (`syncd.services.amqp`); per doc, `:webhook` and
  `:amqp` hold the `note.updated` window of each channel.
- `<prefix>:events` (pub/sub channel): note events every instance acts on (rights changed,
  note deleted), JSON with the note id inside.
- `<prefix>:{note:<id>}:presence`, `<prefix>:{user:<id>}:online`,
  `<prefix>:socketio:instances` (hashes, TTL), `<prefix>:socketio` (python-socketio's
  channel): realtime state (`syncd.services.presence.redis_state`).
- `<prefix>:{rt:<family>}:t:<jti>`, `<prefix>:{rt:<family>}:revoked`: refresh tokens.
- `<prefix>:rl` then the `limits` library's own layout: rate-limit windows.
- `{<prefix>:jobs}:...`: job queues (SAQ adds its own `saq:` prefix; see `JobKeys`).
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote, unquote


def key_part(value: str) -> str:
    """`value` as it may appear inside a key name (see the module docstring)."""
    return quote(value, safe="", errors="surrogatepass")


def id_of_part(part: bytes | str) -> str | None:
    """The id that `key_part` turned into `part`, or None when `part` is not something
    `key_part` writes (decoding it and encoding again must give `part` back exactly)."""
    text = part.decode("ascii", "replace") if isinstance(part, bytes) else part
    try:
        value = unquote(text, errors="surrogatepass")
    except UnicodeDecodeError:
        return None
    return value if key_part(value) == text else None


@dataclass(frozen=True, slots=True)
class Keys:
    """Key names under one prefix (`SYNCD_REDIS_PREFIX`, default `syncd`), so several
    deployments or test runs can share one Redis without seeing each other."""

    prefix: str = "syncd"

    def __post_init__(self) -> None:
        # A brace in the prefix would become (part of) every key's hash tag.
        if "{" in self.prefix or "}" in self.prefix:
            raise ValueError(f"a Redis key prefix cannot contain braces: {self.prefix!r}")

    # -- per doc -------------------------------------------------------------------------

    def _doc(self, doc_id: str) -> str:
        return f"{self.prefix}:{{doc:{key_part(doc_id)}}}"

    def updates(self, doc_id: str) -> str:
        return f"{self._doc(doc_id)}:updates"

    def lease(self, doc_id: str) -> str:
        return f"{self._doc(doc_id)}:lease"

    def awareness(self, doc_id: str) -> str:
        return f"{self._doc(doc_id)}:awareness"

    def cache(self, note_id: str) -> str:
        return f"{self._doc(note_id)}:cache"

    def webhook_window(self, note_id: str) -> str:
        """Held (with a TTL) by the instance that sent the note's last `note.updated`."""
        return self.event_window(note_id, "webhook")

    def event_window(self, note_id: str, channel: str) -> str:
        """The `note.updated` window of one outgoing channel (`webhook`, `amqp`)."""
        return f"{self._doc(note_id)}:{channel}"

    # -- shared --------------------------------------------------------------------------

    @property
    def doc_index(self) -> str:
        return f"{self.prefix}:docs"

    @property
    def events(self) -> str:
        return f"{self.prefix}:events"

    @property
    def amqp_outbox(self) -> str:
        """The AMQP outbox (stream): messages waiting for the broker's confirm, in order."""
        return f"{self.prefix}:amqp:outbox"

    @property
    def amqp_lease(self) -> str:
        """The instance that publishes the AMQP outbox now (string with a PX TTL)."""
        return f"{self.prefix}:amqp:lease"

    def appended(self, instance_id: str) -> str:
        """Pub/sub channel an instance's append block publishes on once per turn: another
        writing instance's stream reader reads when told rather than polling every loaded
        stream (`syncd.bus.reader`). One per instance, so none is told of its own turns."""
        return f"{self.prefix}:appended:{key_part(instance_id)}"

    @property
    def stateless(self) -> str:
        """Hocuspocus stateless messages of every doc (rare: one channel, filtered on
        receipt by the docs an instance has loaded)."""
        return f"{self.prefix}:stateless"

    # -- realtime state ------------------------------------------------------------------

    def presence(self, note_id: str) -> str:
        return f"{self.prefix}:{{note:{key_part(note_id)}}}:presence"

    def online(self, user_id: str) -> str:
        return f"{self.prefix}:{{user:{key_part(user_id)}}}:online"

    @property
    def socketio_instances(self) -> str:
        return f"{self.prefix}:socketio:instances"

    @property
    def socketio_channel(self) -> str:
        return f"{self.prefix}:socketio"

    # -- auth, rate limits, jobs ---------------------------------------------------------

    def refresh_token(self, family: str, jti: str) -> str:
        return f"{self.prefix}:{{rt:{key_part(family)}}}:t:{key_part(jti)}"

    def refresh_family(self, family: str) -> str:
        return f"{self.prefix}:{{rt:{key_part(family)}}}:revoked"

    @property
    def rate_limits(self) -> str:
        """The `limits` library's key prefix; identifiers go in through `key_part`."""
        return f"{self.prefix}:rl"

    @property
    def jobs(self) -> str:
        """The hash tag every job key shares (SAQ's multi-key scripts need one slot)."""
        return f"{{{self.prefix}:jobs}}"


def id_order(stream_id: bytes | str) -> tuple[int, int]:
    """A stream id (`<ms>-<seq>`) as a tuple that sorts like Redis orders ids."""
    text = stream_id.decode() if isinstance(stream_id, bytes) else stream_id
    ms, _, seq = text.partition("-")
    return int(ms), int(seq or 0)


@dataclass(frozen=True, slots=True)
class JobKeys:
    """The names syncd gives SAQ for its queues, jobs and periodic jobs (all of them here).

    SAQ derives every Redis key from these: `saq:<queue>:queued|active|incomplete|schedule|
    sweep|stats|worker_info:<id>`, `saq:job:<queue>:<job key>` and `saq:abort:<job key>`, and
    a periodic job's key is `cron:<function name>`. Each of those names starts with the hash
    tag `{<prefix>:jobs}`, so every job key lands in one Redis Cluster slot and SAQ's
    multi-key scripts and transactions stay within it.
    """

    prefix: str = "syncd"

    @property
    def tag(self) -> str:
        return Keys(self.prefix).jobs

    def queue(self, name: str) -> str:
        """The SAQ queue name of priority class `name`."""
        return f"{self.tag}:{name}"

    def job(self, job_id: str) -> str:
        """The SAQ job key of syncd job `job_id` (it also names SAQ's abort marker)."""
        return f"{self.tag}:{key_part(job_id)}"

    def periodic(self, name: str) -> str:
        """The function name under which SAQ's cron enqueues periodic job `name`."""
        return f"{self.tag}:every:{name}"

    def job_name(self, function: str) -> str:
        """The registered job name behind a SAQ function name."""
        prefix = f"{self.tag}:every:"
        return function[len(prefix) :] if function.startswith(prefix) else function
