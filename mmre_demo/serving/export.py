"""The frozen networks as exported to ONNX (each a module whose forward is the graph), and their runners.

The wrappers keep the names their weights had before the serving classes existed, so the cached exports
(`encoders.onnx_runtime.export_cached`, keyed by the weights' digest) stay valid.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import torch
from torch import nn

from mmre_demo.encoders.onnx_runtime import OnnxRunner


class EncoderPasses(nn.Module):
    """The relation model's text encoder: (ids, additive mask, position ids) -> (last hidden states,
    last-layer attention averaged over heads)."""

    def __init__(self, encoder: nn.Module):
        super().__init__()
        self.encoder = encoder

    def forward(self, input_ids: torch.Tensor, mask: torch.Tensor,
                position_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.encoder(input_ids=input_ids, attention_mask=mask, position_ids=position_ids,
                           output_attentions=True)
        return out.last_hidden_state, out.attentions[-1].mean(1)


class AllLayers(nn.Module):
    """The tagger's backbone: the hidden states of every layer, stacked (B, T, L, D)."""

    def __init__(self, encoder: nn.Module):
        super().__init__()
        self.encoder = encoder

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        out = self.encoder(input_ids=input_ids, attention_mask=attention_mask, output_hidden_states=True)
        return torch.stack(out.hidden_states, dim=2)


class FeatureExtractor(nn.Module):
    """EfficientNet's `extract_features` as a module's forward."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.model.extract_features(pixels)


def _shared_names(wrapper: nn.Module, shared: Mapping[int, torch.Tensor]) -> dict[str, torch.Tensor]:
    """`shared` (id of a weight of `wrapper` -> the tensor its sessions read instead) by initializer name."""
    return {n: shared[id(t)] for n, t in wrapper.state_dict(keep_vars=True).items() if id(t) in shared}


def text_encoder_runner(encoder: nn.Module, backbone: str,
                        shared: Mapping[int, torch.Tensor] | None = None) -> OnnxRunner | None:
    """The relation model's frozen text encoder on onnxruntime (None: no session could be made)."""
    wrapper = EncoderPasses(encoder)
    example = (torch.ones(1, 8, dtype=torch.long), torch.zeros(1, 1, 8, 8), torch.arange(8)[None])
    return OnnxRunner.for_module(
        wrapper, example, f"relation-{backbone}-encoder", ["input_ids", "mask", "position_ids"],
        {"input_ids": {0: "passes", 1: "tokens"}, "mask": {0: "passes", 2: "tokens", 3: "keys"},
         "position_ids": {0: "passes", 1: "tokens"}, "hidden": {0: "passes", 1: "tokens"},
         "attention": {0: "passes", 1: "tokens", 2: "keys"}}, output_names=("hidden", "attention"),
        shared=_shared_names(wrapper, shared or {}))


def tagger_layers_runner(encoder: nn.Module, backbone: str,
                         shared: Mapping[int, torch.Tensor] | None = None) -> OnnxRunner | None:
    """The tagger's frozen backbone (every layer) on onnxruntime (None: no session could be made)."""
    wrapper = AllLayers(encoder)
    example = (torch.ones(1, 8, dtype=torch.long), torch.ones(1, 8, dtype=torch.long))
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", backbone).strip("_") + "-layers"
    return OnnxRunner.for_module(
        wrapper, example, name, ["input_ids", "attention_mask"],
        {"input_ids": {0: "batch", 1: "tokens"}, "attention_mask": {0: "batch", 1: "tokens"},
         "output": {0: "batch", 1: "tokens"}}, shared=_shared_names(wrapper, shared or {}))


def vision_features_runner(model: nn.Module, name: str, image_size: int) -> OnnxRunner | None:
    """EfficientNet's feature extractor on onnxruntime (None: no session could be made)."""
    return OnnxRunner.for_module(FeatureExtractor(model), (torch.zeros(1, 3, image_size, image_size),),
                                 f"{name}-features", ["pixels"], {"pixels": {0: "batch"}, "output": {0: "batch"}})
