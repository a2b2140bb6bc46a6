"""Paired bootstrap over captions: is model B's F1 different from model A's on the same data, beyond chance?

Why captions: a caption's triples are decided together (one text pass, one set of detected entities), so
they are not independent; resampling whole captions keeps that. Why paired: both models are scored on the
same resampled captions, so the caption-to-caption variation both share cancels in the difference.

Every score here is micro F1 from per-caption counts, an array of shape (captions, 3) with the columns
`FOUND`, `PREDICTED`, `GOLD` (micro F1 = 2 found / (predicted + gold), what `score_captions` and
`mnre_scores` compute). `mmre eval --compare-to` is the standard report (docs/evaluation.md); a candidate
ships only when the 95% interval of its end-to-end difference lies above 0.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal, get_args

import numpy as np

FOUND, PREDICTED, GOLD = 0, 1, 2  # the columns of a counts array
N_BOOT = 2000  # resamples of a paired comparison
BOOT_SEED = 0

Verdict = Literal["better", "worse", "noise"]
VERDICTS: tuple[str, ...] = get_args(Verdict)


def f1_of_counts(counts: np.ndarray) -> float:
    """Micro F1 of (captions, 3) counts; 0 when there is nothing predicted and nothing gold."""
    found, predicted, gold = np.asarray(counts).reshape(-1, 3).sum(axis=0)
    return float(2 * found / (predicted + gold)) if predicted + gold else 0.0


def f1_of_sums(sums: np.ndarray) -> np.ndarray:
    """Micro F1 of summed counts along the last axis (..., 3), vectorised (0 where the denominator is 0)."""
    sums = np.asarray(sums, dtype=np.float64)
    denominator = sums[..., PREDICTED] + sums[..., GOLD]
    return np.divide(2 * sums[..., FOUND], denominator, out=np.zeros_like(denominator), where=denominator > 0)


def resample_indices(n: int, n_boot: int = N_BOOT, seed: int = BOOT_SEED) -> np.ndarray:
    """(n_boot, n) caption indices drawn with replacement. Python's `random.Random(seed).randrange`, in the
    order `benchmarks/paired_bootstrap_e2e.py` always drew them, so its earlier reports reproduce."""
    rng = random.Random(seed)
    return np.array([[rng.randrange(n) for _ in range(n)] for _ in range(n_boot)], dtype=np.int64).reshape(n_boot, n)


@dataclass(frozen=True)
class PairedBootstrap:
    """B against A on the same captions: both F1s, B - A, its 95% interval and the share of resamples in
    which B is not lower. `verdict`: "better" / "worse" when the interval excludes 0, else "noise"."""

    f1_a: float
    f1_b: float
    difference: float
    low: float
    high: float
    share_b_not_lower: float
    n_captions: int
    n_boot: int

    @property
    def verdict(self) -> Verdict:
        return "better" if self.low > 0 else "worse" if self.high < 0 else "noise"

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "verdict": self.verdict}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PairedBootstrap:
        return cls(**{k: d[k] for k in ("f1_a", "f1_b", "difference", "low", "high", "share_b_not_lower",
                                        "n_captions", "n_boot")})

    def line(self, what: str, a: str = "A", b: str = "B") -> str:
        """One line for a person: both F1s, the difference, its interval and what it means."""
        meaning = {"noise": "noise: the interval includes 0", "better": f"{b} better: the interval is above 0",
                   "worse": f"{b} worse: the interval is below 0"}[self.verdict]
        return (f"{what}: F1 {a} {self.f1_a:.4f}, {b} {self.f1_b:.4f}; {b} - {a} {self.difference:+.4f}, "
                f"95% interval [{self.low:+.4f}, {self.high:+.4f}] over {self.n_captions} captions "
                f"({self.n_boot} resamples): {meaning}")


def paired_bootstrap(a: np.ndarray, b: np.ndarray, n_boot: int = N_BOOT, seed: int = BOOT_SEED) -> PairedBootstrap:
    """B - A in micro F1, resampling captions (rows of the two (captions, 3) count arrays, in the same order)."""
    a, b = np.asarray(a).reshape(-1, 3), np.asarray(b).reshape(-1, 3)
    if a.shape != b.shape:
        raise ValueError(f"the two count arrays are not of the same captions: {len(a)} against {len(b)}")
    if not len(a):
        raise ValueError("no captions to compare")
    idx = resample_indices(len(a), n_boot, seed)
    diffs = np.sort(f1_of_sums(b[idx].sum(axis=1)) - f1_of_sums(a[idx].sum(axis=1)))
    tail = max(1, round(0.025 * n_boot))  # 2,000 resamples: the 50th lowest and the 50th highest difference
    f1_a, f1_b = f1_of_counts(a), f1_of_counts(b)
    return PairedBootstrap(f1_a, f1_b, f1_b - f1_a, float(diffs[tail - 1]), float(diffs[n_boot - tail]),
                           float((diffs >= 0).mean()), len(a), n_boot)


def record_counts(record: dict[str, Any]) -> tuple[int, int, int]:
    """(found, predicted, gold) of one caption of a `mmre eval --detect-entities --records` file: gold = its
    distinct relation triples (`triple_key`, as `score_captions` counts them), found = gold - misses,
    predicted = found + false positives."""
    from mmre_demo.train.end_to_end import triple_key

    gold = len({triple_key(h, rel, t) for h, rel, t in record["gold"] if rel != "None"})
    found = gold - len(record["misses"])
    return found, found + len(record["false_positives"]), gold


def records_counts(records: Sequence[dict[str, Any]]) -> np.ndarray:
    return np.array([record_counts(r) for r in records], dtype=np.int64).reshape(-1, 3)
