"""`RABBITMQ_URL` and the `SYNCD_AMQP_*` knobs: read once, refused early when wrong."""

from __future__ import annotations

import pytest

from syncd.settings import AmqpSettings, Settings, SettingsError


def test_unset_means_no_amqp() -> None:
    amqp = Settings.from_env({}).amqp
    assert amqp == AmqpSettings()
    assert not amqp.enabled
    assert amqp.exchange == "syncd.events"
    assert amqp.outbox_max == 100_000


def test_an_amqp_url_with_its_knobs() -> None:
    amqp = Settings.from_env(
        {
            "RABBITMQ_URL": "amqps://crm:s3cret@mq.example:5671/crm",
            "SYNCD_AMQP_EXCHANGE": "crm.notes",
            "SYNCD_AMQP_OUTBOX_MAX": "50",
        }
    ).amqp
    assert amqp.enabled
    assert amqp.url == "amqps://crm:s3cret@mq.example:5671/crm"
    assert amqp.exchange == "crm.notes"
    assert amqp.outbox_max == 50


def test_the_password_never_reaches_a_log_line() -> None:
    amqp = Settings.from_env({"RABBITMQ_URL": "amqp://crm:s3cret@mq:5672/"}).amqp
    assert amqp.safe_url == "amqp://crm:***@mq:5672/"
    assert "s3cret" not in amqp.safe_url


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("http://mq:5672/", "must start with amqp:// or amqps://"),
        ("mq:5672", "must start with amqp:// or amqps://"),
        ("amqp://", "has no host"),
        ("amqp://guest:guest@mq:99999/", "not a valid URL"),
        ("amqp://guest:guest@mq:port/", "not a valid URL"),
    ],
)
def test_an_unusable_url_is_refused_at_start(url: str, says: str) -> None:
    with pytest.raises(SettingsError, match=says):
        Settings.from_env({"RABBITMQ_URL": url})


@pytest.mark.parametrize("exchange", ["amq.topic", "x" * 256])
def test_a_reserved_or_overlong_exchange_is_refused(exchange: str) -> None:
    with pytest.raises(SettingsError, match="SYNCD_AMQP_EXCHANGE"):
        Settings.from_env({"RABBITMQ_URL": "amqp://mq/", "SYNCD_AMQP_EXCHANGE": exchange})


@pytest.mark.parametrize("value", ["0", "-1", "many"])
def test_the_outbox_bound_is_a_positive_integer(value: str) -> None:
    with pytest.raises(SettingsError, match="SYNCD_AMQP_OUTBOX_MAX"):
        Settings.from_env({"SYNCD_AMQP_OUTBOX_MAX": value})
