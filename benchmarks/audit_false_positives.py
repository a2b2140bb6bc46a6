"""Sample end-to-end "false positives" on pairs MNRE never annotated, for a hand audit.

MNRE annotates only some pairs of a tweet, so a relation the product finds on another pair counts
as wrong even when it is true. Reading a random sample says how many of them are really wrong:
the honest estimate of the product's precision.

    mmre eval --data ../shared/data/mnre/mnre_val.txt --detect-entities --records runs/e2e_val.jsonl
    python benchmarks/audit_false_positives.py runs/e2e_val.jsonl --n 50 --seed 13 > runs/audit.md
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

from mmre_demo.train.end_to_end import triple_key


def unannotated_false_positives(records_path: Path) -> list[dict]:
    """Every false positive on an unannotated pair, with the caption and the triple as it was shown."""
    out = []
    for line in records_path.read_text(encoding="utf-8").splitlines():
        rec = json.loads(line)
        shown = {triple_key(h, rel, t): (h, rel, t, p) for h, rel, t, p in rec["predicted"]}
        for h, rel, t, reason in rec["false_positives"]:
            if reason == "unannotated_pair":
                head, label, tail, prob = shown[(h, rel, t)]
                out.append({"caption": rec["caption"], "line_no": rec["line_no"], "head": head, "relation": label,
                            "tail": tail, "probability": prob, "gold": rec["gold"]})
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("records", type=Path, help="JSONL written by `mmre eval --detect-entities --records`")
    ap.add_argument("--n", type=int, default=50)
    ap.add_argument("--seed", type=int, default=13)
    args = ap.parse_args()
    pool = unannotated_false_positives(args.records)
    sample = random.Random(args.seed).sample(pool, min(args.n, len(pool)))
    print(f"{len(pool)} false positives on unannotated pairs; {len(sample)} sampled (seed {args.seed})\n")
    print("| # | caption | shown triple | p | verdict |")
    print("|---|---|---|---|---|")
    for i, fp in enumerate(sample, 1):
        caption = fp["caption"].replace("|", "/")
        print(f"| {i} | {caption} | {fp['head']} — `{fp['relation']}` → {fp['tail']} | {fp['probability']:.2f} | |")


if __name__ == "__main__":
    main()
