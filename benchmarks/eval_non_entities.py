"""How many end-to-end false positives come from spans that are not entities, with the tagger's
non-entity filter off and on (run by hand; `model/ner/nonentities.py`).

    python benchmarks/eval_non_entities.py [--weights DIR] [--threads 2]

Runs the product on MNRE val (detected entities, the model's threshold) twice and prints, for each
setting, the end-to-end P/R/F1 and the shown triples whose head or tail is a non-entity span.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from mmre_demo.data.mnre import read_mnre  # noqa: E402
from mmre_demo.data.paths import shared_data_dir  # noqa: E402
from mmre_demo.model.ner.nonentities import is_non_entity  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    import torch

    from mmre_demo.pipeline import Pipeline
    from mmre_demo.train.end_to_end import caption_errors, predict_captions, score_runs, triple_key

    torch.set_num_threads(args.threads)
    examples, _ = read_mnre(shared_data_dir() / "mnre" / "mnre_val.txt")
    pipe = Pipeline.load(args.weights, read_text=False)
    threshold = pipe.threshold
    out = {}
    for drop in (False, True):
        pipe.tagger.config.drop_non_entities = drop
        runs = predict_captions(pipe, examples)
        scores = score_runs(runs, threshold)
        fp_non_entity, examples_seen = 0, []
        for r in runs:
            result = r.result(threshold)
            wrong = {(h, rel, t) for (h, rel, t), _ in caption_errors(result).false_positives}
            for tr in result.predicted:
                if triple_key(tr.head.text, tr.relation, tr.tail.text) in wrong and (
                        is_non_entity(tr.head.text.split()) or is_non_entity(tr.tail.text.split())):
                    fp_non_entity += 1
                    examples_seen.append(f"{tr.head.text} {tr.relation} {tr.tail.text}")
        n_fp = sum(scores["false_positives"].values())
        out[f"drop_non_entities={drop}"] = {
            "f1": round(scores["f1"], 4), "precision": round(scores["precision"], 4),
            "recall": round(scores["recall"], 4), "false_positives": n_fp,
            "false_positives_on_non_entity_spans": fp_non_entity, "examples": examples_seen[:10]}
        print(json.dumps(out[f"drop_non_entities={drop}"]), flush=True)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
