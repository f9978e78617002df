"""Pass pacing: a busy room's fan-out passes are spaced and carry more each, a quiet room's
keystroke goes out at once, each pass is still appended before it is sent, and a room whose
note is gone stops."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from syncd.protocol import SyncUpdate, encode_update, parse_message
from syncd.room import DocGone, Peer, Room, RoomLimits
from syncd.room.pacing import PassPacer
from syncd.settings import Settings, SettingsError
from tests.unit.test_room import MemoryChannel, MemoryLog, peer, text_of, typed

#: a spacing no test may ever wait out: reaching it means the pass waited
_FOREVER = 60.0


def _keystrokes(count: int) -> list[bytes]:
    """`count` updates of one client, each typing one more character after the last."""
    from pycrdt import Doc, Text

    doc = Doc(client_id=7)
    text = doc.get("t", type=Text)
    updates: list[bytes] = []
    doc.observe(lambda event: updates.append(event.update))
    for i in range(count):
        text += "abcdefghij"[i % 10]
    return updates


def _frame(update: bytes) -> SyncUpdate:
    message = parse_message(encode_update(update))
    assert isinstance(message, SyncUpdate)
    return message


def test_a_pacer_lets_a_burst_through_then_spaces_passes() -> None:
    pacer = PassPacer(interval=0.010, burst=3)
    for _ in range(3):
        assert pacer.wait(100.0) == 0.0
        pacer.start(100.0)
    assert pacer.wait(100.0) == pytest.approx(0.010)
    pacer.start(100.010)
    assert pacer.wait(100.010) == pytest.approx(0.010)


def test_a_pacer_never_holds_passes_further_apart_than_its_interval() -> None:
    """People typing: one pass every 25 ms (a room of the fanout benchmark) never waits."""
    pacer = PassPacer(interval=0.001, burst=3)
    for i in range(1000):
        now = 50.0 + i * 0.025
        assert pacer.wait(now) == 0.0
        pacer.start(now)


def test_a_pacer_with_no_interval_never_waits() -> None:
    pacer = PassPacer(interval=0.0, burst=1)
    for _ in range(100):
        assert pacer.wait(1.0) == 0.0
        pacer.start(1.0)


def test_a_pacer_refuses_nonsense() -> None:
    with pytest.raises(ValueError):
        PassPacer(interval=-1.0)
    with pytest.raises(ValueError):
        PassPacer(burst=0)


async def test_a_quiet_rooms_keystroke_goes_out_at_once() -> None:
    """However long the spacing, a room's first pass does not wait for it."""
    room = Room("n", MemoryLog(), RoomLimits(pass_interval=_FOREVER, pass_burst=1))
    writer, _ = peer()
    reader, seen = peer()
    room.join(writer)
    room.join(reader)
    room.handle(writer, _frame(typed("a", 1)))
    await asyncio.wait_for(room.drain(), timeout=5.0)
    assert text_of(seen.updates()) == "a"


async def test_a_busy_rooms_next_pass_waits_and_carries_what_arrived_meanwhile() -> None:
    interval = 0.05
    room = Room("n", MemoryLog(), RoomLimits(pass_interval=interval, pass_burst=1))
    writer, _ = peer()
    reader, seen = peer()
    room.join(writer)
    room.join(reader)
    loop = asyncio.get_running_loop()
    first, *rest = _keystrokes(4)
    room.handle(writer, _frame(first))
    await room.drain()
    first_pass = loop.time()
    assert len(seen.writes) == 1
    for update in rest:  # one a loop turn, as separate reads would bring them
        room.handle(writer, _frame(update))
        await asyncio.sleep(0)
    assert len(seen.writes) == 1  # the spaced pass has not started yet
    await asyncio.wait_for(room.drain(), timeout=5.0)
    assert loop.time() - first_pass >= interval * 0.9  # the loop's clock resolution
    assert len(seen.writes) == 2  # the other three keystrokes: one pass, one write
    assert text_of(seen.updates()) == "abcd"


async def test_a_paced_pass_is_appended_before_it_is_sent() -> None:
    log = GatedLog()
    room = Room("n", log, RoomLimits(pass_interval=0.02, pass_burst=1))
    writer, _ = peer()
    room.join(writer)
    stored_when_sent: list[int] = []

    class Checking(MemoryChannel):
        def send_now(self, frame: bytes) -> bool:
            stored_when_sent.append(len(log.appended))
            return super().send_now(frame)

    channel = Checking()
    room.join(Peer(channel=channel, user_id="r", can_write=True))
    keys = _keystrokes(3)
    room.handle(writer, _frame(keys[0]))
    await room.drain()
    log.gate = asyncio.Event()
    room.handle(writer, _frame(keys[1]))
    room.handle(writer, _frame(keys[2]))
    flushing = asyncio.ensure_future(room.drain())
    await asyncio.wait_for(log.entered.wait(), timeout=5.0)  # the spaced pass appends
    assert len(channel.writes) == 1  # and sends nothing until the append returns
    log.gate.set()
    await asyncio.wait_for(flushing, timeout=5.0)
    assert stored_when_sent == [1, 2]  # each pass sent only once its row was stored
    assert text_of(channel.updates()) == "abc"


class GatedLog(MemoryLog):
    """Tells when an append starts, so a test can hold it at the gate."""

    def __init__(self) -> None:
        super().__init__()
        self.entered = asyncio.Event()

    async def append(self, doc_id: str, updates: Sequence[bytes]) -> None:
        if self.gate is not None:
            self.entered.set()
        await super().append(doc_id, updates)


class GoneLog(MemoryLog):
    """A log whose note is deleted once `gone` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.gone = False

    async def append(self, doc_id: str, updates: Sequence[bytes]) -> None:
        if self.gone:
            raise DocGone(doc_id)
        await super().append(doc_id, updates)


async def test_a_paced_room_whose_note_is_gone_stops() -> None:
    log = GoneLog()
    room = Room("n", log, RoomLimits(pass_interval=0.02, pass_burst=1))
    writer, writer_channel = peer()
    reader, seen = peer()
    room.join(writer)
    room.join(reader)
    keys = _keystrokes(3)
    room.handle(writer, _frame(keys[0]))
    await room.drain()
    log.gone = True
    room.handle(writer, _frame(keys[1]))  # waits for its spaced pass, then finds it gone
    await asyncio.wait_for(room.drain(), timeout=5.0)
    assert room.gone and room.idle
    assert text_of(seen.updates()) == "a"  # nothing unstored went out
    assert seen.closed and writer_channel.closed
    assert log.appended == [keys[0]]


def test_pacing_is_off_unless_configured_in_microseconds() -> None:
    assert Settings.from_env({}).limits.pass_interval_us == 0
    assert Settings.from_env({"SYNCD_PASS_INTERVAL_US": "1000"}).limits.pass_interval_us == 1000
    with pytest.raises(SettingsError):
        Settings.from_env({"SYNCD_PASS_INTERVAL_US": "-1"})
    assert RoomLimits().pass_interval == 0.0
