"""The one way a package exports names lazily: each public name is imported from its file on first use,
so importing the package stays cheap (no torch for `mmre --help`, the graph helpers, configs).

    __getattr__, __dir__ = lazy_exports(__name__, {"Name": "submodule", ...})
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from typing import Any


def lazy_exports(package: str, homes: dict[str, str]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """A module's `__getattr__` and `__dir__` for `homes` (public name -> the submodule of `package` that
    defines it); `dir()` lists the lazy names beside those already defined."""

    def __getattr__(name: str) -> Any:
        if name not in homes:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(f"{package}.{homes[name]}"), name)

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(homes))

    return __getattr__, __dir__
