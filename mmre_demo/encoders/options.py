"""The backbones' options as types, torch-free: configs (`NerConfig`) and `mmre --help` read them without
importing torch or transformers."""

from __future__ import annotations

from typing import Literal, get_args

# which Linear layers of a frozen backbone go int8 on CPU: all, the attention projections only, or none
Int8Scope = Literal["all", "attention", "none"]
INT8_SCOPES: tuple[str, ...] = get_args(Int8Scope)
