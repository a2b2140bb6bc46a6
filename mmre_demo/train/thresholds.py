"""A threshold that travels: the middle of a broad high stretch of the F1 curve, not its single best point.

Why: the best single threshold on a finite set sits on that set's noise. The shipped model's end-to-end
curve on MNRE val is a spike at the chosen 0.50 (0.4295 at 0.45, 0.4371 at 0.50, 0.4185 at 0.55); on
new data the model's probabilities shift a little, and a spike's neighbours are what one gets.

The rule (`stable_threshold`): F1 is computed at every threshold of the grid and at `half_width` beyond
each end; each threshold is scored by the **mean F1 of the thresholds within `half_width` of it** (a moving
average, 0.05 each side: five points on the 0.025 grid); the best smoothed score wins. Averaging F1 over
bootstrap resamples of the captions instead was considered and not used: the mean of a resampled F1 is
(nearly) the F1 itself at every threshold, so that curve keeps the spike. The bootstrap is kept for what it
does tell: the 95% band of F1 at each threshold and the spread of the threshold the rule would pick on a
resample (`ThresholdCurve`; `mmre eval --curve` prints it).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from mmre_demo.train.bootstrap import f1_of_sums

STABLE_GRID: tuple[float, ...] = tuple(round(0.20 + 0.025 * i, 3) for i in range(21))  # 0.20, 0.225, ..., 0.70
SMOOTHING_HALF_WIDTH = 0.05  # thresholds this close count in a threshold's smoothed F1
BAND_N_BOOT = 200  # resamples for the band and the spread of the pick
THRESHOLD_SEED = 0

CaptionCounts = Callable[[float], np.ndarray]  # threshold -> (captions, 3) counts: found, predicted, gold


@dataclass(frozen=True)
class ThresholdCurve:
    """F1 over the grid on one data set, the smoothed curve the pick is made on, and the bootstrap's view.

    `chosen`: the stable threshold; `best_single`: the single best point (the old rule), for comparison;
    `low` / `high`: the 95% band of F1 at each threshold over resampled captions; `chosen_range`: the 2.5% and
    97.5% points of the threshold the rule picks on a resample."""

    thresholds: tuple[float, ...]
    f1: tuple[float, ...]
    smoothed: tuple[float, ...]
    low: tuple[float, ...]
    high: tuple[float, ...]
    chosen: float
    best_single: float
    chosen_range: tuple[float, float]
    half_width: float
    n_captions: int
    n_boot: int

    def f1_at(self, threshold: float) -> float:
        return self.f1[self._index(threshold)]

    def _index(self, threshold: float) -> int:
        return int(np.argmin(np.abs(np.asarray(self.thresholds) - threshold)))

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for key in ("f1", "smoothed", "low", "high"):
            d[key] = [round(v, 4) for v in d[key]]
        d["thresholds"], d["chosen_range"] = list(self.thresholds), list(self.chosen_range)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ThresholdCurve:
        return cls(tuple(d["thresholds"]), tuple(d["f1"]), tuple(d["smoothed"]), tuple(d["low"]), tuple(d["high"]),
                   float(d["chosen"]), float(d["best_single"]), tuple(d["chosen_range"]), float(d["half_width"]),
                   int(d["n_captions"]), int(d["n_boot"]))

    def table(self) -> str:
        """The curve as text rows: threshold, F1, smoothed F1, the 95% band; the picks marked."""
        rows = [f"{'threshold':>9} {'F1':>7} {'smoothed':>8} {'95% band':>17}"]
        for t, f, s, lo, hi in zip(self.thresholds, self.f1, self.smoothed, self.low, self.high):
            marks = ("  <- stable" if t == self.chosen else "") + ("  <- best single" if t == self.best_single else "")
            rows.append(f"{t:9.3f} {f:7.4f} {s:8.4f}  [{lo:.4f}, {hi:.4f}]{marks}")
        rows.append(f"stable threshold {self.chosen:.3f} (on resampled captions: {self.chosen_range[0]:.3f}"
                    f"-{self.chosen_range[1]:.3f}); best single point {self.best_single:.3f}; "
                    f"{self.n_captions} captions, {self.n_boot} resamples")
        return "\n".join(rows)


def _with_margins(grid: Sequence[float], half_width: float) -> tuple[np.ndarray, slice]:
    """The grid extended by `half_width` each side in its own step (within [0, 1]), and where the grid is."""
    grid = np.asarray(sorted(grid), dtype=np.float64)
    step = float(np.min(np.diff(grid))) if len(grid) > 1 else half_width or 1.0
    n_extra = int(np.floor(half_width / step + 1e-6)) if half_width > 0 else 0
    before = [grid[0] - step * k for k in range(n_extra, 0, -1) if grid[0] - step * k >= -1e-9]
    after = [grid[-1] + step * k for k in range(1, n_extra + 1) if grid[-1] + step * k <= 1 + 1e-9]
    full = np.round(np.concatenate([before, grid, after]), 6)
    return full, slice(len(before), len(before) + len(grid))


def _smooth(f1: np.ndarray, thresholds: np.ndarray, half_width: float) -> np.ndarray:
    """Mean over the thresholds within `half_width` of each one (last axis = thresholds)."""
    near = (np.abs(thresholds[:, None] - thresholds[None, :]) <= half_width + 1e-9).astype(np.float64)
    return f1 @ (near / near.sum(axis=0, keepdims=True))


def stable_threshold(caption_counts: CaptionCounts, grid: Sequence[float] = STABLE_GRID,
                     half_width: float = SMOOTHING_HALF_WIDTH, n_boot: int = BAND_N_BOOT,
                     seed: int = THRESHOLD_SEED) -> ThresholdCurve:
    """The threshold of `grid` whose neighbourhood (± `half_width`) has the highest mean F1 (module doc).

    `caption_counts(t)` gives each caption's (found, predicted, gold) at threshold t, the same captions in the
    same order at every t (`end_to_end.caption_counts`, `metrics.gold_pair_counts`). Ties go to the lower
    threshold."""
    thresholds, inner = _with_margins(grid, half_width)
    counts = np.stack([np.asarray(caption_counts(float(t)), dtype=np.int64).reshape(-1, 3) for t in thresholds],
                      axis=1)  # (captions, thresholds, 3)
    f1 = f1_of_sums(counts.sum(axis=0))
    smoothed = _smooth(f1, thresholds, half_width)
    grid_t = thresholds[inner]
    chosen = float(grid_t[int(np.argmax(smoothed[inner]))])
    best_single = float(grid_t[int(np.argmax(f1[inner]))])
    n = counts.shape[0]
    if n and n_boot:
        idx = np.random.default_rng(seed).integers(0, n, size=(n_boot, n))
        boot = np.stack([f1_of_sums(counts[row].sum(axis=0)) for row in idx])  # (n_boot, thresholds)
        picks = grid_t[np.argmax(_smooth(boot, thresholds, half_width)[:, inner], axis=1)]
        low, high = np.percentile(boot[:, inner], [2.5, 97.5], axis=0)
        chosen_range = (float(np.quantile(picks, 0.025, method="lower")),
                        float(np.quantile(picks, 0.975, method="higher")))
    else:
        low = high = f1[inner]
        chosen_range = (chosen, chosen)
    return ThresholdCurve(tuple(float(t) for t in grid_t), tuple(float(v) for v in f1[inner]),
                          tuple(float(v) for v in smoothed[inner]), tuple(float(v) for v in low),
                          tuple(float(v) for v in high), chosen, best_single,
                          (round(chosen_range[0], 4), round(chosen_range[1], 4)), half_width, n, n_boot)
