"""Decisions simulated from labelled MNRE lines, written to an annotation store: what an annotator who
knows the gold label would do with the shipped model's prediction on each pair (accept when it is
right, reject when gold is None, else relabel to gold). Used to measure that `mmre train --annotations`
does not hurt the end-to-end F1 (docs/annotations.md).

    .venv/bin/python benchmarks/simulate_annotations.py --data ../shared/data/mnre/mnre_train.txt \
        --n 400 --seed 13 --db runs/annot22/simulated.sqlite3

Only a training split may be simulated from (never a test split: the project has none here on purpose).
The prediction is the product's on that pair: the model's top relation when its calibrated probability
reaches the model's threshold, else None (text only: MNRE's images are not available here).
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import sys
from collections import Counter
from pathlib import Path

log = logging.getLogger("simulate_annotations")


def main(argv: list[str] | None = None) -> int:
    from mmre_demo.annotations import AnnotationStore
    from mmre_demo.annotations.training import simulate_decisions
    from mmre_demo.data.mnre import read_mnre
    from mmre_demo.data.paths import WeightsLayout
    from mmre_demo.decoding import relation_decisions
    from mmre_demo.logs import setup_logging
    from mmre_demo.model.batching import predict_logits, prepare_items
    from mmre_demo.model.relation import RelationModel

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", required=True, help="MNRE-format file with gold labels (a training split)")
    ap.add_argument("--n", type=int, default=400, help="how many lines, drawn at random (default: %(default)s)")
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--db", required=True, help="annotation store to write (must not exist yet)")
    ap.add_argument("--weights", help="relation model whose predictions are judged (default: shipped)")
    ap.add_argument("--annotator", default="simulated")
    args = ap.parse_args(argv)
    setup_logging()
    if "test" in Path(args.data).name.lower():
        print(f"refusing {args.data}: simulate from a training split, never a test split", file=sys.stderr)
        return 2
    if Path(args.db).exists():
        print(f"{args.db} exists: give a new store", file=sys.stderr)
        return 2
    examples, _ = read_mnre(args.data)
    sample = random.Random(args.seed).sample(examples, min(args.n, len(examples)))
    model = RelationModel.from_pretrained(WeightsLayout.find(args.weights).relation, device="cpu")
    logits = predict_logits(model, prepare_items(model, sample, None), None)
    import torch

    probs = model.probabilities(torch.from_numpy(logits)).numpy()
    none_id = model.config.labels.index("None")
    ids = relation_decisions(probs, model.config.threshold, none_id)
    predicted = [model.config.labels[i] for i in ids]
    simulated = simulate_decisions(sample, predicted, [float(probs[k, i]) for k, i in enumerate(ids)])
    store = AnnotationStore(args.db)
    store.add_many([s.as_tuple(args.annotator) for s in simulated], source=f"simulated:{Path(args.data).name}")
    summary = {"db": args.db, "pairs": len(simulated), "decisions": dict(Counter(s.decision for s in simulated)),
               "model_right": sum(p == e.relation for p, e in zip(predicted, sample))}
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
