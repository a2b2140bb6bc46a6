"""Is model B's end-to-end F1 different from model A's, beyond chance? A paired bootstrap over captions of two
`mmre eval --detect-entities --records FILE` runs on the same data (2,000 resamples, seeded).

    .venv/bin/python benchmarks/paired_bootstrap_e2e.py runs/records_a.jsonl runs/records_b.jsonl

A thin wrapper of `mmre_demo.train.bootstrap` (the same resamples as before it moved there). The standard
report runs both models itself: `mmre eval --data VAL --detect-entities --weights B --compare-to A`
(docs/evaluation.md). Prints F1 of both, B - A, its 95% interval, the share of resamples where B >= A and
the verdict ("noise" when the interval includes 0).
"""

from __future__ import annotations

import json
import sys

from mmre_demo.train.bootstrap import paired_bootstrap, records_counts


def main(argv: list[str]) -> int:
    a, b = ([json.loads(line) for line in open(p, encoding="utf-8")] for p in argv[:2])
    if [r["caption"] for r in a] != [r["caption"] for r in b]:
        print("the two records files are not of the same captions", file=sys.stderr)
        return 2
    result = paired_bootstrap(records_counts(a), records_counts(b))
    print(json.dumps({"f1_a": round(result.f1_a, 4), "f1_b": round(result.f1_b, 4),
                      "b_minus_a": round(result.difference, 4), "ci95": [round(result.low, 4), round(result.high, 4)],
                      "share_b_not_lower": round(result.share_b_not_lower, 3), "verdict": result.verdict}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
