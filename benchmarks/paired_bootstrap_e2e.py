"""Is model B's end-to-end F1 lower than model A's, beyond chance? A paired bootstrap over captions of two
`mmre eval --detect-entities --records FILE` runs on the same data (2,000 resamples, seeded).

    .venv/bin/python benchmarks/paired_bootstrap_e2e.py runs/records_a.jsonl runs/records_b.jsonl

Per caption a record holds its gold triples, false positives and misses, so found = gold relations -
misses and predicted = found + false positives: the same counts `score_captions` sums (F1 matches the
command's own). Prints F1 of both, B - A, its 95% interval and the share of resamples where B >= A.
"""

from __future__ import annotations

import json
import random
import sys


def caption_counts(record: dict) -> tuple[int, int, int]:
    """(predicted, gold, found) triples of one caption."""
    gold = sum(g[1] != "None" for g in record["gold"])
    found = gold - len(record["misses"])
    return found + len(record["false_positives"]), gold, found


def f1(rows: list[tuple[int, int, int]]) -> float:
    predicted, gold, found = (sum(r[k] for r in rows) for k in range(3))
    return 2 * found / (predicted + gold) if predicted + gold else 0.0


def main(argv: list[str]) -> int:
    a, b = ([json.loads(line) for line in open(p, encoding="utf-8")] for p in argv[:2])
    if [r["caption"] for r in a] != [r["caption"] for r in b]:
        print("the two records files are not of the same captions", file=sys.stderr)
        return 2
    ca, cb = [caption_counts(r) for r in a], [caption_counts(r) for r in b]
    rng, n = random.Random(0), len(ca)
    diffs = []
    for _ in range(2000):
        idx = [rng.randrange(n) for _ in range(n)]
        diffs.append(f1([cb[i] for i in idx]) - f1([ca[i] for i in idx]))
    diffs.sort()
    print(json.dumps({"f1_a": round(f1(ca), 4), "f1_b": round(f1(cb), 4), "b_minus_a": round(f1(cb) - f1(ca), 4),
                      "ci95": [round(diffs[49], 4), round(diffs[1950], 4)],
                      "share_b_not_lower": round(sum(d >= 0 for d in diffs) / len(diffs), 3)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
