"""Batched counters and histograms: after a flush (every scrape runs one) the values are
exactly those of the same increments and observations made on prometheus-client directly."""

from __future__ import annotations

import random

import pytest
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram

from syncd import metrics
from syncd.metrics._batched import BatchedCounter, BatchedHistogram, flush_batched

_BUCKETS = (0.001, 0.01, 0.1, 1.0)


def _samples(registry: CollectorRegistry, name: str) -> dict[tuple[str, str], float]:
    return {
        (sample.name, sample.labels.get("le", "")): sample.value
        for family in registry.collect()
        if family.name == name
        for sample in family.samples
        if not sample.name.endswith("_created")
    }


def test_a_batched_histogram_renders_what_direct_observations_render() -> None:
    direct_registry, batched_registry = CollectorRegistry(), CollectorRegistry()
    direct = Histogram("lat", "l", ["scope"], buckets=_BUCKETS, registry=direct_registry)
    target = Histogram("lat", "l", ["scope"], buckets=_BUCKETS, registry=batched_registry)
    batched = BatchedHistogram(target.labels("x"), _BUCKETS)
    rng = random.Random(7)
    values = [rng.expovariate(20) for _ in range(5000)]
    values += [*_BUCKETS, 0.0, 50.0]  # on every bound (le is inclusive), past the last
    for index, value in enumerate(values):
        direct.labels("x").observe(value)
        batched.observe(value)
        if index % 997 == 0:  # flushes in the middle of the burst lose nothing
            batched.flush()
    batched.flush()

    expected = _samples(direct_registry, "lat")
    got = _samples(batched_registry, "lat")
    assert got.keys() == expected.keys()
    for key, value in expected.items():
        assert got[key] == pytest.approx(value, rel=1e-12), key
    assert got[("lat_count", "")] == len(values)


def test_observe_many_renders_what_as_many_direct_observations_render() -> None:
    """The pass scheduler's group commit times one append for every room in it."""
    direct_registry, batched_registry = CollectorRegistry(), CollectorRegistry()
    direct = Histogram("lat", "l", ["scope"], buckets=_BUCKETS, registry=direct_registry)
    target = Histogram("lat", "l", ["scope"], buckets=_BUCKETS, registry=batched_registry)
    batched = BatchedHistogram(target.labels("x"), _BUCKETS)
    for value, times in ((0.0005, 3), (0.01, 7), (0.5, 1), (9.0, 4)):
        for _ in range(times):
            direct.labels("x").observe(value)
        batched.observe_many(value, times)
    batched.flush()
    expected = _samples(direct_registry, "lat")
    got = _samples(batched_registry, "lat")
    assert got.keys() == expected.keys()
    for key, value in expected.items():
        assert got[key] == pytest.approx(value, rel=1e-12), key
    assert got[("lat_count", "")] == 15


def test_a_batched_counter_adds_up_every_increment() -> None:
    registry = CollectorRegistry()
    counter = Counter("hits", "h", registry=registry)
    batched = BatchedCounter(counter)
    for amount in range(1, 101):
        batched.inc(amount)
    assert registry.get_sample_value("hits_total") == 0
    flush_batched()
    assert registry.get_sample_value("hits_total") == 5050
    batched.inc()
    flush_batched()
    flush_batched()  # nothing pending: nothing added twice
    assert registry.get_sample_value("hits_total") == 5051


def test_a_scrape_is_exact_right_after_a_burst() -> None:
    labels = {"scope": "local"}
    before = REGISTRY.get_sample_value("syncd_fanout_latency_seconds_count", labels) or 0
    applied = REGISTRY.get_sample_value("syncd_updates_applied_total", {"origin": "local"}) or 0
    for _ in range(1234):
        metrics.FANOUT_LOCAL.observe(0.0002)
        metrics.APPLIED_LOCAL.inc(3)

    text, _ = metrics.render(None)

    assert REGISTRY.get_sample_value("syncd_fanout_latency_seconds_count", labels) == before + 1234
    assert REGISTRY.get_sample_value("syncd_updates_applied_total", {"origin": "local"}) == (
        applied + 3 * 1234
    )
    count_line = f'syncd_fanout_latency_seconds_count{{scope="local"}} {before + 1234:.1f}'
    assert count_line.encode() in text


def test_buckets_must_match_the_histogram() -> None:
    histogram = Histogram("other", "o", buckets=_BUCKETS, registry=CollectorRegistry())
    with pytest.raises(ValueError, match="buckets"):
        BatchedHistogram(histogram, (0.5, 1.0))


def test_frames_sent_to_many_peers_are_counted_each_by_type_and_size() -> None:
    def sent(kind: str) -> tuple[float, float]:
        labels = {"direction": "out", "type": kind}
        return (
            REGISTRY.get_sample_value("syncd_ws_messages_total", labels) or 0,
            REGISTRY.get_sample_value("syncd_ws_bytes_total", labels) or 0,
        )

    update, awareness = bytes([0, 2, 3, 1, 2, 3]), bytes([1, 4, 0, 0, 0, 0])
    before = sent("update"), sent("awareness")
    for frame in (update, update, update, awareness, update, awareness):
        metrics.count_sent(frame)
    metrics.render(None)
    assert sent("update") == (before[0][0] + 4, before[0][1] + 4 * len(update))
    assert sent("awareness") == (before[1][0] + 2, before[1][1] + 2 * len(awareness))


def test_frame_tuples_sent_to_many_peers_are_counted_each_by_type_and_size() -> None:
    def sent(kind: str) -> tuple[float, float]:
        labels = {"direction": "out", "type": kind}
        return (
            REGISTRY.get_sample_value("syncd_ws_messages_total", labels) or 0,
            REGISTRY.get_sample_value("syncd_ws_bytes_total", labels) or 0,
        )

    update, awareness = bytes([0, 2, 3, 1, 2, 3]), bytes([1, 4, 0, 0, 0, 0, 9])
    both, alone = (update, awareness), (awareness,)
    before = sent("update"), sent("awareness")
    for frames in (both, both, alone, both, (update, update)):
        metrics.count_sent_all(frames)
    metrics.render(None)
    assert sent("update") == (before[0][0] + 5, before[0][1] + 5 * len(update))
    assert sent("awareness") == (before[1][0] + 4, before[1][1] + 4 * len(awareness))
