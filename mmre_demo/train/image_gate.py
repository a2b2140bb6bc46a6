"""The image gate: how much of the image pathway a saved model uses (`RelationConfig.image_weight`).

The image pathway is trained from the few MNRE lines whose image we have (the 34 sample images), so it may
move decisions it has no evidence for. The gate scales the image term of the fusion (0 = the text alone,
exactly; 1 = as trained) and is chosen on dev lines that have an image: the largest weight whose gold-pair
F1 and accuracy are at least those of the text alone. With fewer than `MIN_IMAGE_LINES` such lines there is
no evidence, and the gate is closed. The image's influence is still reported per pair (it is then 0).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from mmre_demo.data.mnre import MnreExample
from mmre_demo.decoding import relation_decisions
from mmre_demo.model.batching import ImageCache, predict_logits, prepare_items
from mmre_demo.model.relation import RelationModel
from mmre_demo.train.config import MIN_IMAGE_LINES
from mmre_demo.train.metrics import mnre_scores

__all__ = ["MIN_IMAGE_LINES", "ImageGate", "choose_image_weight", "gate_saved_model"]
WEIGHTS = (1.0, 0.75, 0.5, 0.25, 0.0)  # tried from the open gate down; 0 is the text alone


@dataclass
class ImageGate:
    """The chosen weight and what it was chosen on (saved in the model's metrics as `image_gate`)."""

    weight: float
    n_lines: int
    reason: str
    scores: dict[str, dict[str, float]] = field(default_factory=dict)  # weight -> {f1, accuracy}

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _scores_at(model: RelationModel, examples: list[MnreExample], cache: ImageCache, weight: float) -> dict:
    """Gold-pair F1 and accuracy with the image term scaled by `weight`, at the model's gold threshold."""
    saved = model.config.image_weight
    model.config.image_weight = weight
    try:
        logits = predict_logits(model, prepare_items(model, examples, cache), cache)
    finally:
        model.config.image_weight = saved
    probs = model.probabilities(torch.from_numpy(logits)).numpy()
    none_id = model.config.labels.index("None")
    pred = relation_decisions(probs, model.config.gold_threshold, none_id).tolist()
    s = mnre_scores([ex.label_id for ex in examples], pred, none_id=none_id)
    return {"f1": round(float(s["f1"]), 4), "accuracy": round(float(s["accuracy"]), 4)}


def choose_image_weight(model: RelationModel, examples: list[MnreExample], cache: ImageCache,
                        min_lines: int = MIN_IMAGE_LINES) -> ImageGate:
    """The gate for `model` from the dev `examples` whose image is in `cache` (see the module docstring)."""
    with_image = [ex for ex in examples if ex.img_id and ex.img_id in cache.entries]
    if len(with_image) < min_lines:
        return ImageGate(0.0, len(with_image), f"{len(with_image)} dev lines with an image (fewer than "
                                               f"{min_lines}): no evidence, the text decides alone")
    scores = {str(w): _scores_at(model, with_image, cache, w) for w in WEIGHTS}
    text = scores[str(0.0)]
    for w in WEIGHTS:
        if scores[str(w)]["f1"] >= text["f1"] and scores[str(w)]["accuracy"] >= text["accuracy"]:
            return ImageGate(w, len(with_image), "the largest weight at least as good as the text alone", scores)
    return ImageGate(0.0, len(with_image), "no weight is as good as the text alone", scores)


def gate_saved_model(folder: str | Path, dev: list[MnreExample], images_dir: str | Path | None,
                     min_lines: int = MIN_IMAGE_LINES) -> ImageGate:
    """Choose the gate of a saved model on `dev` and write it into the folder's config.json (the weights file
    is not touched)."""
    from mmre_demo.model.config import RelationConfig
    from mmre_demo.model.relation import load_relation_model

    model = load_relation_model(folder).eval()
    cache = ImageCache(model)
    if images_dir:
        cache.add_folder(images_dir, {ex.img_id for ex in dev if ex.img_id})
    gate = choose_image_weight(model, dev, cache, min_lines)
    config = RelationConfig.load(Path(folder) / "config.json")
    config.image_weight = gate.weight
    config.metrics = {**config.metrics, "image_gate": gate.to_dict()}
    config.save(Path(folder) / "config.json")
    return gate
