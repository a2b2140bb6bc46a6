"""Knowledge-graph embedding for the extracted triples (PyKEEN TransE / DistMult / ComplEx).

Modules: `datasets` (UMLS/Kinships/Nations, MNRE files, the app graph), `features` (text/image
entity features), `models` (construction + multimodal entity representation), `training`,
`evaluation`, `io` (safetensors + JSON), `predict` (top-k queries), `suggest` (the app's
background `LinkSuggester`), `api` (the short end-to-end path). No gradio here.
"""

from mmre_demo.kge.api import DATASETS, evaluate_run, fit, load_dataset
from mmre_demo.kge.io import KgeRun, load_run, save_run
from mmre_demo.kge.predict import KgePredictor

__all__ = ["DATASETS", "KgePredictor", "KgeRun", "evaluate_run", "fit", "load_dataset", "load_run", "save_run"]
