"""The NumPy side of the CRF: constrained Viterbi decoding and forward-backward marginals of one
sentence (for one caption the per-op overhead of torch dominates; measured)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from mmre_demo.model.ner.bio import allowed_transitions


def viterbi_bio(scores: torch.Tensor, tags: Sequence[str], transitions: torch.Tensor | None = None,
                start_scores: torch.Tensor | None = None, end_scores: torch.Tensor | None = None) -> list[int]:
    """Best tag path over (n_words, n_tags) scores under the BIO constraints (+ learned CRF scores).

    NumPy rather than torch: for one caption the per-op overhead of torch dominates (measured).
    """
    n = scores.shape[0]
    if n == 0:
        return []
    allowed, start_ok = allowed_transitions(tags)
    trans = np.where(allowed.numpy(), 0.0, -np.inf)
    if transitions is not None:
        trans = trans + as_float64(transitions)
    em = as_float64(scores)
    score = em[0] + np.where(start_ok.numpy(), 0.0, -np.inf)
    if start_scores is not None:
        score = score + as_float64(start_scores)
    back = []
    for t in range(1, n):
        cand = score[:, None] + trans  # (from, to)
        idx = cand.argmax(0)  # best previous tag for each tag
        score = cand[idx, np.arange(len(idx))] + em[t]
        back.append(idx)
    if end_scores is not None:
        score = score + as_float64(end_scores)
    path = [int(score.argmax())]
    for idx in reversed(back):
        path.append(int(idx[path[-1]]))
    return path[::-1]


def as_float64(x: torch.Tensor) -> np.ndarray:
    return x.detach().float().cpu().numpy().astype(np.float64)


def _logsumexp(x: np.ndarray, axis: int) -> np.ndarray:
    m = x.max(axis=axis, keepdims=True)
    return (m + np.log(np.exp(x - m).sum(axis=axis, keepdims=True))).squeeze(axis)


def crf_marginals(emissions: np.ndarray, transitions: np.ndarray, start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """Marginal probabilities P(tag at word t | sentence) of a linear-chain CRF, by forward-backward (log space)."""
    em = emissions
    n = em.shape[0]
    alpha, beta = np.zeros_like(em), np.zeros_like(em)
    alpha[0] = start + em[0]
    for t in range(1, n):
        alpha[t] = _logsumexp(alpha[t - 1][:, None] + transitions, 0) + em[t]
    beta[n - 1] = end
    for t in range(n - 2, -1, -1):
        beta[t] = _logsumexp(transitions + (em[t + 1] + beta[t + 1])[None, :], 1)
    log_z = _logsumexp(alpha[n - 1] + end, 0)
    return np.exp(alpha + beta - log_z)
