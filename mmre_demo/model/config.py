"""RelationConfig: everything needed to rebuild the relation model, saved as JSON beside its weights."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from mmre_demo.data.labels import RELATIONS


@dataclass
class RelationConfig:
    text_backbone: str = "minilm"  # short name, HF id or local folder
    vision_backbone: str = "efficientnet-lite0"  # efficientnet-lite0/1/2, HF id or local folder
    labels: list[str] = field(default_factory=lambda: list(RELATIONS))
    max_length: int = 128
    num_concepts: int = 5  # top ImageNet concepts that become visual tokens
    backbone_training: str = "lora"  # "lora" | "full" | "frozen"
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.1
    # Linear layers that get adapters: BERT-style names, then MPNet's (q/k/v/o); PEFT adapts those present.
    lora_targets: list[str] = field(default_factory=lambda: ["query", "key", "value", "dense", "q", "k", "v", "o"])
    dropout: float = 0.1
    modality_dropout: float = 0.3  # chance of hiding the image of a training example
    # calibration (fitted together by likelihood on validation gold pairs): probabilities are
    # softmax((logits + none_bias on None) / temperature)
    none_bias: float = 0.0
    temperature: float = 1.0
    # decision rule: a pair's best relation counts when its calibrated probability reaches a threshold
    threshold: float = 0.5  # the product's (app, CLI, extract): max end-to-end F1 on validation
    gold_threshold: float = 0.5  # scoring MNRE's gold pairs (`mmre eval`): max gold-pair F1 on validation
    metrics: dict[str, Any] = field(default_factory=dict)  # measured numbers, for the model card

    @property
    def num_labels(self) -> int:
        return len(self.labels)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(asdict(self), indent=2, sort_keys=True) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> "RelationConfig":
        raw = json.loads(Path(path).read_text())
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in raw.items() if k in known})
