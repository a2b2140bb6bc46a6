"""The model behind a corpus job, seen through one small protocol.

The engines only need `predict_batch(list[PostInput]) -> list[PostResult]` and a model name and
version (written to every triple and to the manifest, so `--resume` can refuse another model).
`PipelinePredictor` adapts `Pipeline`: it calls `Pipeline.predict_many` (many posts in one tagger
batch and one relation batch) when the pipeline has it, else `Pipeline.predict` post by post.
`PredictorSpec` is the picklable recipe a Ray actor uses to load the model once.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from mmre_demo.data.paths import relation_weights_dir, weights_dir
from mmre_demo.data.schema import InputError
from mmre_demo.extract.posts import PostInput, PostResult

log = logging.getLogger(__name__)

DEFAULT_MAX_PAIRS = 30  # the pipeline's and the app's default
DEFAULT_TOP_K = 3


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


def _weight_dirs(weights: str | Path | None) -> tuple[Path, Path | None]:
    root = Path(weights) if weights else weights_dir()
    rel = relation_weights_dir(root)
    ner = root / "ner"
    return rel, (ner if ner.is_dir() else None)


def model_info(weights: str | Path | None = None) -> ModelInfo:
    """Identify the weights `Pipeline.load(weights)` would load, without loading them (sha256 of the files)."""
    rel, ner = _weight_dirs(weights)
    cfg_path = rel / "config.json"
    if not cfg_path.is_file():
        raise InputError(f"{rel}: no relation model here (config.json missing); pass --weights DIR")
    cfg = json.loads(cfg_path.read_text(encoding="utf-8"))
    name = f"mmre_demo relation {cfg.get('text_backbone', '?')}+{cfg.get('vision_backbone', '?')}"
    h = hashlib.sha256()
    for folder in (rel, ner):
        if folder is None:
            continue
        for f in sorted(folder.iterdir()):
            if f.suffix in (".json", ".safetensors") and f.is_file():
                h.update(f"{folder.name}/{f.name}\0".encode())
                h.update(f.read_bytes())
    if ner is not None:
        name += " + ner tagger"
    return ModelInfo(name, h.hexdigest()[:16], float(cfg.get("threshold", 0.5)))


@dataclass
class PipelinePredictor:
    """`BatchPredictor` over a loaded `Pipeline` (entities detected by its tagger, as `predict(image, caption)`)."""

    pipeline: Any
    info: ModelInfo
    max_pairs: int = DEFAULT_MAX_PAIRS
    top_k: int = DEFAULT_TOP_K
    use_many: bool | None = None  # None: use `predict_many` when the pipeline has it
    read_text: bool = True  # read the text in the images (and ground entities in it)
    settings: dict[str, Any] = field(init=False)

    def __post_init__(self) -> None:
        self.settings = output_settings(self.max_pairs, self.top_k, getattr(self.pipeline, "type_constraint", True),
                                        self.read_text)
        if self.use_many is None:
            self.use_many = callable(getattr(self.pipeline, "predict_many", None))

    def predict_batch(self, batch: Sequence[PostInput]) -> list[PostResult]:
        if not batch:
            return []
        if self.use_many:
            try:
                return self._many(batch)
            except InputError:
                log.info("a post of the batch was refused; predicting its %d posts one by one", len(batch))
        return [self._one(x) for x in batch]

    def _many(self, batch: Sequence[PostInput]) -> list[PostResult]:
        """The batched call: all captions through the tagger at once, all pairs in one relation batch."""
        requests = [(x.image, x.post.caption) for x in batch]
        preds = self.pipeline.predict_many(requests, max_pairs=self.max_pairs, top_k=self.top_k,
                                           read_text=self.read_text)
        return [PostResult(x.post, p, image_id=x.image_id) for x, p in zip(batch, preds, strict=True)]

    def _one(self, x: PostInput) -> PostResult:
        try:
            pred = self.pipeline.predict(x.image, x.post.caption, max_pairs=self.max_pairs, top_k=self.top_k,
                                         read_text=self.read_text)
        except InputError as exc:
            return PostResult(x.post, error=str(exc), stage="model", image_id=x.image_id)
        return PostResult(x.post, pred, image_id=x.image_id)


@dataclass(frozen=True)
class PredictorSpec:
    """How to build a `PipelinePredictor` anywhere (a Ray actor, a subprocess): plain, picklable values."""

    weights: str | None = None
    device: str = "auto"
    max_pairs: int = DEFAULT_MAX_PAIRS
    top_k: int = DEFAULT_TOP_K
    threads: int | None = None  # torch CPU threads in the process that builds it
    use_many: bool | None = None
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
        pipe = Pipeline.load(self.weights, device=self.device, read_text=self.read_text)
        return PipelinePredictor(pipe, self.info(), self.max_pairs, self.top_k, use_many=self.use_many,
                                 read_text=self.read_text)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
