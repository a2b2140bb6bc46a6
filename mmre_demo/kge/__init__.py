"""Knowledge-graph embedding for the extracted triples (PyKEEN TransE / DistMult / ComplEx).

Modules: `datasets` (UMLS/Kinships/Nations, MNRE files, the app graph), `features` (text/image
entity features), `models` (construction + multimodal entity representation), `training`,
`evaluation`, `io` (safetensors + JSON), `predict` (top-k queries), `suggest` (the app's
background `LinkSuggester`), `api` (the short end-to-end path), `options` (the options as types,
without torch). No gradio here. The names below are imported on first use, so `mmre_demo.kge.options`
stays light (the CLI reads its choices when every command starts).
"""

from __future__ import annotations

from mmre_demo.lazy import lazy_exports

_EXPORTS = {"DATASETS": "api", "evaluate_run": "api", "fit": "api", "load_dataset": "api", "KgeRun": "io",
            "load_run": "io", "save_run": "io", "KgePredictor": "predict"}

__all__ = ["DATASETS", "KgePredictor", "KgeRun", "evaluate_run", "fit", "load_dataset", "load_run", "save_run"]


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
