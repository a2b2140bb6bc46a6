"""Calibration: a probability of 0.8 should be right about 80% of the time.

A fine-tuned classifier is overconfident, and training on many `None` pairs (and few of some relations)
shifts how likely it thinks each label is. Fitted on validation data by minimising the negative
log-likelihood: a temperature T that rescales all logits (temperature scaling, Guo et al. 2017) and an
offset per label (the bias of vector scaling): the `None` offset free, the relations' offsets held near 0
by an L2 penalty, since a relation has only a few dozen validation pairs. ECE (15 equal-width bins, top
label) measures what is left. On MNRE val, fitted on one half and scored on the other (5 splits), the
per-label offsets against a `None` offset alone: gold-pair F1 0.541 -> 0.552, ECE 0.055 -> 0.045
(`weights/relation/README.md`, "Calibration").
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
                    iterations: int = 40) -> float:
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


def _shift(logits: np.ndarray, none_id: int, offset: float) -> np.ndarray:
    out = np.array(logits, dtype=np.float64, copy=True)
    out[:, none_id] += offset
    return out


OFFSET_PENALTY = 1.0  # L2 on the relations' offsets, per validation pair (0.3 / 1 / 3 compared: 1 best held out)


def fit_none_offset(logits: np.ndarray, gold: Sequence[int], none_id: int = 0,
                    offsets: Sequence[float] = tuple(np.arange(-8.0, 8.001, 0.5))) -> tuple[float, float]:
    """(None offset, temperature) minimising the NLL: a grid over the offset, refined twice around the
    best, with the best temperature for each offset."""
    def best_at(grid: Sequence[float]) -> tuple[float, float, float]:
        fits = []
        for c in grid:
            shifted = _shift(logits, none_id, c)
            t = fit_temperature(shifted, gold)
            fits.append((nll(shifted, gold, t), float(c), t))
        loss, c, t = min(fits)
        return c, t, loss

    c, _, _ = best_at(offsets)
    step = float(offsets[1] - offsets[0]) if len(offsets) > 1 else 0.5
    c, _, _ = best_at(np.linspace(c - step, c + step, 21))
    c, t, _ = best_at(np.linspace(c - step / 10, c + step / 10, 11))
    return round(c, 4), t


def fit_calibration(logits: np.ndarray, gold: Sequence[int], none_id: int = 0,
                    penalty: float = OFFSET_PENALTY) -> tuple[np.ndarray, float]:
    """(an offset per label, temperature) minimising the NLL + `penalty` * (sum of the relations' squared
    offsets) / n, by L-BFGS from the best None offset and temperature (`fit_none_offset`)."""
    import torch

    offset, temperature = fit_none_offset(logits, gold, none_id)
    if len(gold) == 0:
        return np.zeros(np.shape(logits)[-1]), temperature
    x = torch.from_numpy(np.asarray(logits, dtype=np.float64))
    y = torch.as_tensor(np.asarray(gold), dtype=torch.long)
    bias = torch.zeros(x.shape[1], dtype=torch.float64)
    bias[none_id] = offset
    bias.requires_grad_(True)
    log_t = torch.tensor(float(np.log(temperature)), dtype=torch.float64, requires_grad=True)
    penalised = torch.ones(x.shape[1], dtype=torch.float64)
    penalised[none_id] = 0.0
    optimizer = torch.optim.LBFGS([bias, log_t], max_iter=200, line_search_fn="strong_wolfe")

    def objective() -> torch.Tensor:
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy((x + bias) / log_t.exp(), y)
        loss = loss + penalty * (penalised * bias**2).sum() / len(y)
        loss.backward()
        return loss

    optimizer.step(objective)
    return np.round(bias.detach().numpy(), 4), float(log_t.detach().exp())


def calibrated(logits: np.ndarray, offsets: np.ndarray, temperature: float) -> np.ndarray:
    """The calibrated probabilities: softmax((logits + offsets) / T)."""
    return softmax(np.asarray(logits, dtype=np.float64) + np.asarray(offsets, dtype=np.float64), temperature)


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


def ece_noise_floor(probs: np.ndarray, bins: int = 15, draws: int = 100, seed: int = 0) -> float:
    """The ECE a *perfectly* calibrated model with these probabilities would show on this many
    examples: labels drawn from the probabilities themselves. ECE is biased upward on small sets,
    so a measured ECE reads against this floor."""
    probs = np.asarray(probs, dtype=np.float64)
    if len(probs) == 0:
        return 0.0
    rng = np.random.default_rng(seed)
    cumulative = np.cumsum(probs / probs.sum(axis=1, keepdims=True), axis=1)
    values = []
    for _ in range(draws):
        u = rng.random((len(probs), 1))
        labels = np.minimum((u > cumulative).sum(axis=1), probs.shape[1] - 1)
        values.append(expected_calibration_error(probs, labels, bins))
    return float(np.mean(values))


def calibration_report(logits: np.ndarray, gold: Sequence[int], none_id: int, offsets: np.ndarray,
                       temperature: float, folds: int = 2, seed: int = 0) -> dict[str, float]:
    """ECE and NLL of the raw softmax ("before") and of the calibrated probabilities ("after"), on the
    examples the calibration was fitted on; `ece_held_out`: the mean ECE of `folds` refits, each
    scored on the part it was not fitted on (the honest estimate for unseen data); and the noise
    floors of both (`ece_noise_floor`), what a perfectly calibrated model would show there."""
    shifted = np.asarray(logits, dtype=np.float64) + np.asarray(offsets, dtype=np.float64)
    gold = np.asarray(gold)
    held_out, held_out_floor = [], []
    order = np.random.default_rng(seed).permutation(len(gold))
    for part in np.array_split(order, folds) if len(gold) >= 2 * folds else []:
        rest = np.setdiff1d(order, part)
        c, t = fit_calibration(logits[rest], gold[rest], none_id)
        probs = calibrated(logits[part], c, t)
        held_out.append(expected_calibration_error(probs, gold[part]))
        held_out_floor.append(ece_noise_floor(probs))
    after = softmax(shifted, temperature)
    return {
        "none_offset": float(np.asarray(offsets)[none_id]),
        "temperature": temperature,
        "ece_before": expected_calibration_error(softmax(logits), gold),
        "ece_after": expected_calibration_error(after, gold),
        "ece_noise_floor": ece_noise_floor(after),
        "ece_held_out": float(np.mean(held_out)) if held_out else float("nan"),
        "ece_held_out_noise_floor": float(np.mean(held_out_floor)) if held_out_floor else float("nan"),
        "nll_before": nll(logits, gold),
        "nll_after": nll(shifted, gold, temperature),
        "n": len(gold),
    }
