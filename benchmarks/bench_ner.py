"""NER tagger latency on this CPU: load time, then per-caption latency (median over runs after warm-up).

Usage: .venv/bin/python benchmarks/bench_ner.py [--weights DIR] [--runs 30] [--threads N] [--float]
Not a test: numbers depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

CAPTIONS = [
    "Kawhi Leonard wins the fan vote for Block of the Year ! #NBAAwards",
    "RT @CNN: President Obama meets Angela Merkel in Berlin today http://t.co/abc123 🇩🇪",
    "Justin Bieber , Rich the Kid and Diplo have a new song out",
    "Great day at the Hollywood Walk of Fame with @BillCosby 😂😂 #LA",
    "Manchester United beat Liverpool 2-1 at Old Trafford",
]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--weights", default=None)
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch default)")
    args = ap.parse_args()
    from mmre_demo.logs import setup_logging

    setup_logging()

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    from mmre_demo.model.ner import NerTagger
    from mmre_demo.serving import serving_tagger

    t0 = time.perf_counter()
    tagger = serving_tagger(NerTagger.from_pretrained(args.weights))
    load_s = time.perf_counter() - t0
    for c in CAPTIONS:  # warm-up
        tagger.tag(c)
    per_caption = []
    for _ in range(args.runs):
        for c in CAPTIONS:
            t = time.perf_counter()
            tagger.tag(c)
            per_caption.append((time.perf_counter() - t) * 1000)
    t = time.perf_counter()
    for _ in range(max(1, args.runs // 5)):
        tagger.tag_batch(CAPTIONS * 4)
    batch_ms = (time.perf_counter() - t) * 1000 / (max(1, args.runs // 5) * len(CAPTIONS) * 4)
    print(json.dumps({
        "load_seconds": round(load_s, 2),
        "backbone": "float32",
        "threads": torch.get_num_threads(), "calls": len(per_caption),
        "median_ms_per_caption": round(statistics.median(per_caption), 2),
        "p90_ms_per_caption": round(sorted(per_caption)[int(0.9 * len(per_caption))], 2),
        "batched_ms_per_caption": round(batch_ms, 2),
    }))


if __name__ == "__main__":
    main()
