"""The serving models: what a trained model's frozen networks become on onnxruntime.

Each is its own class, built once from a trained PyTorch model (`from_trained`, which leaves that model
as it is) and only ever serving: its frozen network is an onnxruntime session (`OnnxRunner`), its small
trained parts (heads, the ImageNet classifier) copies of the trained ones. It does not train
(`train(True)` is refused) and is not saved; train and save the PyTorch model.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from mmre_demo.encoders.vision import VisionBackbone
from mmre_demo.model.ner import NerTagger
from mmre_demo.model.relation import RelationModel

if TYPE_CHECKING:
    from mmre_demo.encoders.onnx_runtime import OnnxRunner

_NO_TRAINING = "a serving model does not train: train the PyTorch model (Pipeline.load(engine='torch'))"


def _serving_only(module: nn.Module, mode: bool) -> None:
    if mode:
        raise TypeError(_NO_TRAINING)
    nn.Module.train(module, False)


class ServingVision(VisionBackbone):
    """An EfficientNet backbone whose feature extractor is an onnxruntime session; its ImageNet classifier
    (which also reads the grid cells) a copy of the trained one."""

    def __init__(self, backbone: VisionBackbone, features: OnnxRunner):
        nn.Module.__init__(self)
        self.name, self.image_size, self.kind = backbone.name, backbone.image_size, backbone.kind
        self.feature_dim = backbone.feature_dim
        self.register_buffer("mean", backbone.mean.detach().clone(), persistent=False)
        self.register_buffer("std", backbone.std.detach().clone(), persistent=False)
        self.fc = copy.deepcopy(backbone.classifier)
        self.session = features
        self.eval()

    @property
    def classifier(self) -> nn.Module:
        return self.fc

    def features(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.session(pixels.float())

    def train(self, mode: bool = True) -> ServingVision:
        _serving_only(self, mode)
        return self


class ServingNerTagger(NerTagger):
    """A tagger whose frozen backbone's layers come from an onnxruntime session; its head a copy of the
    trained one."""

    def __init__(self, tagger: NerTagger, layers: OnnxRunner):  # noqa: D107 - no backbone is loaded
        nn.Module.__init__(self)
        self.config, self.tokenizer, self.tag_to_id = tagger.config, tagger.tokenizer, dict(tagger.tag_to_id)
        self.hidden_size = tagger.hidden_size
        self.head = copy.deepcopy(tagger.head)
        self.session = layers
        self.eval()

    def hidden_states(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.session(ids, mask)

    def train(self, mode: bool = True) -> ServingNerTagger:
        _serving_only(self, mode)
        return self

    def save_pretrained(self, *args: Any, **kwargs: Any) -> None:
        raise TypeError("a serving tagger is not saved: save the PyTorch tagger")


class ServingRelationModel(RelationModel):
    """A relation model whose frozen text encoder (adapters folded) is an onnxruntime session; the vision
    backbone a `ServingVision` (or the frozen PyTorch one where it has no session), the trained parts
    copies. One class per architecture (`serving_class`): `featurize` and `pair_vectors` are the
    architecture's own."""

    def __init__(self, model: RelationModel, text: OnnxRunner, vision: VisionBackbone):  # noqa: D107
        nn.Module.__init__(self)
        self.config, self.tokenizer, self.folded_adapters = model.config, model.tokenizer, True
        for name, child in model.named_children():
            if name not in ("text_encoder", "vision"):
                self.add_module(name, copy.deepcopy(child))
        self.vision = vision
        self.text_session = text
        self.eval()

    @classmethod
    def from_trained(cls, model: RelationModel, text: OnnxRunner, vision: VisionBackbone) -> ServingRelationModel:
        """The serving form of `model` (of its architecture's class); `model` is left as it is."""
        return serving_class(type(model))(model, text, vision)

    def encode_text(self, input_ids: torch.Tensor, mask: torch.Tensor, position_ids: torch.Tensor,
                    want_attention: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
        hidden, attention = self.text_session(input_ids, mask, position_ids)
        return hidden, attention if want_attention else None

    def train(self, mode: bool = True) -> ServingRelationModel:
        _serving_only(self, mode)
        return self

    def save_pretrained(self, *args: Any, **kwargs: Any) -> None:
        raise TypeError("a serving model is not saved: save the PyTorch model")


_SERVING_CLASSES: dict[type[RelationModel], type[ServingRelationModel]] = {}


def serving_class(architecture: type[RelationModel]) -> type[ServingRelationModel]:
    """`ServingRelationModel` for an architecture's class (made once per class)."""
    if issubclass(architecture, ServingRelationModel):
        return architecture
    if architecture not in _SERVING_CLASSES:
        _SERVING_CLASSES[architecture] = type(f"Serving{architecture.__name__}", (ServingRelationModel, architecture),
                                              {"__module__": __name__, "__doc__": ServingRelationModel.__doc__})
    return _SERVING_CLASSES[architecture]
