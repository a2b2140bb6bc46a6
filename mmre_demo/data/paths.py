"""Where the shared research data lives: `$MMRE_DATA_DIR`, else `../shared/data` beside the checkout."""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def shared_data_dir() -> Path:
    """The folder holding `mnre/`, `twitter_ner/` and `mnre_images_sample/` (may not exist)."""
    env = os.environ.get("MMRE_DATA_DIR")
    return Path(env) if env else PROJECT_ROOT.parent / "shared" / "data"


def weights_dir() -> Path:
    """The shipped weights folder (`weights/` at the top of the project)."""
    env = os.environ.get("MMRE_WEIGHTS_DIR")
    return Path(env) if env else PROJECT_ROOT / "weights"


def relation_weights_dir(weights: str | Path | None = None) -> Path:
    """The relation model's folder of `weights`: its `relation/` subfolder when it has one (a weights
    folder like the shipped one), else `weights` itself (a training run's folder); default: shipped."""
    root = Path(weights) if weights else weights_dir()
    return root / "relation" if (root / "relation").is_dir() else root
