"""RelationConfig: everything needed to rebuild the relation model, saved as JSON beside its weights
(`SavedConfig`: save / load, unknown keys ignored)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

from mmre_demo.data.labels import RELATIONS
from mmre_demo.model.saved_config import SavedConfig
from mmre_demo.research import ResearchArchitecture, ResearchBackboneTraining

# how the text is read (see model/relation.py): what ships, and the model it was distilled from (d29df61,
# `mmre train --distill-from`); a saved config without the key is "pair-markers". Tried, not shipped:
# mmre_demo/research (`ResearchArchitecture`).
Architecture = Literal["pair-markers", "entity-pooling"]
ARCHITECTURES: tuple[str, ...] = get_args(Architecture)
# what training does to the text backbone: LoRA adapters (what ships); every weight or nothing: research
BackboneTraining = Literal["lora"]
BACKBONE_TRAININGS: tuple[str, ...] = get_args(BackboneTraining)


@dataclass
class RelationConfig(SavedConfig):
    architecture: Architecture | ResearchArchitecture = "entity-pooling"
    text_backbone: str = "minilm"  # short name, HF id or local folder
    text_layers: int = 0  # only the text backbone's first N layers read (a wide encoder, cheaper); 0: all
    vision_backbone: str = "efficientnet-lite0"  # efficientnet-lite0/1/2, HF id or local folder
    labels: list[str] = field(default_factory=lambda: list(RELATIONS))
    max_length: int = 128  # word pieces of text per pass (a longer caption is read in windows)
    max_rows: int = 32  # pairs per caption-once pass (a caption with more pairs gets several passes)
    num_concepts: int = 5  # top ImageNet concepts that become visual tokens
    backbone_training: BackboneTraining | ResearchBackboneTraining = "lora"
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.1
    # Linear layers that get adapters: BERT-style names, then MPNet's (q/k/v/o); PEFT adapts those present.
    lora_targets: list[str] = field(default_factory=lambda: ["query", "key", "value", "dense", "q", "k", "v", "o"])
    dropout: float = 0.1
    modality_dropout: float = 0.3  # chance of hiding the image of a training example
    # the image gate: the share of the image term the fusion uses (1 = as trained, 0 = the text alone),
    # chosen on dev lines with an image (`train/image_gate.py`); a folder from before has none: 1
    image_weight: float = 1.0
    # the text read in the image (OCR) as a second segment after the caption: only for a model trained
    # with it (`mmre train --image-text`); the shipped model is trained without (see its model card)
    image_text: bool = False
    image_text_tokens: int = 32  # word pieces of the image text kept (the caption keeps the rest)
    # calibration (fitted together by likelihood on validation gold pairs, `train/calibration.py`):
    # probabilities are softmax((logits + label_bias) / temperature); empty = no offsets
    label_bias: list[float] = field(default_factory=list)
    temperature: float = 1.0
    # decision rule: a pair's best relation counts when its calibrated probability reaches a threshold
    threshold: float = 0.5  # the product's (app, CLI, extract): max end-to-end F1 on validation
    gold_threshold: float = 0.5  # scoring MNRE's gold pairs (`mmre eval`): max gold-pair F1 on validation
    metrics: dict[str, Any] = field(default_factory=dict)  # measured numbers, for the model card

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> RelationConfig:
        """A saved config, older ones upgraded (`upgrade_saved`); keys no version uses are ignored."""
        return super().from_dict(upgrade_saved(raw))

    @classmethod
    def saved_threshold(cls, config_path: str | Path) -> float:
        """The product's threshold of a saved model, read from its config without loading the model (the app
        shows it while the model loads; `mmre extract` writes it to its manifest); the default when unreadable."""
        try:
            return float(cls.load(config_path).threshold)
        except (OSError, ValueError):
            return cls().threshold

    @property
    def num_labels(self) -> int:
        return len(self.labels)


def upgrade_saved(raw: dict[str, Any]) -> dict[str, Any]:
    """A config as older code saved it, in today's keys (the one place old model folders are mapped):

    - no `architecture` (written before architectures had names): a `pair-markers` model (d29df61's);
    - `none_bias` (one offset, on `None`, before per-label offsets): `label_bias` with it on `None`.
    """
    raw = {"architecture": "pair-markers", **raw}
    if "label_bias" not in raw and raw.get("none_bias"):
        labels = raw.get("labels") or list(RELATIONS)
        raw["label_bias"] = [float(raw["none_bias"]) if label == "None" else 0.0 for label in labels]
    return raw
