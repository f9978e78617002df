"""The limiter on its own: REST limits per user and IP, connection budgets."""

from __future__ import annotations

from syncd import metrics
from syncd.services.ratelimit import RateLimiter
from syncd.settings import RateLimits


def rejected(name: str) -> float:
    return metrics.RATE_LIMITED.labels(name)._value.get()


async def test_rest_limits_per_user_then_per_ip() -> None:
    limiter = RateLimiter(RateLimits(rest_per_user="2/minute", rest_per_ip="3/minute"))
    before = rejected("rest_user")
    assert await limiter.check_rest("ann", "10.0.0.1") is None
    assert await limiter.check_rest("ann", "10.0.0.1") is None
    retry = await limiter.check_rest("ann", "10.0.0.1")
    assert retry is not None and 1 <= retry <= 60
    assert rejected("rest_user") == before + 1
    assert await limiter.check_rest("bob", "10.0.0.1") is None  # the third from that IP
    assert await limiter.check_rest("cy", "10.0.0.1") is not None  # over the IP limit
    assert await limiter.check_rest("cy", "10.0.0.2") is None


async def test_limits_can_be_turned_off() -> None:
    off = RateLimiter(RateLimits(enabled=False, rest_per_user="1/minute"))
    assert all([await off.check_rest("ann", "ip") is None for _ in range(5)])
    assert off.connection_budget() is None
    no_ip = RateLimiter(RateLimits(rest_per_ip="", ws_connects_per_ip=""))
    assert all([await no_ip.check_connect("ip") for _ in range(5)])


def test_connection_budgets_count_messages_and_bytes_per_connection() -> None:
    limiter = RateLimiter(RateLimits(ws_messages="3/second", ws_bytes="100/minute"))
    first, second = limiter.connection_budget(), limiter.connection_budget()
    assert first is not None and second is not None
    assert [first.allow(10) for _ in range(4)] == [True, True, True, False]
    assert second.allow(90)
    assert not second.allow(20)  # bytes: 110 > 100


async def test_connection_attempts_per_ip() -> None:
    limiter = RateLimiter(RateLimits(ws_connects_per_ip="2/minute"))
    assert [await limiter.check_connect("1.2.3.4") for _ in range(3)] == [True, True, False]
    assert await limiter.check_connect("5.6.7.8")
