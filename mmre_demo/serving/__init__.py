"""Serving: the trained models on onnxruntime, as their own classes (`ServingModels.from_trained`), and the
engine a pipeline runs on, chosen once at load (`Pipeline.load(engine=...)`, `default_engine`)."""

from mmre_demo.serving.classes import ServingNerTagger, ServingRelationModel, ServingVision, serving_class
from mmre_demo.serving.models import (
    ENGINES,
    Engine,
    EngineUnavailable,
    ServingModels,
    check_engine,
    default_engine,
    engine_of,
    load_models,
    one_shared_copy,
    serving_tagger,
)

__all__ = ["ENGINES", "Engine", "EngineUnavailable", "ServingModels", "ServingNerTagger", "ServingRelationModel",
           "ServingVision", "check_engine", "default_engine", "engine_of", "load_models", "one_shared_copy",
           "serving_class", "serving_tagger"]
