"""`syncd.room.fanout.send_each_now`: the fan-out any channel supports."""

from __future__ import annotations

from syncd.room import Peer
from syncd.room.fanout import send_each_now


class SendNowChannel:
    """A channel with `send_now` only (another endpoint's, in the same room): takes the
    frame (`takes` True), leaves it to the awaited send (False) or is gone (None: raises)."""

    def __init__(self, takes: bool | None) -> None:
        self.takes = takes
        self.sent: list[bytes] = []

    def send_now(self, frame: bytes) -> bool:
        if self.takes is None:
            raise ConnectionError("gone")
        if self.takes:
            self.sent.append(frame)
        return self.takes


def test_each_peer_but_the_origin_is_sent_the_frame_and_the_rest_reported() -> None:
    channels = [SendNowChannel(takes) for takes in (True, False, None, True)]
    peers = [Peer(channel=c, user_id=f"u{i}", can_write=True) for i, c in enumerate(channels)]  # type: ignore[arg-type]
    unsent, failed = send_each_now(peers, peers[3], b"\x00\x02\x01a")
    assert unsent == [peers[1]] and failed == [peers[2]]
    assert channels[0].sent == [b"\x00\x02\x01a"] and channels[3].sent == []


def test_a_pass_every_peer_takes_allocates_no_list() -> None:
    peers = [Peer(channel=SendNowChannel(True), user_id="u", can_write=True)]  # type: ignore[arg-type]
    assert send_each_now(peers, None, b"\x00\x02\x01a") == (None, None)
