"""What averaging saved relation models would buy on MNRE val (an experiment, run by hand).

    .venv/bin/python benchmarks/eval_ensemble.py RUN_DIR [RUN_DIR ...]

Each RUN_DIR is a saved relation model (config.json + model.safetensors, e.g. runs/re_lora16/best).
Prints, for each model and for every pair (and all together when more than two), the val micro F1
after calibrating on val and tuning the gold-pair threshold on val (the rule training uses). The
ensemble averages log-probabilities. Val text-only, gold entities.
"""

from __future__ import annotations

import itertools
import json
import sys

import numpy as np
import torch

from mmre_demo.data.mnre import read_mnre
from mmre_demo.data.paths import shared_data_dir
from mmre_demo.logs import setup_logging
from mmre_demo.model.batching import predict_logits, prepare_items
from mmre_demo.model.relation import RelationModel
from mmre_demo.train.calibration import calibrated, fit_calibration
from mmre_demo.train.metrics import best_gold_threshold


def val_log_probs(run_dir: str, examples: list) -> tuple[np.ndarray, list[int]]:
    model = RelationModel.from_pretrained(run_dir).eval()
    items = prepare_items(model, examples, None)
    with torch.no_grad():
        logits = predict_logits(model, items, None)
    return torch.log_softmax(torch.from_numpy(logits), -1).numpy(), [ex.label_id for ex in examples]


def main(run_dirs: list[str]) -> None:
    setup_logging()
    torch.set_num_threads(2)
    examples, _ = read_mnre(shared_data_dir() / "mnre" / "mnre_val.txt")
    lp: dict[str, np.ndarray] = {}
    for d in run_dirs:
        lp[d], gold = val_log_probs(d, examples)
    groups = [(d,) for d in run_dirs] + list(itertools.combinations(run_dirs, 2))
    if len(run_dirs) > 2:
        groups.append(tuple(run_dirs))
    for g in groups:
        mean = sum(lp[d] for d in g) / len(g)
        offsets, temperature = fit_calibration(mean, gold)
        threshold, f1 = best_gold_threshold(calibrated(mean, offsets, temperature), gold)
        print(json.dumps({"models": list(g), "val_f1": round(f1, 4), "gold_threshold": threshold}), flush=True)


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    main(sys.argv[1:])
