"""The KGE options as types, importable without torch or PyKEEN (the CLI's `choices=` read them)."""

from __future__ import annotations

from typing import Literal, get_args

FeatureMode = Literal["none", "text", "text+image"]  # the fixed entity features of a multimodal model
FEATURE_MODES: tuple[str, ...] = get_args(FeatureMode)
