"""A threshold that travels: the stable rule picks a broad plateau over a narrow spike."""

from __future__ import annotations

import numpy as np
import pytest

from mmre_demo.train.metrics import best_gold_threshold, gold_pair_counts, mnre_scores, stable_gold_threshold
from mmre_demo.train.thresholds import STABLE_GRID, ThresholdCurve, stable_threshold


def counts_for_curve(curve, n: int = 200):
    """Captions with one gold triple and one prediction each; the first `n * F1(t)` are right at t, so the
    micro F1 at t is exactly `curve(t)`."""
    def counts(t: float) -> np.ndarray:
        found = round(n * curve(t))
        return np.array([(int(i < found), 1, 1) for i in range(n)])
    return counts


def spike_beside_plateau(t: float) -> float:
    if abs(t - 0.575) < 1e-6:
        return 0.66  # one threshold, far above its neighbours
    if 0.25 - 1e-6 <= t <= 0.40 + 1e-6:
        return 0.60  # broad
    return 0.45


def test_the_stable_threshold_is_on_the_plateau_not_the_spike():
    curve = stable_threshold(counts_for_curve(spike_beside_plateau), n_boot=50)
    assert curve.best_single == pytest.approx(0.575)  # the single best point, what the old rule took
    assert 0.25 <= curve.chosen <= 0.40
    assert curve.f1_at(curve.chosen) == pytest.approx(0.60)


def test_a_symmetric_bump_is_chosen_at_its_middle():
    curve = stable_threshold(counts_for_curve(lambda t: 0.6 - abs(t - 0.45)), n_boot=0)
    assert curve.chosen == pytest.approx(0.45) and curve.best_single == pytest.approx(0.45)


def test_the_grid_runs_from_020_to_070_and_the_ends_are_smoothed_with_points_beyond_them():
    assert STABLE_GRID[0] == 0.2 and STABLE_GRID[-1] == 0.7 and len(STABLE_GRID) == 21
    seen = []

    def counts(t: float) -> np.ndarray:
        seen.append(round(t, 3))
        return np.array([(1, 1, 1)])

    stable_threshold(counts, n_boot=0)
    assert min(seen) == pytest.approx(0.15) and max(seen) == pytest.approx(0.75)


def test_the_bootstrap_band_holds_the_curve_and_is_seeded():
    rng = np.random.default_rng(0)
    found = rng.random(300)

    def counts(t: float) -> np.ndarray:
        return np.stack([(found > t).astype(int), np.ones(300, int), np.ones(300, int)], axis=1)

    a, b = (stable_threshold(counts, n_boot=100, seed=4) for _ in range(2))
    assert a == b
    assert all(lo <= f <= hi for lo, f, hi in zip(a.low, a.f1, a.high))
    assert a.chosen_range[0] <= a.chosen <= a.chosen_range[1]


def test_a_curve_survives_its_dict_form():
    curve = stable_threshold(counts_for_curve(spike_beside_plateau), n_boot=20)
    again = ThresholdCurve.from_dict(curve.to_dict())
    assert (again.chosen, again.best_single, again.thresholds) == (curve.chosen, curve.best_single, curve.thresholds)
    assert np.allclose(again.f1, curve.f1, atol=1e-4)
    assert "<- stable" in curve.table() and "<- best single" in curve.table()


def test_gold_pair_counts_give_mnre_scores_f1():
    rng = np.random.default_rng(1)
    probs = rng.dirichlet(np.ones(4), size=60)
    gold = rng.integers(0, 4, size=60)
    captions = np.repeat(np.arange(20), 3)
    from mmre_demo.decoding import relation_decisions

    for t in (0.3, 0.5):
        counts = gold_pair_counts(probs, gold, captions, t, none_id=0)
        found, predicted, n_gold = counts.sum(0)
        f1 = mnre_scores(gold.tolist(), relation_decisions(probs, t, 0).tolist(), 0)["f1"]
        assert counts.shape == (20, 3) and 2 * found / (predicted + n_gold) == pytest.approx(f1)
    stable = stable_gold_threshold(probs, gold, captions, none_id=0, n_boot=10)
    assert stable.chosen in STABLE_GRID
    assert best_gold_threshold(probs, gold.tolist(), 0)[0] >= 0.05  # the single-point rule stays, for comparison
