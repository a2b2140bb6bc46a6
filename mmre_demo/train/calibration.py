"""Calibration: a probability of 0.8 should be right about 80% of the time.

A fine-tuned classifier is overconfident; one temperature T, fitted on validation data by
minimising the negative log-likelihood, rescales its logits (Guo et al., 2017). It changes no label
(the argmax is the same), only the confidence. ECE (15 equal-width bins) measures what is left.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def _log_softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    return np.exp(_log_softmax(np.asarray(logits, dtype=np.float64) / temperature))


def nll(logits: np.ndarray, gold: Sequence[int], temperature: float = 1.0) -> float:
    """Mean negative log-likelihood of the gold labels under softmax(logits / T)."""
    logp = _log_softmax(np.asarray(logits, dtype=np.float64) / temperature)
    return float(-logp[np.arange(len(gold)), np.asarray(gold)].mean())


def fit_temperature(logits: np.ndarray, gold: Sequence[int], low: float = 0.05, high: float = 20.0,
                    iterations: int = 60) -> float:
    """The T minimising the NLL on (validation) logits: golden-section search over log T (NLL is
    convex in 1/T, so the minimum is unique)."""
    if len(gold) == 0:
        return 1.0
    a, b = np.log(low), np.log(high)
    ratio = (np.sqrt(5) - 1) / 2
    c, d = b - ratio * (b - a), a + ratio * (b - a)
    fc, fd = nll(logits, gold, np.exp(c)), nll(logits, gold, np.exp(d))
    for _ in range(iterations):
        if fc < fd:
            b, d, fd = d, c, fc
            c = b - ratio * (b - a)
            fc = nll(logits, gold, np.exp(c))
        else:
            a, c, fc = c, d, fd
            d = a + ratio * (b - a)
            fd = nll(logits, gold, np.exp(d))
    return float(np.exp((a + b) / 2))


def expected_calibration_error(probs: np.ndarray, gold: Sequence[int], bins: int = 15) -> float:
    """ECE: |accuracy - confidence| of the top label, averaged over equal-width confidence bins
    weighted by how many predictions fall in each."""
    probs = np.asarray(probs, dtype=np.float64)
    if len(probs) == 0:
        return 0.0
    confidence = probs.max(axis=1)
    correct = (probs.argmax(axis=1) == np.asarray(gold)).astype(np.float64)
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, bins - 1)
    ece = 0.0
    for b in range(bins):
        in_bin = which == b
        if in_bin.any():
            ece += in_bin.mean() * abs(correct[in_bin].mean() - confidence[in_bin].mean())
    return float(ece)


def calibration_report(logits: np.ndarray, gold: Sequence[int], temperature: float) -> dict[str, float]:
    """ECE and NLL before (T = 1) and after (fitted T) on the same examples."""
    return {
        "temperature": temperature,
        "ece_before": expected_calibration_error(softmax(logits), gold),
        "ece_after": expected_calibration_error(softmax(logits, temperature), gold),
        "nll_before": nll(logits, gold),
        "nll_after": nll(logits, gold, temperature),
        "n": len(gold),
    }
