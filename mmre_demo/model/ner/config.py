"""NerConfig: the tagger's architecture and tag set, saved as JSON beside its head."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mmre_demo.data.conll import TAGS
from mmre_demo.model.saved_config import SavedConfig


@dataclass
class NerConfig(SavedConfig):
    text_backbone: str = "minilm"
    tags: list[str] = field(default_factory=lambda: list(TAGS))
    max_length: int = 128  # word pieces per backbone window, [CLS] and [SEP] included
    max_pieces_per_word: int = 8  # long URLs/hashtags are cut
    use_shape: bool = True
    shape_dim: int = 32
    use_chars: bool = True
    char_dim: int = 32
    char_filters: int = 64
    max_chars: int = 20
    lstm_hidden: int = 200  # per direction; 0 = no BiLSTM (linear head on the features)
    use_crf: bool = True
    dropout: float = 0.33
    metrics: dict[str, Any] = field(default_factory=dict)  # measured numbers, for the model card

    @property
    def num_tags(self) -> int:
        return len(self.tags)
