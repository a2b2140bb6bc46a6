"""The model's seam: what is asked (`PredictRequest`), who answers (`Predictor`) and what comes back
(`Prediction`: per entity pair, the label, its probability, the alternatives and the evidence).
Plain data (numpy arrays, no tensors) so the app, the CLI, corpus extraction and the graph use it
without torch."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

from mmre_demo.data.images import ImageInput
from mmre_demo.data.labels import NONE_LABEL, is_symmetric
from mmre_demo.data.schema import Entity, InputError
from mmre_demo.encoders.ocr import ImageText
from mmre_demo.grounding import Grounding, ImageEntity

HEATMAPS = ("image_heatmap", "head_heatmap", "tail_heatmap")  # the arrays `to_dict(with_arrays=True)` adds

# ordered pairs classified per caption at most (both directions of the 15 closest entity pairs)
MAX_PAIRS = 30
DEFAULT_TOP_K = 3  # alternatives listed per pair


@dataclass(frozen=True)
class PredictRequest:
    """One post to classify: its caption, its image (None: caption only), the entities (None: the
    tagger finds them; else spans of `caption`), whether to read the text in the image, how many
    alternatives to list per pair and how many pairs to classify at most."""

    caption: str
    image: ImageInput = None
    entities: Sequence[Entity | dict] | None = None
    read_text: bool = True
    top_k: int = DEFAULT_TOP_K
    max_pairs: int = MAX_PAIRS


@runtime_checkable
class Predictor(Protocol):
    """Anything that answers requests: the `Pipeline`, a test's fake. A bad request fails alone: its
    slot holds the `InputError` that says what was wrong, the others are answered."""

    @property
    def threshold(self) -> float:
        """The probability from which a pair is shown as a relation (the model's own)."""
        ...

    @property
    def labels(self) -> Sequence[str]:
        """The relation names the model knows, `None` among them."""
        ...

    @property
    def device(self) -> str:
        """Where the model runs ("cpu", "cuda", ...)."""
        ...

    def predict_many(self, requests: Sequence[PredictRequest]) -> list[Prediction | InputError]:
        """One answer per request, in order."""
        ...


def predict_one(predictor: Predictor, request: PredictRequest) -> Prediction:
    """One request's prediction; its `InputError` raised."""
    (result,) = predictor.predict_many([request])
    if isinstance(result, InputError):
        raise result
    return result


@dataclass
class TokenWeight:
    """A caption word (character span) and how much the pair's representation attended to it."""

    text: str
    start: int
    end: int
    weight: float


def shows(label: str, probability: float, threshold: float) -> bool:
    """The decision rule: a relation (not `None`) is shown when its calibrated probability reaches
    `threshold` (`PairPrediction.is_shown`, the review queue; the array form: `decoding.relation_decisions`)."""
    return label != NONE_LABEL and probability >= threshold


@dataclass
class PairPrediction:
    """One entity pair, in its more probable direction: its most probable relation and that relation's
    calibrated probability. It is *shown* as a relation when the probability reaches the threshold
    (`Prediction.relations`); below it the pair reads as no relation. `label` is `None` only when the
    entity types allow no relation at all."""

    head: Entity
    tail: Entity
    label: str
    probability: float
    top_k: list[tuple[str, float]]  # calibrated, most probable first; `None` among them
    image_heatmap: np.ndarray | None = None  # (h, w) in [0, 1], where the pair looked in the image
    head_heatmap: np.ndarray | None = None  # (h, w) text->image attention of the head entity
    tail_heatmap: np.ndarray | None = None
    token_weights: list[TokenWeight] = field(default_factory=list)  # word-level, sums to 1
    # measured effect of the image: P(label | image + caption) - P(label | caption alone); None = no image
    image_influence: float | None = None
    type_constrained: bool = False  # label changed by the entity-type constraint
    reverse: tuple[str, float] | None = None  # the other direction's (label, probability), when classified
    none_probability: float | None = None  # calibrated probability that the pair holds no relation
    # grounded evidence: where the head's / tail's name was read in the image (None: not read there)
    head_grounding: Grounding | None = None
    tail_grounding: Grounding | None = None

    @property
    def is_relation(self) -> bool:
        return self.label != NONE_LABEL

    @property
    def symmetric(self) -> bool:
        """A relation that holds both ways (`peer`, `couple`, ...): one fact in either direction."""
        return is_symmetric(self.label)

    def is_shown(self, threshold: float) -> bool:
        """The decision rule for a decoded pair (the product, `mmre eval` and training's selection): its
        most probable relation is shown when its calibrated probability reaches `threshold`; the
        array form for many rows is `decoding.relation_decisions`."""
        return shows(self.label, self.probability, threshold)

    def shown(self, threshold: float) -> tuple[str, float]:
        """What a reader sees at `threshold`: (relation, its probability), or ("None", P(None)) below it."""
        if self.is_shown(threshold):
            return self.label, self.probability
        return NONE_LABEL, self.none_probability if self.none_probability is not None else 1.0 - self.probability

    def influence_text(self) -> str:
        """How the image changed this pair's label probability, in words for tables and notes."""
        if self.image_influence is None:
            return "no image"
        return f"{self.image_influence:+.2f}"

    def to_dict(self, with_arrays: bool = False) -> dict[str, Any]:
        d: dict[str, Any] = {
            "head": self.head.to_dict(),
            "tail": self.tail.to_dict(),
            "label": self.label,
            "probability": round(self.probability, 6),
            "top_k": [[lab, round(p, 6)] for lab, p in self.top_k],
            "token_weights": [[t.text, t.start, t.end, round(t.weight, 6)] for t in self.token_weights],
            "image_influence": None if self.image_influence is None else round(self.image_influence, 6),
            "type_constrained": self.type_constrained,
            "reverse": None if self.reverse is None else [self.reverse[0], round(self.reverse[1], 6)],
            "none_probability": None if self.none_probability is None else round(self.none_probability, 6),
            "head_grounding": None if self.head_grounding is None else self.head_grounding.to_dict(),
            "tail_grounding": None if self.tail_grounding is None else self.tail_grounding.to_dict(),
        }
        if with_arrays:
            for name in HEATMAPS:
                arr = getattr(self, name)
                d[name] = None if arr is None else np.round(arr, 5).tolist()
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PairPrediction:
        """Inverse of `to_dict` (the heatmaps when it holds them; a field it lacks keeps its default)."""
        def grounding(key: str) -> Grounding | None:
            return None if d.get(key) is None else Grounding.from_dict(d[key])

        reverse = d.get("reverse")
        return cls(Entity.from_dict(d["head"]), Entity.from_dict(d["tail"]), d["label"], float(d["probability"]),
                   [(str(lab), float(p)) for lab, p in d.get("top_k", [])],
                   **{name: np.asarray(d[name], dtype=np.float32) for name in HEATMAPS if d.get(name) is not None},
                   token_weights=[TokenWeight(t, a, b, float(w)) for t, a, b, w in d.get("token_weights", [])],
                   image_influence=d.get("image_influence"), type_constrained=bool(d.get("type_constrained")),
                   reverse=None if reverse is None else (str(reverse[0]), float(reverse[1])),
                   none_probability=d.get("none_probability"), head_grounding=grounding("head_grounding"),
                   tail_grounding=grounding("tail_grounding"))


@dataclass(kw_only=True)
class Prediction:
    """One request's result. Built with keywords only (`Prediction(caption=..., entities=..., ...)`)."""

    caption: str
    entities: list[Entity]
    pairs: list[PairPrediction]
    concepts: list[tuple[str, float]]  # visual concepts recognised in the image (name, probability)
    has_image: bool
    image_size: tuple[int, int] | None  # (width, height) of the input image
    device: str
    messages: list[str] = field(default_factory=list)  # e.g. "no image: caption only", "pairs capped"
    timings_ms: dict[str, float] = field(default_factory=dict)
    entities_detected: bool = False  # True when the NER tagger found the entities
    # pooled vision feature of the image (e.g. 1280-d): the knowledge graph's image feature of its entities
    image_feature: np.ndarray | None = field(default=None, repr=False)
    # the model's default probability threshold (chosen for end-to-end F1 on its dev data)
    threshold: float = 0.5
    # the model's image gate (`train/image_gate.py`): 1 = the image term as trained, 0 = the caption decides
    image_weight: float = 1.0
    # text read in the image (None: no image or reading switched off), the entities grounded in it, and
    # the names the tagger found only in the image
    image_text: ImageText | None = None
    groundings: list[Grounding] = field(default_factory=list)
    also_in_image: list[ImageEntity] = field(default_factory=list)

    def relations(self, threshold: float | None = None, include_none: bool = False) -> list[PairPrediction]:
        """The pairs shown as relations: probability at or above `threshold` (default: the model's);
        with include_none, every pair."""
        cut = self.threshold if threshold is None else threshold
        return [p for p in self.pairs if include_none or p.is_shown(cut)]

    def to_dict(self, with_arrays: bool = False) -> dict[str, Any]:
        return {
            "caption": self.caption,
            "entities": [e.to_dict() for e in self.entities],
            "entities_detected": self.entities_detected,
            "pairs": [p.to_dict(with_arrays) for p in self.pairs],
            "concepts": [[c, round(s, 6)] for c, s in self.concepts],
            "has_image": self.has_image,
            "image_size": list(self.image_size) if self.image_size else None,
            "device": self.device,
            "messages": self.messages,
            "timings_ms": {k: round(v, 2) for k, v in self.timings_ms.items()},
            "threshold": self.threshold,
            "image_weight": self.image_weight,
            "image_text": None if self.image_text is None else self.image_text.to_dict(),
            "groundings": [g.to_dict() for g in self.groundings],
            "also_in_image": [e.to_dict() for e in self.also_in_image],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Prediction:
        """Inverse of `to_dict` (a prediction read back from a file: `mmre extract`'s records, an API answer).
        The image feature is not serialised, so it comes back as None; a field `d` lacks keeps its default."""
        size = d.get("image_size")
        image_text = d.get("image_text")
        return cls(caption=d["caption"], entities=[Entity.from_dict(e) for e in d.get("entities", [])],
                   pairs=[PairPrediction.from_dict(p) for p in d.get("pairs", [])],
                   concepts=[(str(c), float(p)) for c, p in d.get("concepts", [])],
                   has_image=bool(d.get("has_image")), image_size=tuple(size) if size else None,
                   device=d.get("device", ""), messages=list(d.get("messages", [])),
                   timings_ms=dict(d.get("timings_ms", {})), entities_detected=bool(d.get("entities_detected")),
                   threshold=float(d.get("threshold", 0.5)), image_weight=float(d.get("image_weight", 1.0)),
                   image_text=None if image_text is None else ImageText.from_dict(image_text),
                   groundings=[Grounding.from_dict(g) for g in d.get("groundings", [])],
                   also_in_image=[ImageEntity.from_dict(e) for e in d.get("also_in_image", [])])
