"""The bulk latency histogram exposes what a prometheus_client Histogram fed one value at a time
exposes (same buckets, counts and sum)."""

from __future__ import annotations

import numpy as np
from prometheus_client import CollectorRegistry, Histogram, generate_latest

from streaming.serving.ops import BulkHistogram, ScorerMetrics

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


def _samples(text: bytes) -> dict[str, float]:
    out = {}
    for line in text.decode().splitlines():
        if line.startswith("#") or "_created" in line:
            continue
        name, value = line.rsplit(" ", 1)
        out[name] = float(value)
    return out


def test_bulk_histogram_equals_one_at_a_time() -> None:
    rng = np.random.default_rng(0)
    values = np.concatenate([rng.exponential(0.3, 5000), np.array(BUCKETS), [0.0, 100.0]])
    ref_reg, bulk_reg = CollectorRegistry(), CollectorRegistry()
    ref = Histogram("lat_seconds", "doc", buckets=BUCKETS, registry=ref_reg)
    for v in values:
        ref.observe(float(v))
    bulk = BulkHistogram("lat_seconds", "doc", buckets=BUCKETS)
    bulk_reg.register(bulk)
    bulk.observe_many(values[:1000])
    bulk.observe_many(values[1000:])
    bulk.observe_many(np.empty(0))
    got, want = _samples(generate_latest(bulk_reg)), _samples(generate_latest(ref_reg))
    assert got.keys() == want.keys()
    for k in want:
        assert abs(got[k] - want[k]) <= 1e-9 * max(1.0, abs(want[k])), k


def test_scorer_metrics_expose_the_latency_histogram() -> None:
    m = ScorerMetrics()
    m.latency.observe_many(np.array([0.02, 0.3]))
    text = generate_latest(m.registry).decode()
    assert 'edaml_scorer_latency_seconds_bucket{le="0.025"} 1.0' in text
    assert "edaml_scorer_latency_seconds_count 2.0" in text
