"""How `REDIS_URL`, `SYNCD_REDIS_CLUSTER` and `SYNCD_JOBS_REDIS_URL` are read."""

from __future__ import annotations

import pytest

from syncd.bus.connect import split_seeds
from syncd.settings import Settings, SettingsError


def test_a_plain_url_is_one_redis_and_the_job_queue_shares_it() -> None:
    settings = Settings.from_env({"REDIS_URL": "redis://r:6379/0"})
    assert (settings.redis_url, settings.redis_cluster) == ("redis://r:6379/0", False)
    assert settings.jobs_redis_url == "redis://r:6379/0"


@pytest.mark.parametrize(
    ("url", "plain"),
    [
        ("redis+cluster://n1:7000", "redis://n1:7000"),
        ("rediss+cluster://u:p@n1:7000/0", "rediss://u:p@n1:7000/0"),
        ("REDIS+CLUSTER://n1:7000", "redis://n1:7000"),
    ],
)
def test_a_cluster_scheme_names_a_cluster(url: str, plain: str) -> None:
    env = {"REDIS_URL": url, "SYNCD_JOBS_REDIS_URL": "redis://jobs:6379/0"}
    settings = Settings.from_env(env)
    assert (settings.redis_url, settings.redis_cluster) == (plain, True)
    assert settings.jobs_redis_url == "redis://jobs:6379/0"


def test_the_cluster_flag_names_a_cluster() -> None:
    env = {
        "REDIS_URL": "redis://n1:7000",
        "SYNCD_REDIS_CLUSTER": "1",
        "SYNCD_JOBS_REDIS_URL": "redis://jobs:6379/0",
    }
    assert Settings.from_env(env).redis_cluster


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"REDIS_URL": "redis+cluster://n1:7000"}, "SYNCD_JOBS_REDIS_URL"),
        ({"REDIS_URL": "redis://n1:7000", "SYNCD_REDIS_CLUSTER": "yes"}, "SAQ"),
        ({"SYNCD_REDIS_CLUSTER": "1"}, "needs a REDIS_URL"),
        (
            {"REDIS_URL": "redis://r", "SYNCD_JOBS_REDIS_URL": "redis+cluster://n1:7000"},
            "single Redis",
        ),
        ({"REDIS_URL": "redis://r", "SYNCD_REDIS_CLUSTER": "maybe"}, "boolean"),
    ],
)
def test_a_cluster_without_a_job_queue_redis_is_refused(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        Settings.from_env(env)


@pytest.mark.parametrize(
    ("url", "first", "others"),
    [
        ("redis://n1:7000/0", "redis://n1:7000/0", []),
        ("redis://n1:7000,n2:7001/0", "redis://n1:7000/0", [("n2", 7001)]),
        (
            "rediss://u:p@n1:7000, n2:7001,[::1]:7002/0",
            "rediss://u:p@n1:7000/0",
            [("n2", 7001), ("::1", 7002)],
        ),
    ],
)
def test_a_cluster_url_may_name_several_seed_nodes(
    url: str, first: str, others: list[tuple[str, int]]
) -> None:
    assert split_seeds(url) == (first, others)
