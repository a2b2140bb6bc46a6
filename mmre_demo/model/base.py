"""One base for saved models, in the `transformers` manner: a config object + a module +
`save_pretrained` / `from_pretrained`.

A saved model is a folder with `config.json` (its `SavedConfig` dataclass, sorted and indented) and
`model.safetensors` (only the tensors training changes; backbones come from their packages).
Loading refuses a weights file whose keys do not fit the model built from its config.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from mmre_demo.model.saved_config import CONFIG_NAME, WEIGHTS_NAME, SavedConfig

M = TypeVar("M", bound="PretrainedModel")


class PretrainedModel(nn.Module):
    """Base of the relation model and the NER tagger.

    A subclass sets `config_class` and `saved_kind` (for messages) and says which tensors are saved
    (`saved_state_dict`) and how they are put back (`load_saved_state`).
    """

    config_class: type[SavedConfig]
    saved_kind = "model"
    config: SavedConfig

    # ---- what a subclass defines --------------------------------------------------------------
    def saved_state_dict(self) -> dict[str, torch.Tensor]:
        """The tensors `save_pretrained` writes (on the CPU, contiguous)."""
        raise NotImplementedError

    def loadable_keys(self) -> set[str]:
        """Keys a weights file may hold (default: exactly the saved ones)."""
        return set(self.saved_state_dict())

    def load_saved_state(self, state: dict[str, torch.Tensor]) -> None:
        raise NotImplementedError

    @classmethod
    def _init_for_loading(cls: type[M], config: Any, **kwargs: Any) -> M:
        """The module `from_pretrained` fills with the saved tensors."""
        return cls(config, **kwargs)

    # ---- save / load --------------------------------------------------------------------------
    def save_pretrained(self, path: str | Path) -> None:
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        self.config.save(path / CONFIG_NAME)
        save_file(self.saved_state_dict(), str(path / WEIGHTS_NAME), metadata={"format": "pt"})

    @classmethod
    def from_pretrained(cls: type[M], path: str | Path, device: str | torch.device = "cpu", **kwargs: Any) -> M:
        """Build the model from `path/config.json` and load `path/model.safetensors` into it (eval mode)."""
        path = Path(path)
        if not (path / CONFIG_NAME).is_file() or not (path / WEIGHTS_NAME).is_file():
            raise FileNotFoundError(f"{path} has no {CONFIG_NAME} + {WEIGHTS_NAME} (a saved {cls.saved_kind})")
        model = cls._init_for_loading(cls.config_class.load(path / CONFIG_NAME), **kwargs)
        state = load_file(str(path / WEIGHTS_NAME))
        missing = set(model.saved_state_dict()) - set(state)
        unexpected = set(state) - model.loadable_keys()
        if missing or unexpected:
            raise ValueError(f"{path / WEIGHTS_NAME} does not fit this {cls.saved_kind}: "
                             f"missing {sorted(missing)[:5]}, unexpected {sorted(unexpected)[:5]}")
        model.load_saved_state(state)
        return model.to(device).eval()
