"""Per-connect bookkeeping kept cheap without losing what it records: the user seen in a
token is stored once per `USER_RECORD_TTL` unless it changes (`NoteService.remember_user`),
and every published event is counted by kind (`wiring._count`). Fakes: the store only."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import pytest
from prometheus_client import REGISTRY

from syncd import wiring
from syncd.auth import Principal
from syncd.services import notes as notes_module
from syncd.services.events.kinds import NoteDeleted, NoteRestored
from syncd.services.notes import USER_RECORD_TTL, NoteService
from syncd.storage.records import UserRecord


class UserStore:
    """Records `upsert_user` calls; fails them while `failing`."""

    def __init__(self) -> None:
        self.upserts: list[UserRecord] = []
        self.failing = False

    async def upsert_user(self, user: UserRecord) -> None:
        if self.failing:
            raise OSError("database down")
        self.upserts.append(user)


def _service(store: UserStore) -> NoteService:
    nothing = cast(Any, None)
    return NoteService(cast(Any, store), nothing, nothing, nothing)


def _principal(name: str | None = "Ann", roles: tuple[str, ...] = ()) -> Principal:
    return Principal("ann", name, "ann@example.com", roles, 0.0, None)


async def _settle(service: NoteService) -> None:
    """Until the service's background writes are done and their outcome handled (its
    done callback was added first, so it has run when `gather` returns)."""
    async with asyncio.timeout(5):
        await asyncio.gather(*service._background, return_exceptions=True)
    assert not service._background


async def test_a_user_is_stored_once_until_it_changes_or_the_ttl_passes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = [1000.0]
    monkeypatch.setattr(notes_module.time, "monotonic", lambda: clock[0])
    store = UserStore()
    service = _service(store)
    for _ in range(3):
        service.remember_user(_principal())
        await _settle(service)
    assert store.upserts == [UserRecord("ann", "Ann", "ann@example.com", ())]
    service.remember_user(_principal(name="Ann B"))  # a new name: stored again
    service.remember_user(_principal(name="Ann B", roles=("admin",)))  # new roles too
    await _settle(service)
    assert [(u.name, u.roles) for u in store.upserts[1:]] == [
        ("Ann B", ()),
        ("Ann B", ("admin",)),
    ]
    clock[0] += USER_RECORD_TTL
    service.remember_user(_principal(name="Ann B", roles=("admin",)))  # the TTL passed
    await _settle(service)
    assert len(store.upserts) == 4


async def test_a_user_not_stored_is_tried_again_on_the_next_connect() -> None:
    store = UserStore()
    store.failing = True
    service = _service(store)
    service.remember_user(_principal())
    await _settle(service)
    store.failing = False
    service.remember_user(_principal())
    await _settle(service)
    assert store.upserts == [UserRecord("ann", "Ann", "ann@example.com", ())]


def _events_total(kind: str) -> float:
    return REGISTRY.get_sample_value("syncd_events_total", {"kind": kind}) or 0.0


def test_every_event_is_counted_by_its_kind() -> None:
    deleted, restored = _events_total("NoteDeleted"), _events_total("NoteRestored")
    for _ in range(3):
        wiring._count(NoteDeleted("n1"))
    wiring._count(NoteRestored("n1"))
    assert _events_total("NoteDeleted") == deleted + 3
    assert _events_total("NoteRestored") == restored + 1
