"""The fused relation model: caption x image (grid + concepts) -> 23 MNRE relations, per ordered entity pair.

One base (`RelationModel`) holds what every architecture shares: the text backbone (LoRA-adapted by
default), the frozen vision backbone's visual tokens (see `fusion.py`), entity -> image attention, the gated
alpha/beta fusion and the MLP over the labels. An architecture says how the text is read (`featurize`:
caption + pairs -> `EncoderPass`es, see `packing.py`) and which vectors stand for a pair's head and tail
(`pair_vectors`). `RelationConfig.architecture` names it; `load_relation_model` / `build_relation_model`
resolve the name (like transformers' `model_type`):

- `entity-pooling` (shipped): one pass per caption, pooled entity word pieces + the context both attend to
  (ATLOP);
- `pair-markers` (d29df61, the distillation teacher): one pass per ordered pair, `[ head ]` and `{ tail }`
  written into the caption;
- tried, not shipped: `mmre_demo/research/` (`levitated-markers`; the `full` and `frozen` backbone trainings).

Only the trained parts are saved (safetensors + JSON, `model.base`); backbones come from their packages.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import torch
from torch import nn

from mmre_demo.data.schema import Entity
from mmre_demo.encoders.text import SentenceEmbedder, keep_first_layers, load_text_backbone
from mmre_demo.encoders.vision import VisionBackbone, VisionOutput, imagenet_class_names, load_vision_backbone
from mmre_demo.model.base import PretrainedModel
from mmre_demo.model.config import ARCHITECTURES, RelationConfig
from mmre_demo.model.fusion import CrossModalAttention, GatedFusion, VisualTokenizer, VisualTokens
from mmre_demo.model.inputs import encode_pair
from mmre_demo.model.packing import EncoderPass, encode_caption_pairs
from mmre_demo.research import RESEARCH_ARCHITECTURES


@dataclass
class RelationOutput:
    logits: torch.Tensor  # (B, L)
    entity_attention: torch.Tensor | None = None  # (B, 2, N_visual) head/tail -> visual tokens
    token_attention: torch.Tensor | None = None  # (B, T) last-layer attention of the two markers
    # (B, L) the same pairs with the image left out (same text pass); only when asked and an image is given
    text_only_logits: torch.Tensor | None = None


# a saved LoRA adapter's tensors, as peft names them: text_encoder.base_model.model.<layer>.lora_A|B.default.weight
_LORA_KEY = "text_encoder.base_model.model.{}.lora_{}.default.weight"
_LORA_A = re.compile(r"text_encoder\.base_model\.model\.(.+)\.lora_A\.default\.weight")

class RelationModel(PretrainedModel):
    """The shared base. `RelationModel.from_pretrained(folder)` builds the architecture its config names
    (see `load_relation_model`); `model.save_pretrained(folder)`: see `model.base`."""

    config_class = RelationConfig
    saved_kind = "relation model"

    def __init__(self, config: RelationConfig, pretrained_backbones: bool = True, init_concepts: bool = True,
                 fold_adapters: bool = False):
        super().__init__()
        self.config = config
        # inference only: the saved LoRA adapters are folded into the backbone's weights as they load, so the
        # backbone is a plain frozen encoder (no peft import, no merge step; the same weights as a merge)
        self.folded_adapters = fold_adapters and config.backbone_training == "lora"
        self.tokenizer, encoder = load_text_backbone(config.text_backbone, pretrained=pretrained_backbones)
        if config.text_layers:
            encoder = keep_first_layers(encoder, config.text_layers)
        dim = int(encoder.config.hidden_size)
        self.vision: VisionBackbone = load_vision_backbone(config.vision_backbone, pretrained=pretrained_backbones)
        self.vision.requires_grad_(False)
        self.visual_tokenizer = VisualTokenizer(self.vision.feature_dim, dim, config.num_concepts)
        if init_concepts and self.vision.has_concepts:
            embedder = SentenceEmbedder(self.tokenizer, encoder.eval())
            self.visual_tokenizer.concept_embeddings.copy_(embedder.embed(imagenet_class_names()))
        frozen = self.folded_adapters
        self.text_encoder = encoder.requires_grad_(False) if frozen else self._adapt_backbone(encoder, config)
        self.cross_attention = CrossModalAttention(dim)
        self.fusion = GatedFusion(2 * dim)
        self.classifier = nn.Sequential(
            nn.Dropout(config.dropout), nn.Linear(2 * dim, dim), nn.GELU(),
            nn.Dropout(config.dropout), nn.Linear(dim, config.num_labels),
        )

    def train(self, mode: bool = True) -> RelationModel:
        """Training mode for what trains; the frozen vision backbone stays in eval mode (its batch norm on
        its running statistics, no drop-connect), so training reads an image's features as serving does."""
        super().train(mode)
        self.vision.eval()
        return self

    @staticmethod
    def _adapt_backbone(encoder: nn.Module, config: RelationConfig) -> nn.Module:
        if config.backbone_training != "lora":
            from mmre_demo.research.backbone_training import adapt_backbone

            return adapt_backbone(encoder, config.backbone_training)
        import warnings

        from peft import LoraConfig, get_peft_model

        lora = LoraConfig(r=config.lora_r, lora_alpha=config.lora_alpha, lora_dropout=config.lora_dropout,
                          target_modules=list(config.lora_targets), bias="none")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            return get_peft_model(encoder, lora)

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

    # ---- text side ------------------------------------------------------------------------------
    def encode_text(self, input_ids: torch.Tensor, mask: torch.Tensor, position_ids: torch.Tensor,
                    want_attention: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The passes' last hidden states (S, T, d) and, when wanted, last-layer attention averaged over
        heads (S, T, T); `mask` is additive (S, 1, T, T). PyTorch's text encoder, always (onnxruntime serves
        through its own class: `mmre_demo.serving`)."""
        out = self.text_encoder(input_ids=input_ids, attention_mask=mask, position_ids=position_ids,
                                output_attentions=want_attention)
        return out.last_hidden_state, out.attentions[-1].mean(1) if want_attention and out.attentions else None

    # ---- text side: what an architecture defines ------------------------------------------------
    architecture: ClassVar[str] = ""

    def featurize(self, caption: str, entities: list[Entity], pairs: list[tuple[int, int]],
                  image_text: str | None = None) -> list[EncoderPass]:
        """The encoder passes that score `pairs` (ordered indices into `entities`) of one caption; each pass
        says which pairs (rows) it scores. `image_text`: the second segment, for a model trained with it."""
        raise NotImplementedError

    def pair_vectors(self, hidden: torch.Tensor, attention: torch.Tensor | None,
                     batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """(head (R, d), tail (R, d), the words the pair read (R, T) or None) from the encoder's last hidden
        states (S, T, d) and last-layer attention averaged over heads (S, T, T), for the R rows of `batch`."""
        raise NotImplementedError

    needs_attention: ClassVar[bool] = False  # the pair vectors use the attention even without `explain`

    # ---- forward ----------------------------------------------------------------------------
    def forward(self, input_ids: torch.Tensor, position_ids: torch.Tensor, attention: torch.Tensor,
                row_pass: torch.Tensor, head_index: torch.Tensor, tail_index: torch.Tensor,
                head_mask: torch.Tensor, tail_mask: torch.Tensor, visual: VisualTokens | None = None,
                image_index: torch.Tensor | None = None, has_image: torch.Tensor | None = None,
                explain: bool = False, with_text_only: bool = False) -> RelationOutput:
        """Passes (S) of tokens scoring R pairs (`packing.collate_passes`); `image_index` maps each pair to
        a row of `visual`, `has_image` (R,) says which pairs have one.

        `with_text_only` also classifies each pair without its image (reusing the text pass), so the
        image's effect on the probabilities is measured, not guessed from the fusion's norms.
        """
        # additive mask: 0 where a token may attend, a large negative number elsewhere (transformers
        # takes a 4-D float mask as it is)
        mask = torch.zeros(attention.shape, dtype=torch.float32, device=attention.device)
        mask = mask.masked_fill(~attention, torch.finfo(torch.float32).min)[:, None]
        want_attention = explain or self.needs_attention
        hidden, last = self.encode_text(input_ids, mask, position_ids, want_attention)
        batch = {"row_pass": row_pass, "head_index": head_index, "tail_index": tail_index,
                 "head_mask": head_mask, "tail_mask": tail_mask}
        head, tail, token_attention = self.pair_vectors(hidden, last, batch)
        rows = torch.arange(head.shape[0], device=head.device)
        text_pair = torch.cat([head, tail], dim=-1)
        if has_image is None:
            has_image = torch.zeros(head.shape[0], device=head.device)
        entity_attention = None
        if visual is not None and bool(has_image.any()):
            idx = image_index if image_index is not None else torch.zeros_like(rows)
            queries = torch.stack([head, tail], dim=1)
            attended, entity_attention = self.cross_attention(queries, visual.tokens, visual.mask, idx)
            image_pair = attended.flatten(1)
        else:
            image_pair = torch.zeros_like(text_pair)
        if self.training and self.config.modality_dropout > 0:
            keep = (torch.rand_like(has_image) >= self.config.modality_dropout).to(has_image.dtype)
            has_image = has_image * keep
        logits = self.classifier(self.fusion(text_pair, image_pair, has_image * self.config.image_weight))
        text_only = None
        if with_text_only and entity_attention is not None:
            text_only = self.classifier(self.fusion(text_pair, image_pair, torch.zeros_like(has_image)))
        return RelationOutput(logits, entity_attention, token_attention if explain else None, text_only)

    def probabilities(self, logits: torch.Tensor) -> torch.Tensor:
        """Calibrated probabilities: the fitted per-label offsets, then the fitted temperature (see
        `train/calibration.py`); decisions threshold them (`decoding.relation_decisions`)."""
        bias = self.config.label_bias
        if bias:
            logits = logits + torch.tensor(bias, dtype=logits.dtype, device=logits.device)
        return (logits / self.config.temperature).softmax(-1)

    # ---- save / load (PretrainedModel) --------------------------------------------------------
    def saved_state_dict(self) -> dict[str, torch.Tensor]:
        """The parameters training changes, plus the concept-embedding buffer (backbones excluded)."""
        names = {n for n, p in self.named_parameters() if p.requires_grad}
        names.add("visual_tokenizer.concept_embeddings")
        return {n: t.detach().cpu().contiguous() for n, t in self.state_dict().items() if n in names}

    def loadable_keys(self) -> set[str]:
        keys = set(self.state_dict())
        if self.folded_adapters:  # the adapters of every Linear layer of the backbone (as peft names them)
            keys |= {_LORA_KEY.format(name, part) for name, m in self.text_encoder.named_modules()
                     if isinstance(m, nn.Linear) for part in "AB"}
        return keys

    def load_saved_state(self, state: dict[str, torch.Tensor]) -> None:
        if self.folded_adapters:
            state = self._fold_adapters(state)
        self.load_state_dict(state, strict=False)

    def _fold_adapters(self, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Add each saved adapter's update, (lora_alpha / r) * B @ A, to its Linear layer's weight, as peft's
        merge does; returns the other tensors."""
        scale = self.config.lora_alpha / self.config.lora_r
        layers = dict(self.text_encoder.named_modules())
        rest = dict(state)
        for key in [k for k in state if _LORA_A.fullmatch(k)]:
            name = _LORA_A.fullmatch(key).group(1)
            a, b = rest.pop(key), rest.pop(_LORA_KEY.format(name, "B"))
            with torch.no_grad():
                layers[name].weight += (b @ a) * scale
        return rest

    @classmethod
    def _init_for_loading(cls, config: RelationConfig, pretrained_backbones: bool = True,
                          fold_adapters: bool = False) -> RelationModel:
        return architecture_class(config.architecture)(config, pretrained_backbones=pretrained_backbones,
                                                       init_concepts=False, fold_adapters=fold_adapters)


def _gather(hidden: torch.Tensor, batch: dict[str, torch.Tensor], key: str) -> torch.Tensor:
    """The hidden state (or attention row) of each pair's `key` token, from its pass."""
    return hidden[batch["row_pass"], batch[key]]


class PairMarkerModel(RelationModel):
    """One pass per ordered pair: `[ head ]` and `{ tail }` written into the caption; the pair is the
    hidden states of the two opening markers (the model shipped before caption-once reading)."""

    architecture = "pair-markers"

    def featurize(self, caption: str, entities: list[Entity], pairs: list[tuple[int, int]],
                  image_text: str | None = None) -> list[EncoderPass]:
        cfg = self.config
        return [EncoderPass.from_pair(encode_pair(self.tokenizer, caption, entities[h], entities[t], cfg.max_length,
                                                  image_text, cfg.image_text_tokens), k)
                for k, (h, t) in enumerate(pairs)]

    def pair_vectors(self, hidden, attention, batch):
        token_attention = None
        if attention is not None:
            token_attention = 0.5 * (_gather(attention, batch, "head_index") + _gather(attention, batch, "tail_index"))
        return _gather(hidden, batch, "head_index"), _gather(hidden, batch, "tail_index"), token_attention


class EntityPoolingModel(RelationModel):
    """One pass per caption with no markers (ATLOP-style): an entity is the mean of its word pieces; each
    pair adds the context both entities attend to (the product of their last-layer attention over the
    caption, "localized context pooling"), projected per role: head = tanh(W_h [e_h; c]), tail likewise."""

    architecture = "entity-pooling"
    needs_attention = True

    def __init__(self, config: RelationConfig, pretrained_backbones: bool = True, init_concepts: bool = True,
                 fold_adapters: bool = False):
        super().__init__(config, pretrained_backbones, init_concepts, fold_adapters)
        dim = self.cross_attention.q_proj.in_features
        self.head_proj = nn.Linear(2 * dim, dim)
        self.tail_proj = nn.Linear(2 * dim, dim)

    def featurize(self, caption: str, entities: list[Entity], pairs: list[tuple[int, int]],
                  image_text: str | None = None) -> list[EncoderPass]:
        cfg = self.config
        return encode_caption_pairs(self.tokenizer, caption, entities, pairs,
                                    max_length=cfg.max_length, image_text=image_text,
                                    image_text_tokens=cfg.image_text_tokens)

    def pair_vectors(self, hidden, attention, batch):
        h_mask, t_mask = batch["head_mask"], batch["tail_mask"]
        rows_hidden = hidden[batch["row_pass"]]  # (R, T, d)
        e_head = (h_mask[..., None] * rows_hidden).sum(1) / h_mask.sum(1, keepdim=True).clamp(min=1)
        e_tail = (t_mask[..., None] * rows_hidden).sum(1) / t_mask.sum(1, keepdim=True).clamp(min=1)
        rows_attention = attention[batch["row_pass"]]  # (R, T, T)
        a_head = (h_mask[..., None] * rows_attention).sum(1) / h_mask.sum(1, keepdim=True).clamp(min=1)
        a_tail = (t_mask[..., None] * rows_attention).sum(1) / t_mask.sum(1, keepdim=True).clamp(min=1)
        q = a_head * a_tail
        q = q / q.sum(1, keepdim=True).clamp(min=1e-12)
        context = (q[..., None] * rows_hidden).sum(1)
        head = torch.tanh(self.head_proj(torch.cat([e_head, context], dim=-1)))
        tail = torch.tanh(self.tail_proj(torch.cat([e_tail, context], dim=-1)))
        return head, tail, q


_CLASSES: dict[str, type[RelationModel]] = {cls.architecture: cls for cls in (PairMarkerModel, EntityPoolingModel)}
assert set(_CLASSES) == set(ARCHITECTURES), "every architecture name has one class"


def architecture_class(name: str) -> type[RelationModel]:
    """The class of an architecture name (`RelationConfig.architecture`): a shipped one, or a research one
    (mmre_demo/research, imported only then)."""
    if name in RESEARCH_ARCHITECTURES:  # levitated-markers, the one research architecture
        from mmre_demo.research.levitated import LevitatedMarkerModel

        return LevitatedMarkerModel
    if name not in _CLASSES:
        raise ValueError(f"unknown relation architecture {name!r}: "
                         f"choose one of {sorted(_CLASSES)} or research's {sorted(RESEARCH_ARCHITECTURES)}")
    return _CLASSES[name]


def build_relation_model(config: RelationConfig, pretrained_backbones: bool = True) -> RelationModel:
    """A new (untrained) model of the architecture `config` names."""
    return architecture_class(config.architecture)(config, pretrained_backbones=pretrained_backbones)


def load_relation_model(path: str | Path, device: str | torch.device = "cpu",
                        for_inference: bool = False) -> RelationModel:
    """A saved relation model (any architecture; a config without `architecture` is `pair-markers`).
    `for_inference`: its LoRA adapters folded into the backbone as it loads (a model that only serves:
    no peft, no merge step, outputs equal to a merged model's); never for a model that trains on."""
    return RelationModel.from_pretrained(path, device=device, fold_adapters=for_inference)
