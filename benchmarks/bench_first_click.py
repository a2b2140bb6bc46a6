"""A visitor's first click against the later ones, this tree against a baseline commit, in one sitting (run by
hand, not a test).

    python benchmarks/bench_first_click.py [--baseline 3a38cda] [--repeats 3]

Each round starts one fresh process per side, alternately (A B A B ...), which loads `Pipeline` as the app
does (OCR on, `ocr_workers` = the cores, `warm_up=True` where the side's `Pipeline.load` has it), then
times `predict` on the astronaut example with its caption and the text in the image read: the first click,
then three more with the OCR cache cleared (the same work again). Reported per side: the load's seconds
(warm-up included), the first click and the later clicks' median (ms), and the first click's OCR time.
The baseline is a `git worktree` (bench_vs_baseline.baseline_tree). Quote the load of the machine.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_vs_baseline import REPO, baseline_tree, env_for  # noqa: E402

SNIPPET = """
import inspect, json, os, statistics, sys, time
t = time.perf_counter()
from mmre_demo.pipeline import Pipeline
from mmre_demo.tuning import SERVING_THREADS
options = {"threads": SERVING_THREADS.value, "ocr_workers": os.cpu_count() or 1}
if "warm_up" in inspect.signature(Pipeline.load).parameters:
    options["warm_up"] = True
pipe = Pipeline.load(**options)
load_s = time.perf_counter() - t
image, caption = sys.argv[1], sys.argv[2]

def click():
    t = time.perf_counter()
    pred = pipe.predict(image, caption)
    return (time.perf_counter() - t) * 1000, pred

first, pred = click()
ocr_first = pred.timings_ms.get("ocr_ms")
later = []
for _ in range(3):
    pipe.text_reader.clear_cache()
    later.append(click()[0])
print(json.dumps({"load_s": load_s, "first_ms": first, "later_ms": statistics.median(later),
                  "first_ocr_ms": ocr_first, "pairs": len(pred.pairs)}))
"""


def run(tree: Path) -> dict:
    ex = json.loads((tree / "assets" / "examples.json").read_text())[0]
    res = subprocess.run([sys.executable, "-c", SNIPPET, str(tree / "assets" / ex["image"]), ex["caption"]],
                         cwd=tree, env=env_for(tree), capture_output=True, text=True, check=True)
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--baseline", default="3a38cda")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    sides = {"this": REPO, "baseline": baseline_tree(args.baseline)}
    got: dict[str, list[dict]] = {name: [] for name in sides}
    for r in range(args.repeats):
        for name, tree in sides.items():
            got[name].append(out := run(tree))
            print(f"round {r + 1} {name}: load {out['load_s']:.1f} s, first click {out['first_ms']:.0f} ms "
                  f"(OCR {out['first_ocr_ms'] or 0:.0f} ms), later {out['later_ms']:.0f} ms", flush=True)
    summary = {name: {k: round(statistics.median(o[k] for o in runs), 1) for k in ("load_s", "first_ms", "later_ms")}
               for name, runs in got.items()}
    print(json.dumps({"mode": "first-click", "baseline": args.baseline, "medians": summary}))


if __name__ == "__main__":
    main()
