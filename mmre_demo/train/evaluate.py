"""Scoring a relation model on MNRE-format data: with gold entities (the MNRE convention), and end
to end with detected entities (the product's real use)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from mmre_demo.data.labels import NONE_LABEL, constrain_to_types
from mmre_demo.data.mnre import MnreExample
from mmre_demo.decoding import relation_decisions
from mmre_demo.model.batching import ImageCache, predict_logits, prepare_items
from mmre_demo.model.relation import RelationModel
from mmre_demo.train.metrics import confusion_matrix, mnre_scores, per_relation_report


def tagged_types(tagger: Any, examples: list[MnreExample]) -> list[tuple[str, str]]:
    """(head type, tail type) of each example's gold spans, read off the NER tagger's entities on
    the caption (the detected entity overlapping the span most; "" when none overlaps).
    The gold relation is never looked at."""
    cache: dict[str, list] = {}
    out = []
    for ex in examples:
        if ex.caption not in cache:
            cache[ex.caption] = tagger.tag(ex.caption)
        detected = cache[ex.caption]
        out.append((_overlapping_type(ex.head, detected), _overlapping_type(ex.tail, detected)))
    return out


def _overlapping_type(span: Any, detected: list) -> str:
    """The type of the detected entity that overlaps `span` most ("" when none does)."""
    best, overlap = "", 0
    for ent in detected:
        o = min(span.end, ent.end) - max(span.start, ent.start)
        if o > overlap:
            best, overlap = ent.type, o
    return best


def constrain_by_types(probs: np.ndarray, labels: list[str], types: list[tuple[str, str]]) -> np.ndarray:
    """Zero the relations whose implied types contradict known entity types; renormalise (row by row)."""
    if not len(probs):
        return probs
    return np.stack([constrain_to_types(row, labels, h, t) for row, (h, t) in zip(probs, types)])


def evaluate_gold_entities(model: RelationModel, examples: list[MnreExample],
                           images_dir: str | Path | None = None, use_images: bool = True,
                           entity_types: list[tuple[str, str]] | None = None) -> dict[str, Any]:
    """MNRE micro P/R/F1 (non-None), accuracy, per-relation report and confusion matrix.

    Examples whose image is not in `images_dir` are scored text-only and still counted.
    The decision rule is the model's: a pair's best relation counts when its calibrated probability
    reaches `gold_threshold` (tuned on validation at training time); with `entity_types` (e.g. from
    `tagged_types`), the type constraint is applied as in the pipeline.
    """
    cache = ImageCache(model)
    if use_images and images_dir:
        cache.add_folder(images_dir, {e.img_id for e in examples if e.img_id})
    items = prepare_items(model, examples, cache)
    logits = predict_logits(model, items, cache)
    probs = model.probabilities(torch.from_numpy(logits)).numpy()
    if entity_types is not None:
        probs = constrain_by_types(probs, model.config.labels, entity_types)
    none_id = model.config.labels.index(NONE_LABEL)
    pred = relation_decisions(probs, model.config.gold_threshold, none_id).tolist()
    gold = [ex.label_id for ex in examples]
    scores = mnre_scores(gold, pred, none_id=none_id)
    scores["n_with_image"] = sum(it.n_rows for it in items if it.image_key is not None)
    return {
        "scores": scores,
        "report": per_relation_report(gold, pred, model.config.labels),
        "confusion": confusion_matrix(gold, pred, model.config.num_labels),
        "pred": pred,
        "gold": gold,
        "probs": probs,  # calibrated (and type-constrained): the threshold curve and the paired bootstrap read them
    }


def image_ablation(model: RelationModel, examples: list[MnreExample], images_dir: str | Path) -> dict[str, Any]:
    """F1 on the examples whose images are available, with and without the images."""
    cache = ImageCache(model)
    cache.add_folder(images_dir, {e.img_id for e in examples if e.img_id})
    subset = [e for e in examples if e.img_id in cache.entries]
    with_img = evaluate_gold_entities(model, subset, images_dir, use_images=True)["scores"]
    without = evaluate_gold_entities(model, subset, images_dir, use_images=False)["scores"]
    return {"n": len(subset), "with_images": with_img, "without_images": without}


def summary_line(scores: dict[str, float]) -> dict[str, float]:
    keys = ("precision", "recall", "f1", "accuracy", "n", "n_with_image")
    return {k: (round(float(scores[k]), 4) if isinstance(scores[k], float) else scores[k]) for k in keys if k in scores}


__all__ = ["evaluate_gold_entities", "image_ablation", "summary_line"]
