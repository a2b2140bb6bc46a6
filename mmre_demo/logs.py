"""Logging set-up for the entry points (`mmre`, `app.py`, benchmarks).

Library modules only log (`logging.getLogger(__name__)`) and never configure handlers or other
libraries' loggers; an entry point calls `setup_logging()` once.
"""

from __future__ import annotations

import logging
import os
import sys

# Libraries whose per-run chatter (PyKEEN's training notices, torch_max_mem's batch-size search)
# drowns our own messages; entry points show only their errors.
NOISY_LIBRARIES = ("pykeen", "torch_max_mem")


def setup_logging(level: int = logging.INFO) -> None:
    """mmre_demo's messages at `level` on stderr as plain lines; the noisy libraries from ERROR up, and
    no per-load reports or progress bars from transformers."""
    for name in NOISY_LIBRARIES:
        logging.getLogger(name).setLevel(logging.ERROR)
    _quiet_transformers()
    ours = logging.getLogger("mmre_demo")
    ours.setLevel(level)
    if not any(getattr(h, "_mmre_demo", False) for h in ours.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        handler._mmre_demo = True  # type: ignore[attr-defined]
        ours.addHandler(handler)


def _quiet_transformers() -> None:
    if "transformers" in sys.modules:
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
    else:  # read when transformers is first imported (no import here: the app serves its page first)
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
