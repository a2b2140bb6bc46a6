"""The fused relation model: entity-marked caption x image (grid + concepts) -> 23 MNRE relations.

Text: the backbone (LoRA-adapted by default) reads the caption with `[ head ]` and `{ tail }`
markers; the pair is the hidden states at the two opening markers. Image: the frozen vision
backbone's grid and concepts become visual tokens (see `fusion.py`); each entity attends to them;
the gated alpha/beta fusion adds the attended evidence to the pair; an MLP classifies.
Only the trained parts are saved (safetensors + JSON, `model.base`); backbones come from their packages.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from mmre_demo.encoders.text import SentenceEmbedder, load_text_backbone
from mmre_demo.encoders.vision import VisionBackbone, VisionOutput, imagenet_class_names, load_vision_backbone
from mmre_demo.model.base import PretrainedModel
from mmre_demo.model.config import RelationConfig
from mmre_demo.model.fusion import CrossModalAttention, GatedFusion, VisualTokenizer, VisualTokens


@dataclass
class RelationOutput:
    logits: torch.Tensor  # (B, L)
    entity_attention: torch.Tensor | None = None  # (B, 2, N_visual) head/tail -> visual tokens
    token_attention: torch.Tensor | None = None  # (B, T) last-layer attention of the two markers
    # (B, L) the same pairs with the image left out (same text pass); only when asked and an image is given
    text_only_logits: torch.Tensor | None = None


class RelationModel(PretrainedModel):
    """`RelationModel.from_pretrained(folder)` / `model.save_pretrained(folder)`: see `model.base`."""

    config_class = RelationConfig
    saved_kind = "relation model"

    def __init__(self, config: RelationConfig, pretrained_backbones: bool = True, init_concepts: bool = True):
        super().__init__()
        self.config = config
        self.tokenizer, encoder = load_text_backbone(config.text_backbone, pretrained=pretrained_backbones)
        dim = int(encoder.config.hidden_size)
        self.vision: VisionBackbone = load_vision_backbone(config.vision_backbone, pretrained=pretrained_backbones)
        for p in self.vision.parameters():
            p.requires_grad_(False)
        self.visual_tokenizer = VisualTokenizer(self.vision.feature_dim, dim, config.num_concepts)
        if init_concepts and self.vision.has_concepts:
            embedder = SentenceEmbedder(self.tokenizer, encoder.eval())
            self.visual_tokenizer.concept_embeddings.copy_(embedder.embed(imagenet_class_names()))
        self.text_encoder = self._adapt_backbone(encoder, config)
        self.cross_attention = CrossModalAttention(dim)
        self.fusion = GatedFusion(2 * dim)
        self.classifier = nn.Sequential(
            nn.Dropout(config.dropout), nn.Linear(2 * dim, dim), nn.GELU(),
            nn.Dropout(config.dropout), nn.Linear(dim, config.num_labels),
        )

    @staticmethod
    def _adapt_backbone(encoder: nn.Module, config: RelationConfig) -> nn.Module:
        if config.backbone_training == "lora":
            from peft import LoraConfig, get_peft_model

            lora = LoraConfig(r=config.lora_r, lora_alpha=config.lora_alpha, lora_dropout=config.lora_dropout,
                              target_modules=list(config.lora_targets), bias="none")
            import warnings

            with warnings.catch_warnings():
                warnings.simplefilter("ignore", FutureWarning)
                return get_peft_model(encoder, lora)
        if config.backbone_training == "frozen":
            for p in encoder.parameters():
                p.requires_grad_(False)
        return encoder

    # ---- image side -------------------------------------------------------------------------
    @torch.no_grad()
    def encode_images(self, pixels: torch.Tensor) -> VisionOutput:
        """Frozen vision backbone: grid, ImageNet logits, pooled feature.

        Kept separate from `visual_tokens` so training can cache the frozen part per image.
        """
        return self.vision(pixels)

    def visual_tokens(self, vision: VisionOutput) -> VisualTokens:
        """Visual tokens (trainable part) from the backbone's outputs; per-cell concepts via its classifier."""
        cell_logits = self.vision.cell_logits(vision.grid) if vision.logits is not None else None
        return self.visual_tokenizer(vision.grid, vision.grid_hw, vision.logits, cell_logits)

    # ---- forward ----------------------------------------------------------------------------
    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, head_index: torch.Tensor,
                tail_index: torch.Tensor, visual: VisualTokens | None = None,
                image_index: torch.Tensor | None = None, has_image: torch.Tensor | None = None,
                explain: bool = False, with_text_only: bool = False) -> RelationOutput:
        """Pairs (B) of token ids with marker positions; `image_index` maps each pair to a row of `visual`.

        `with_text_only` also classifies each pair without its image (reusing the text pass), so the
        image's effect on the probabilities is measured, not guessed from the fusion's norms.
        """
        out = self.text_encoder(input_ids=input_ids, attention_mask=attention_mask, output_attentions=explain)
        hidden = out.last_hidden_state
        rows = torch.arange(hidden.shape[0], device=hidden.device)
        head, tail = hidden[rows, head_index], hidden[rows, tail_index]
        text_pair = torch.cat([head, tail], dim=-1)
        if has_image is None:
            has_image = torch.zeros(hidden.shape[0], device=hidden.device)
        entity_attention = None
        if visual is not None and bool(has_image.any()):
            idx = image_index if image_index is not None else torch.zeros_like(rows)
            queries = torch.stack([head, tail], dim=1)
            attended, entity_attention = self.cross_attention(queries, visual.tokens[idx], visual.mask[idx])
            image_pair = attended.flatten(1)
        else:
            image_pair = torch.zeros_like(text_pair)
        if self.training and self.config.modality_dropout > 0:
            keep = (torch.rand_like(has_image) >= self.config.modality_dropout).to(has_image.dtype)
            has_image = has_image * keep
        logits = self.classifier(self.fusion(text_pair, image_pair, has_image))
        text_only = None
        if with_text_only and entity_attention is not None:
            text_only = self.classifier(self.fusion(text_pair, image_pair, torch.zeros_like(has_image)))
        token_attention = None
        if explain and out.attentions:
            last = out.attentions[-1].mean(1)  # (B, T, T), heads averaged
            token_attention = 0.5 * (last[rows, head_index] + last[rows, tail_index])
        return RelationOutput(logits, entity_attention, token_attention, text_only)

    def merge_adapters(self) -> None:
        """Fold the LoRA adapters into the backbone's weights, for inference only: the same outputs (to
        float rounding, ~1e-6 on the logits) at about 1.5x the speed on a CPU, since each adapted layer
        becomes one matmul again. Never on a model that is still being trained."""
        merge = getattr(self.text_encoder, "merge_adapter", None)
        if merge is not None:
            merge()

    def probabilities(self, logits: torch.Tensor) -> torch.Tensor:
        """Calibrated probabilities: the fitted `None` offset, then the fitted temperature (see
        `train/calibration.py`); decisions threshold them (`decoding.relation_decisions`)."""
        bias = torch.zeros(logits.shape[-1], device=logits.device)
        bias[self.config.labels.index("None")] = self.config.none_bias
        return ((logits + bias) / self.config.temperature).softmax(-1)

    # ---- save / load (PretrainedModel) --------------------------------------------------------
    def saved_state_dict(self) -> dict[str, torch.Tensor]:
        """The parameters training changes, plus the concept-embedding buffer (backbones excluded)."""
        names = {n for n, p in self.named_parameters() if p.requires_grad}
        names.add("visual_tokenizer.concept_embeddings")
        return {n: t.detach().cpu().contiguous() for n, t in self.state_dict().items() if n in names}

    def loadable_keys(self) -> set[str]:
        return set(self.state_dict())

    def load_saved_state(self, state: dict[str, torch.Tensor]) -> None:
        self.load_state_dict(state, strict=False)

    @classmethod
    def _init_for_loading(cls, config: RelationConfig, pretrained_backbones: bool = True) -> RelationModel:
        return cls(config, pretrained_backbones=pretrained_backbones, init_concepts=False)
