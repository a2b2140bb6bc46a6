"""`ServingModels.from_trained(relation, tagger)`: a trained relation model and tagger as serving models,
and which engine runs a pipeline (chosen once, at load).

Why onnxruntime: on the reference CPU it runs the frozen EfficientNet-Lite0 feature extractor 3.5x and
the frozen MiniLM 2x faster than eager PyTorch, the same outputs to 1e-4 (`mmre_demo.tuning.ONNX_RUNTIME`).
A serving process keeps one copy of each frozen weight: the sessions hold them, the PyTorch models they were
built from are let go (`hand_back_memory`), and the word embeddings the tagger's backbone and the relation
encoder hold alike (LoRA leaves them as pretrained) are one tensor both sessions read in place.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import torch

from mmre_demo.data.schema import InputError
from mmre_demo.encoders import onnx_runtime
from mmre_demo.model.ner import NerTagger
from mmre_demo.model.relation import RelationModel
from mmre_demo.serving.classes import ServingNerTagger, ServingRelationModel, ServingVision
from mmre_demo.serving.export import tagger_layers_runner, text_encoder_runner, vision_features_runner

log = logging.getLogger(__name__)

Engine = Literal["onnxruntime", "torch"]
ENGINES: tuple[Engine, ...] = ("onnxruntime", "torch")


class EngineUnavailable(RuntimeError):
    """onnxruntime cannot serve these models here (no onnxruntime or `onnx` package, a trainable encoder)."""


def default_engine(device: str) -> Engine:
    """onnxruntime on a CPU (unless $MMRE_ONNX=0), PyTorch on an accelerator."""
    return "onnxruntime" if torch.device(device).type == "cpu" and onnx_runtime.enabled() else "torch"


def check_engine(engine: str, device: str) -> Engine:
    """`engine` if it can run on `device`; else an InputError saying what can."""
    if engine not in ENGINES:
        raise InputError(f"engine {engine!r}: choose one of {', '.join(ENGINES)}")
    if engine == "onnxruntime" and torch.device(device).type != "cpu":
        raise InputError(f"engine 'onnxruntime' runs on the CPU, not on {device}: choose 'torch' there")
    return engine  # type: ignore[return-value] - checked


def engine_of(model: RelationModel) -> Engine:
    """The engine that runs `model`."""
    return "onnxruntime" if isinstance(model, ServingRelationModel) else "torch"


def one_shared_copy(tensors: Sequence[torch.Tensor]) -> torch.Tensor | None:
    """A fresh tensor equal to each of `tensors` (e.g. two encoders' word embeddings), or None where they
    differ. Fresh: outside the checkpoints' memory maps, which are freed with the PyTorch models."""
    first = tensors[0]
    if any(t.shape != first.shape or t.dtype != first.dtype or not torch.equal(t, first) for t in tensors[1:]):
        return None
    return first.detach().clone()


@dataclass
class ServingModels:
    """The relation model (its vision backbone within) and the tagger, served by onnxruntime."""

    relation: ServingRelationModel
    tagger: NerTagger | None  # a ServingNerTagger, or the PyTorch tagger where no session could be made

    @classmethod
    def from_trained(cls, relation: RelationModel, tagger: NerTagger | None = None) -> ServingModels:
        """Export (cached) and open the sessions of `relation`'s frozen text encoder and vision feature
        extractor and `tagger`'s frozen backbone; the given models are left as they are. Raises
        `EngineUnavailable` where the text encoder cannot be served (a hub vision backbone without a
        session stays on PyTorch, frozen)."""
        if any(p.requires_grad for p in relation.text_encoder.parameters()):
            raise EngineUnavailable("the relation model's text encoder trains (load it with its adapters folded)")
        encoders = [relation.text_encoder] + ([tagger.encoder] if _tagger_servable(tagger) else [])
        tables = [e.get_input_embeddings().weight for e in encoders]
        table = one_shared_copy(tables)
        shared = {id(t): table for t in tables} if table is not None else {}
        text = text_encoder_runner(relation.text_encoder, str(relation.config.text_backbone), shared)
        if text is None:
            raise EngineUnavailable("no onnxruntime session for the text encoder (see the log)")
        vision = relation.vision
        if vision.kind == "efficientnet" and (features := vision_features_runner(
                vision.model, vision.name, vision.image_size)) is not None:
            vision = ServingVision(vision, features)
        served_tagger = tagger
        if _tagger_servable(tagger):
            layers = tagger_layers_runner(tagger.encoder, str(tagger.config.text_backbone), shared)
            served_tagger = ServingNerTagger(tagger, layers) if layers is not None else tagger
        return cls(ServingRelationModel.from_trained(relation, text, vision), served_tagger)

    @staticmethod
    def hand_back_memory() -> None:
        """Once the PyTorch models are let go: hand the heap they (and the checkpoint parsing, the export)
        freed back to the system; glibc keeps it otherwise (~45 MB of RSS here). A no-op where the C
        library has no malloc_trim."""
        import ctypes
        import ctypes.util
        import gc

        gc.collect()
        try:
            ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim(0)
        except (OSError, AttributeError):  # not glibc (macOS, musl): nothing to hand back this way
            pass


def serving_tagger(tagger: NerTagger) -> NerTagger:
    """For a caller that only tags (the CLI, evaluation during training): `tagger` served by onnxruntime
    where that is the default engine of its device, else `tagger` itself (left as it is, either way)."""
    if not _tagger_servable(tagger) or default_engine(str(tagger.device)) != "onnxruntime":
        return tagger
    layers = tagger_layers_runner(tagger.encoder, str(tagger.config.text_backbone))
    return ServingNerTagger(tagger, layers) if layers is not None else tagger


def _tagger_servable(tagger: NerTagger | None) -> bool:
    return tagger is not None and not isinstance(tagger, ServingNerTagger)


def load_models(relation: RelationModel, tagger: NerTagger | None,
                engine: Engine) -> tuple[RelationModel, NerTagger | None, Engine]:
    """The models that serve on `engine`: the given PyTorch ones for "torch"; their serving forms for
    "onnxruntime" (PyTorch's, logged, where onnxruntime cannot serve them: `EngineUnavailable`). The caller
    drops its references to the given models, then calls `ServingModels.hand_back_memory()`."""
    if engine == "torch":
        return relation, tagger, engine
    try:
        served = ServingModels.from_trained(relation, tagger)
    except EngineUnavailable as exc:
        log.warning("onnxruntime cannot serve (%s): PyTorch serves", exc)
        return relation, tagger, "torch"
    if served.tagger is not tagger and tagger is not None:
        from mmre_demo.encoders.text import forget_frozen_backbone

        forget_frozen_backbone(tagger.encoder)  # the process's shared copy: its session holds the weights now
    return served.relation, served.tagger, "onnxruntime"
