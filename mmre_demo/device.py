"""Pick the compute device: CUDA, Apple MPS or CPU; `MMRE_DEVICE` overrides the automatic choice."""

from __future__ import annotations

import os

import torch

from mmre_demo.data.schema import InputError


def resolve_device(requested: str | None = "auto") -> str:
    """"auto" -> $MMRE_DEVICE if set, else cuda > mps > cpu.

    An unknown or unavailable explicit choice is an InputError (a bad flag or $MMRE_DEVICE value),
    which the CLI prints as a one-line error.
    """
    choice = (requested or "auto").lower()
    if choice == "auto":
        choice = os.environ.get("MMRE_DEVICE", "auto").lower()
    if choice == "auto":
        if torch.cuda.is_available():
            return "cuda"
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return "mps"
        return "cpu"
    if choice.startswith("cuda") and not torch.cuda.is_available():
        raise InputError(f"device {choice!r} requested but CUDA is not available")
    if choice == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise InputError("device 'mps' requested but Apple MPS is not available")
    if choice not in ("cpu", "mps") and not choice.startswith("cuda"):
        raise InputError(f"unknown device {choice!r}; use auto, cpu, cuda or mps")
    return choice
