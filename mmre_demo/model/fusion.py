"""Visual tokens in the text space, text->image cross-modal attention, and the gated alpha/beta fusion.

Why the image pathway means something before it is trained on MNRE images:
- *concept tokens*: the CNN's top ImageNet classes, each embedded as the text backbone's sentence
  embedding of the class name, so they live in the text space;
- *spatial tokens*: each grid cell gets the probability-weighted concept embedding of what the
  classifier sees in that cell (a class-activation view), plus a trainable projection of the raw
  CNN features that starts at zero;
- the cross-modal attention starts with identity projections, so an entity's attention over the
  visual tokens follows text-space similarity from the first step, and becomes trainable;
- the fusion gate starts almost closed (alpha small), so an untrained image cannot hurt the text.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F


@dataclass
class VisualTokens:
    tokens: torch.Tensor  # (B, N_spatial + K, d)
    mask: torch.Tensor  # (B, N_spatial + K) True = usable
    n_spatial: int
    grid_hw: tuple[int, int]
    concept_ids: torch.Tensor | None  # (B, K) ImageNet class ids of the concept tokens
    concept_probs: torch.Tensor | None  # (B, K)


class VisualTokenizer(nn.Module):
    """CNN grid (+ ImageNet logits) -> visual tokens in the text backbone's space."""

    def __init__(self, vision_dim: int, text_dim: int, num_concepts: int, num_classes: int = 1000,
                 cell_temperature: float = 1.0):
        super().__init__()
        self.num_concepts = num_concepts
        self.cell_temperature = cell_temperature
        self.raw_proj = nn.Linear(vision_dim, text_dim)
        nn.init.zeros_(self.raw_proj.weight)
        nn.init.zeros_(self.raw_proj.bias)
        self.kind_embedding = nn.Parameter(torch.zeros(2, text_dim))  # 0 = spatial, 1 = concept
        # Sentence embeddings of the ImageNet class names (filled by the model from its text backbone).
        self.register_buffer("concept_embeddings", torch.zeros(num_classes, text_dim))

    def forward(self, grid: torch.Tensor, grid_hw: tuple[int, int], logits: torch.Tensor | None,
                cell_logits: torch.Tensor | None) -> VisualTokens:
        b, n, _ = grid.shape
        spatial = self.raw_proj(grid) + self.kind_embedding[0]
        concept_ids = concept_probs = None
        parts = [spatial]
        if logits is not None and cell_logits is not None:
            emb = self.concept_embeddings
            cell_p = F.softmax(cell_logits / self.cell_temperature, dim=-1)  # (B, N, C)
            spatial = spatial + cell_p @ emb
            probs = F.softmax(logits, dim=-1)
            concept_probs, concept_ids = probs.topk(self.num_concepts, dim=-1)
            concepts = emb[concept_ids] + self.kind_embedding[1]  # (B, K, d)
            parts = [spatial, concepts]
        tokens = torch.cat(parts, dim=1)
        mask = torch.ones(tokens.shape[:2], dtype=torch.bool, device=tokens.device)
        return VisualTokens(tokens, mask, n, grid_hw, concept_ids, concept_probs)


class CrossModalAttention(nn.Module):
    """Single-head attention from entity vectors (queries) to visual tokens (keys/values).

    One head keeps the map readable as a heatmap. Projections start as the identity over
    layer-normalised vectors, with a learnable temperature.
    """

    def __init__(self, dim: int, init_temperature: float = 10.0):
        super().__init__()
        self.q_norm, self.k_norm = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.q_proj, self.k_proj, self.v_proj = (nn.Linear(dim, dim) for _ in range(3))
        for proj in (self.q_proj, self.k_proj, self.v_proj):
            nn.init.eye_(proj.weight)
            nn.init.zeros_(proj.bias)
        self.log_temperature = nn.Parameter(torch.tensor(float(init_temperature)).log())

    def forward(self, queries: torch.Tensor, keys: torch.Tensor, mask: torch.Tensor,
                index: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """queries (B, Q, d), keys (I, N, d), mask (I, N) -> (attended (B, Q, d), weights (B, Q, N)); query row
        b reads the keys of image `index[b]` (default: I == B, row b's own). The keys are projected once
        per image, not once per pair reading it (a caption's pairs share one image)."""
        q = F.normalize(self.q_proj(self.q_norm(queries)), dim=-1)
        k = F.normalize(self.k_proj(self.k_norm(keys)), dim=-1)
        v = self.v_proj(keys)
        if index is not None:
            k, v, mask = k[index], v[index], mask[index]
        scores = (q @ k.transpose(1, 2)) * self.log_temperature.exp()
        scores = scores.masked_fill(~mask.unsqueeze(1), -1e4)
        weights = scores.softmax(dim=-1)
        return weights @ v, weights


class GatedFusion(nn.Module):
    """F = beta * F_text + alpha * (g * F_image), with learned scalars alpha, beta and a learned gate g.

    Without an image (`has_image` = 0) F = beta * F_text exactly.
    """

    def __init__(self, dim: int, alpha_init: float = 0.1):
        super().__init__()
        self.gate = nn.Linear(2 * dim, dim)
        nn.init.zeros_(self.gate.weight)
        nn.init.constant_(self.gate.bias, -2.0)
        self.alpha = nn.Parameter(torch.tensor(alpha_init))
        self.beta = nn.Parameter(torch.tensor(1.0))

    def forward(self, text: torch.Tensor, image: torch.Tensor, has_image: torch.Tensor) -> torch.Tensor:
        """text, image (B, D); has_image (B,) float -> fused (B, D)."""
        g = torch.sigmoid(self.gate(torch.cat([text, image], dim=-1)))
        return self.beta * text + self.alpha * g * image * has_image.unsqueeze(-1)
