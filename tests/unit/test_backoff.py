"""The one backoff formula: doubles from the first delay, capped, reset by a success."""

from syncd.backoff import Backoff, capped_delay
from syncd.jobs.policy import RetryPolicy


def test_delays_double_up_to_the_cap_and_restart_after_a_success() -> None:
    backoff = Backoff(0.05, 0.3)
    assert [backoff.next() for _ in range(5)] == [0.05, 0.1, 0.2, 0.3, 0.3]
    backoff.reset()
    assert backoff.next() == 0.05


def test_job_retries_use_the_same_formula() -> None:
    policy = RetryPolicy(attempts=5, base_delay=1.0, max_delay=5.0)
    delays = [policy.delay(n) for n in range(1, 6)]
    assert delays == [capped_delay(1.0, 5.0, n) for n in range(1, 6)]
    assert delays == [1.0, 2.0, 4.0, 5.0, 5.0]
