"""Where things live: the shared research data (`$MMRE_DATA_DIR`, else `../shared/data` beside the checkout)
and the model weights (`WeightsLayout`: `$MMRE_WEIGHTS`, else the shipped `weights/`).

A weights folder is either a shipped-style folder (`relation/` and optionally `ner/` inside) or a training
run's folder (the relation model's files directly). `WeightsLayout` is the one place that says which relation
model and which tagger a weights folder means, and the version that covers both: the pipeline, corpus
extraction, the tagger's default and the CLI all ask it, so they cannot disagree.
"""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

PROJECT_ROOT = Path(__file__).resolve().parents[2]
SHIPPED_WEIGHTS = PROJECT_ROOT / "weights"
WEIGHTS_ENV = "MMRE_WEIGHTS"  # the default weights folder (docs/cli.md "Which weights")
_DEPRECATED_WEIGHTS_ENV = "MMRE_WEIGHTS_DIR"  # its old name, still read
RELATION_SUBDIR, TAGGER_SUBDIR = "relation", "ner"
_VERSIONED_SUFFIXES = (".json", ".safetensors")  # what a saved model is (README files are not)


def shared_data_dir() -> Path:
    """The folder holding `mnre/`, `twitter_ner/` and `mnre_images_sample/` (may not exist)."""
    env = os.environ.get("MMRE_DATA_DIR")
    return Path(env) if env else PROJECT_ROOT.parent / "shared" / "data"


def weights_dir() -> Path:
    """The default weights folder: `$MMRE_WEIGHTS`, else the shipped `weights/` at the top of the project."""
    env = os.environ.get(WEIGHTS_ENV)
    if not env and os.environ.get(_DEPRECATED_WEIGHTS_ENV):
        env = os.environ[_DEPRECATED_WEIGHTS_ENV]
        log.warning("$%s is deprecated: set $%s instead (same meaning)", _DEPRECATED_WEIGHTS_ENV, WEIGHTS_ENV)
    return Path(env) if env else SHIPPED_WEIGHTS


@dataclass(frozen=True)
class WeightsLayout:
    """The models a weights folder stands for. `relation`: its `relation/` subfolder, else the folder itself;
    `tagger`: the given tagger folder, else its `ner/`, else the default weights folder's `ner/` (the shipped
    tagger), None when there is none. Every model here shapes the output, so `version()` covers them all."""

    root: Path
    relation: Path
    tagger: Path | None

    @classmethod
    def find(cls, weights: str | Path | None = None, tagger: str | Path | None = None) -> WeightsLayout:
        """The layout of `weights` (default: `weights_dir()`), with `tagger` instead of its own when given."""
        root = Path(weights) if weights else weights_dir()
        relation = root / RELATION_SUBDIR if (root / RELATION_SUBDIR).is_dir() else root
        if tagger:
            ner: Path | None = Path(tagger)
        else:
            ner = next((d for d in (root / TAGGER_SUBDIR, weights_dir() / TAGGER_SUBDIR) if d.is_dir()), None)
        return cls(root, relation, ner)

    @property
    def relation_config(self) -> Path:
        return self.relation / "config.json"

    def model_folders(self) -> list[Path]:
        """The folders of the models that shape the output: the relation model, then the tagger if any."""
        return [self.relation] + ([self.tagger] if self.tagger is not None else [])

    def version(self) -> str:
        """A digest of every saved model file (configs and tensors) of the relation model and the tagger:
        any retraining, recalibration or tagger swap changes it."""
        h = hashlib.sha256()
        for folder in self.model_folders():
            for f in sorted(folder.iterdir()):
                if f.suffix in _VERSIONED_SUFFIXES and f.is_file():
                    h.update(f"{folder.name}/{f.name}\0".encode())
                    h.update(f.read_bytes())
        return h.hexdigest()[:16]

