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
    # Annotation conventions the head learned (one learned embedding each): data sets disagree on what is
    # an entity (MNRE marks handles and names that Twitter-NER leaves out); `tag()` uses `tag_convention`.
    conventions: list[str] = field(default_factory=lambda: ["twitter"])
    tag_convention: str = "twitter"
    convention_dim: int = 16
    # spans that are never names (weekdays, months, pronouns, no letters) are tagged O (`nonentities.py`)
    drop_non_entities: bool = True
    metrics: dict[str, Any] = field(default_factory=dict)  # measured numbers, for the model card

    @property
    def num_tags(self) -> int:
        return len(self.tags)

    def convention_id(self, name: str | None = None) -> int:
        """Index of a convention (default: the one `tag()` uses); a clear error for an unknown one."""
        name = name or self.tag_convention
        if name not in self.conventions:
            raise ValueError(f"unknown annotation convention {name!r}; this tagger knows {self.conventions}")
        return self.conventions.index(name)
