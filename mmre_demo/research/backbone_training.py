"""Backbone-training modes that did not ship (the shipped model trains LoRA adapters, `model/relation.py`):

- `full`: every weight of the text backbone trains (use a learning rate near 5e-5);
- `frozen`: the backbone stays as pretrained, only the head trains.
"""

from __future__ import annotations

from torch import nn

from mmre_demo.research import RESEARCH_BACKBONE_TRAININGS


def adapt_backbone(encoder: nn.Module, mode: str) -> nn.Module:
    """The text backbone as a research mode trains it."""
    if mode not in RESEARCH_BACKBONE_TRAININGS:
        raise ValueError(f"unknown backbone training {mode!r}: lora, or one of {RESEARCH_BACKBONE_TRAININGS}")
    return encoder.requires_grad_(False) if mode == "frozen" else encoder
