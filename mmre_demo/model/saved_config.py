"""`SavedConfig`: a config dataclass saved as JSON beside a model's weights (no torch here, so configs
and their defaults can be read cheaply, e.g. by `mmre --help` and the app before the model loads)."""

from __future__ import annotations

import json
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any, TypeVar

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"

C = TypeVar("C", bound="SavedConfig")


class SavedConfig:
    """Mixin for a config dataclass: saved as JSON; loading ignores keys it does not know (a config
    written by another version of the code still loads, with the defaults for what it lacks)."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)  # type: ignore[call-overload]

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n")

    @classmethod
    def load(cls: type[C], path: str | Path) -> C:
        return cls.from_dict(json.loads(Path(path).read_text()))

    @classmethod
    def from_dict(cls: type[C], raw: dict[str, Any]) -> C:
        known = {f.name for f in fields(cls)}  # type: ignore[arg-type]
        return cls(**{k: v for k, v in raw.items() if k in known})
