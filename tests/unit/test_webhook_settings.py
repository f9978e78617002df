"""Webhook settings: what the environment says, and what stops start-up with a clear
message instead of failing at the first delivery."""

from __future__ import annotations

import base64

import pytest

from syncd.jobs.policy import valid_job_id
from syncd.services.webhooks import check_settings, delivery_job_id
from syncd.settings import Settings, SettingsError

SECRET = "whsec_" + base64.b64encode(b"k" * 32).decode()


def test_urls_secret_events_and_knobs_are_read() -> None:
    hooks = Settings.from_env(
        {
            "SYNCD_WEBHOOK_URLS": "https://crm.example/hooks, http://audit:8080/in",
            "SYNCD_WEBHOOK_SECRET": SECRET,
            "SYNCD_WEBHOOK_EVENTS": "note.created, note.updated",
            "SYNCD_WEBHOOK_DEBOUNCE": "2.5",
            "SYNCD_WEBHOOK_ATTEMPTS": "3",
        }
    ).webhooks
    assert hooks.urls == ("https://crm.example/hooks", "http://audit:8080/in")
    assert hooks.events == ("note.created", "note.updated")
    assert (hooks.debounce, hooks.attempts, hooks.timeout) == (2.5, 3, 10.0)
    assert (hooks.disable_after, hooks.secret_grace) == (20, 86400.0)
    check_settings(hooks)


def test_off_by_default() -> None:
    hooks = Settings.from_env({}).webhooks
    assert hooks.urls == ()
    check_settings(hooks)


@pytest.mark.parametrize(
    ("env", "says"),
    [
        ({"SYNCD_WEBHOOK_URLS": "https://crm.example/h"}, "SYNCD_WEBHOOK_SECRET"),
        ({"SYNCD_WEBHOOK_URLS": "ftp://crm.example/h", "SYNCD_WEBHOOK_SECRET": SECRET}, "http"),
        (
            {
                "SYNCD_WEBHOOK_URLS": "https://a/h",
                "SYNCD_WEBHOOK_SECRET": SECRET,
                "SYNCD_WEBHOOK_DEBOUNCE": "0",
            },
            "SYNCD_WEBHOOK_DEBOUNCE",
        ),
    ],
)
def test_bad_environment_is_refused(env: dict[str, str], says: str) -> None:
    with pytest.raises(SettingsError, match=says):
        Settings.from_env(env)


@pytest.mark.parametrize(
    ("extra", "says"),
    [
        ({"SYNCD_WEBHOOK_SECRET": "whsec_"}, "SYNCD_WEBHOOK_SECRET"),
        ({"SYNCD_WEBHOOK_EVENTS": "note.created,note.exploded"}, "note.exploded"),
    ],
)
def test_unusable_secret_or_unknown_event_stops_start_up(extra: dict[str, str], says: str) -> None:
    env = {"SYNCD_WEBHOOK_URLS": "https://a/h", "SYNCD_WEBHOOK_SECRET": SECRET, **extra}
    with pytest.raises(SettingsError, match=says):
        check_settings(Settings.from_env(env).webhooks)


def test_delivery_job_ids_are_valid_job_ids() -> None:
    assert valid_job_id(delivery_job_id(2**63 - 1))
    assert valid_job_id(delivery_job_id(2**63 - 1, after=2**63 - 2))
