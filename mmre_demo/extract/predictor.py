"""The model behind a corpus job: a `Predictor` (the app's seam, `mmre_demo.prediction`) and its identity.

The engines only need `predict_batch(list[PostInput]) -> list[PostResult]` and a model name and
version (written to every triple and to the manifest, so `--resume` can refuse another model).
`PipelinePredictor` turns a batch of posts into `PredictRequest`s for one `Predictor.predict_many`
call (one tagger batch, one vision batch, shared relation batches); a post the model refuses becomes
an error result, the rest of the batch is answered. `PredictorSpec` is the picklable recipe a Ray
actor uses to load the model once.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from mmre_demo.data.paths import WeightsLayout
from mmre_demo.data.schema import InputError
from mmre_demo.extract.posts import PostInput, PostResult
from mmre_demo.prediction import DEFAULT_TOP_K, MAX_PAIRS, Predictor, PredictRequest

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelInfo:
    """Name (what the model is), version (a digest of its trained weights and configs) and its own
    probability threshold (part of its config, so of its version)."""

    name: str
    version: str
    threshold: float = 0.5


@runtime_checkable
class BatchPredictor(Protocol):
    """What an engine needs from the model. `settings`: everything else that changes the output."""

    info: ModelInfo
    settings: dict[str, Any]

    def predict_batch(self, batch: Sequence[PostInput]) -> list[PostResult]:
        """One result per input, in order; a post the model refuses (InputError) is an error result."""
        ...


def output_settings(max_pairs: int, top_k: int, type_constraint: bool = True, read_text: bool = True) -> dict[str, Any]:
    """The settings besides the weights that change what is written (the manifest compares them on resume)."""
    return {"max_pairs": int(max_pairs), "top_k": int(top_k), "type_constraint": bool(type_constraint),
            "read_text": bool(read_text)}


def model_info(weights: str | Path | None = None) -> ModelInfo:
    """Identify what `Pipeline.load(weights)` would load (relation model and tagger, `WeightsLayout`),
    without loading it: the version is a digest of both models' files."""
    layout = WeightsLayout.find(weights)
    if not layout.relation_config.is_file():
        raise InputError(f"{layout.relation}: no relation model here (config.json missing); pass --weights DIR")
    from mmre_demo.model.config import RelationConfig  # no torch: a config is plain JSON

    cfg = RelationConfig.load(layout.relation_config)
    name = f"mmre_demo relation {cfg.text_backbone}+{cfg.vision_backbone}"
    if layout.tagger is not None:
        name += " + ner tagger"
    return ModelInfo(name, layout.version(), float(cfg.threshold))


@dataclass
class PipelinePredictor:
    """`BatchPredictor` over a `Predictor` (entities detected by its tagger, as `predict(image, caption)`)."""

    pipeline: Predictor
    info: ModelInfo
    max_pairs: int = MAX_PAIRS
    top_k: int = DEFAULT_TOP_K
    read_text: bool = True  # read the text in the images (and ground entities in it)
    settings: dict[str, Any] = field(init=False)

    def __post_init__(self) -> None:
        self.settings = output_settings(self.max_pairs, self.top_k, getattr(self.pipeline, "type_constraint", True),
                                        self.read_text)

    def predict_batch(self, batch: Sequence[PostInput]) -> list[PostResult]:
        requests = [PredictRequest(x.post.caption, x.image, None, self.read_text, self.top_k, self.max_pairs)
                    for x in batch]
        results = self.pipeline.predict_many(requests) if requests else []
        return [PostResult(x.post, error=str(r), stage="model", image_id=x.image_id) if isinstance(r, InputError)
                else PostResult(x.post, r, image_id=x.image_id) for x, r in zip(batch, results, strict=True)]


@dataclass(frozen=True)
class PredictorSpec:
    """How to build a `PipelinePredictor` anywhere (a Ray actor, a subprocess): plain, picklable values."""

    weights: str | None = None
    device: str = "auto"
    max_pairs: int = MAX_PAIRS
    top_k: int = DEFAULT_TOP_K
    threads: int | None = None  # torch CPU threads in the process that builds it
    read_text: bool = True

    def info(self) -> ModelInfo:
        return model_info(self.weights)

    def settings(self) -> dict[str, Any]:
        return output_settings(self.max_pairs, self.top_k, read_text=self.read_text)  # type constraint: on

    def build(self) -> PipelinePredictor:
        import torch

        from mmre_demo.pipeline import Pipeline

        if self.threads:
            torch.set_num_threads(self.threads)
        pipe = Pipeline.load(self.weights, device=self.device, read_text=self.read_text, batch_window_ms=0)
        return PipelinePredictor(pipe, self.info(), self.max_pairs, self.top_k, read_text=self.read_text)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
