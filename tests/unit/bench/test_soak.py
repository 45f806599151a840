"""The soak's verdict reads the workers' latency histogram: its buckets must resolve the
real-time target (a p99 under 2 s), and the verdict must hold against the store's figure."""

from __future__ import annotations

import numpy as np

from bench.soak import P99_TARGET_S, histogram_quantile, is_sustained
from core.metrics import LATENCY_BUCKETS


def _counts(latencies: np.ndarray, edges: tuple[float, ...]) -> np.ndarray:
    """Per-bucket counts as Prometheus keeps them: a value goes to the first edge >= it."""
    index = np.searchsorted(np.asarray(edges), latencies, side="left")
    return np.bincount(index, minlength=len(edges) + 1)


def _soak_like(seed: int) -> np.ndarray:
    """Latencies of a real-time fleet whose inserts carry two ticks: the older tick waits
    ~1.4-1.7 s, the newer ~0.4-0.7 s (as `stored_at - ts` showed at 600 devices)."""
    rng = np.random.default_rng(seed)
    older = rng.uniform(1.40, 1.70, 50_000)
    newer = rng.uniform(0.40, 0.70, 50_000)
    return np.concatenate([older, newer])


def test_the_buckets_put_the_p99_near_the_measured_one() -> None:
    for seed in range(3):
        latencies = _soak_like(seed)
        measured = float(np.quantile(latencies, 0.99))
        estimated = histogram_quantile(0.99, _counts(latencies, LATENCY_BUCKETS), LATENCY_BUCKETS)
        assert abs(estimated - measured) < 0.1, (estimated, measured)
        assert estimated < P99_TARGET_S


def test_buckets_of_half_a_second_near_the_target_misread_the_same_fleet() -> None:
    # the edges before: 1.5 then 2 (the estimate sits near the top of a bucket half full)
    coarse = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 1.5, 2, 2.5, 5, 10)
    latencies = _soak_like(0)
    estimated = histogram_quantile(0.99, _counts(latencies, coarse), coarse)
    assert estimated > 1.95 > float(np.quantile(latencies, 0.99)) + 0.2


def test_the_buckets_keep_their_edges_for_dashboards_and_rules() -> None:
    assert list(LATENCY_BUCKETS) == sorted(LATENCY_BUCKETS)
    for edge in (0.5, 1, 1.5, 2, 2.5, 5, 30, 600, 86400):  # queried or alerted on
        assert edge in LATENCY_BUCKETS


def test_sustained_needs_both_p99_figures_under_the_target() -> None:
    assert is_sustained(1.8, 1.7, True, 100, 100)
    assert not is_sustained(2.01, 1.7, True, 100, 100)
    assert not is_sustained(1.8, 2.3, True, 100, 100)
    assert not is_sustained(1.8, 1.7, False, 100, 100)
    assert not is_sustained(1.8, 1.7, True, 99, 100)
