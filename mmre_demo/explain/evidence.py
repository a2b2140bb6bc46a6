"""From the relation model's attention to evidence a person can read: where each entity looked in the
image (a heatmap over the vision grid, relative to this image) and which caption words the pair's
representation attended to (word weights summing to 1)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from mmre_demo.prediction import TokenWeight

if TYPE_CHECKING:
    import torch

    from mmre_demo.model.fusion import VisualTokens
    from mmre_demo.model.relation import RelationOutput

_WORD = re.compile(r"\S+")


@dataclass
class PairEvidence:
    image_heatmap: np.ndarray | None = None  # (h, w) in [0, 1]: the pair (head and tail averaged)
    head_heatmap: np.ndarray | None = None
    tail_heatmap: np.ndarray | None = None
    token_weights: list[TokenWeight] = field(default_factory=list)


def word_weights(caption: str, token_spans: list[tuple[int, int]], weights: np.ndarray) -> list[TokenWeight]:
    """Sum word-piece attention into the caption's whitespace words; normalise to 1."""
    words = [(m.group(), m.start(), m.end()) for m in _WORD.finditer(caption)]
    acc = np.zeros(len(words))
    starts = np.array([w[1] for w in words])
    for (s, _e), w in zip(token_spans, weights):
        if s < 0 or not len(words):
            continue
        k = int(np.searchsorted(starts, s, side="right") - 1)
        if k >= 0:
            acc[k] += float(w)
    total = acc.sum()
    if total > 0:
        acc = acc / total
    return [TokenWeight(t, s, e, float(a)) for (t, s, e), a in zip(words, acc)]


def attention_heatmap(weights: torch.Tensor, hw: tuple[int, int]) -> np.ndarray:
    """Attention over the grid cells, rescaled to [0, 1] (relative: 1 = where the entity looked most)."""
    m = weights.detach().float().cpu().numpy().reshape(hw)
    lo, hi = float(m.min()), float(m.max())
    return (m - lo) / (hi - lo) if hi > lo else np.zeros_like(m)


def pair_evidence(output: RelationOutput, row: int, caption: str, token_spans: list[tuple[int, int]],
                  visual: VisualTokens | None) -> PairEvidence:
    """Evidence of the pair in `row` of a batch run with `explain=True` (heatmaps only with an image)."""
    ev = PairEvidence()
    if output.token_attention is not None:
        ev.token_weights = word_weights(caption, token_spans, output.token_attention[row].cpu().numpy())
    if visual is not None and output.entity_attention is not None:
        n, hw = visual.n_spatial, visual.grid_hw
        ev.head_heatmap = attention_heatmap(output.entity_attention[row, 0, :n], hw)
        ev.tail_heatmap = attention_heatmap(output.entity_attention[row, 1, :n], hw)
        ev.image_heatmap = attention_heatmap(output.entity_attention[row, :, :n].mean(0), hw)
    return ev
