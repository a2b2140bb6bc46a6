"""Filtered rank-based evaluation (both sides) with PyKEEN's RankBasedEvaluator."""

from __future__ import annotations

import torch
from pykeen.evaluation import RankBasedEvaluator
from pykeen.models import Model

METRIC_KEYS = {
    "mrr": "both.realistic.inverse_harmonic_mean_rank",
    "hits@1": "both.realistic.hits_at_1",
    "hits@3": "both.realistic.hits_at_3",
    "hits@10": "both.realistic.hits_at_10",
}


def evaluate(model: Model, triples: torch.Tensor, filter_triples: list[torch.Tensor],
             batch_size: int = 256) -> dict[str, float]:
    """MRR and Hits@1/3/10, filtered by `filter_triples` (train + validation) and the evaluated triples.

    Both sides: the head and the tail of every triple are ranked against all entities.
    """
    if triples.shape[0] == 0:
        raise ValueError("no triples to evaluate")
    evaluator = RankBasedEvaluator(filtered=True)
    result = evaluator.evaluate(
        model, triples, additional_filter_triples=[t for t in filter_triples if t.shape[0]],
        batch_size=batch_size, use_tqdm=False,
    )
    out = {k: float(result.get_metric(v)) for k, v in METRIC_KEYS.items()}
    out["num_triples"] = int(triples.shape[0])
    return out
