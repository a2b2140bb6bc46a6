"""This tree against a baseline commit, in one sitting (run by hand, not a test).

    python benchmarks/bench_vs_baseline.py extract [--baseline d29df61] [--posts 600] [--repeats 3]
    python benchmarks/bench_vs_baseline.py predict [--baseline d29df61] [--repeats 3] [--calls 20]
    python benchmarks/bench_vs_baseline.py app [--baseline d29df61] [--repeats 5]

The baseline is checked out with `git worktree` (under the system's temp folder, once) and each side runs
its own code and its own shipped weights, alternately (A B A B ...), so a drift of the machine's speed
hits both alike; medians are reported.

* extract: `mmre extract` as a whole process on the first N unique MNRE val captions, text only
           (`--no-read-text`): posts/s of each side and the ratio this / baseline.
* predict: a fresh process per round loads `Pipeline` (its RSS after loading is printed) and times
           `predict(image, caption)` on the astronaut photo with a caption where the tagger finds 3
           entities, OCR off; p50 of `--calls` calls after 3 warm-ups; the ratio this / baseline.
* app:     `benchmarks/bench_app.py` (this tree's script) serving each side's `app.py` in turn: the load run
           (8 gradio_client clients x 10 requests, each a distinct image + caption) gives requests/s and p95,
           the clicks one at a time give each example's median; medians over rounds, ratios this / baseline.

Needs the shared data (`../shared/data` or $MMRE_DATA_DIR) for `extract`. Quote the load of the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from mmre_demo.data.paths import shared_data_dir  # noqa: E402

CAPTION = "Astronaut Eileen Collins of NASA poses in Houston."  # the tagger finds 3 entities
PREDICT_SNIPPET = """
import json, statistics, sys, time
import torch
torch.set_num_threads(2)
from mmre_demo.pipeline import Pipeline
pipe = Pipeline.load(read_text=False)
rss = next(int(line.split()[1]) / 1024 for line in open("/proc/self/status") if line.startswith("VmRSS:"))
image, caption = sys.argv[1], sys.argv[2]
for _ in range(3):
    pred = pipe.predict(image, caption, read_text=False)
times = []
for _ in range(int(sys.argv[3])):
    t = time.perf_counter()
    pred = pipe.predict(image, caption, read_text=False)
    times.append((time.perf_counter() - t) * 1000)
print(json.dumps({"p50_ms": statistics.median(times), "entities": len(pred.entities), "pairs": len(pred.pairs),
                  "rss_mb_after_load": rss}))
"""


def baseline_tree(commit: str) -> Path:
    """A worktree of `commit` (made once; reused while it exists)."""
    path = Path(tempfile.gettempdir()) / f"mmre_baseline_{commit}"
    if not (path / "mmre_demo").is_dir():
        subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", str(path), commit], check=True,
                       capture_output=True)
    return path


def env_for(tree: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(tree), "HF_HUB_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1",
            "GRADIO_ANALYTICS_ENABLED": "False"}


def write_captions(path: Path, n: int) -> int:
    from mmre_demo.extract import read_items
    from mmre_demo.extract.posts import Post

    posts = [p for p in read_items(shared_data_dir() / "mnre" / "mnre_val.txt") if isinstance(p, Post)][:n]
    with path.open("w", encoding="utf-8") as fh:
        for i, p in enumerate(posts):
            fh.write(json.dumps({"id": i, "caption": p.caption, "image": None}) + "\n")
    return len(posts)


def run_extract(tree: Path, corpus: Path, out: Path) -> float:
    t = time.perf_counter()
    subprocess.run([sys.executable, "-m", "mmre_demo", "extract", str(corpus), "--out", str(out),
                    "--no-read-text", "--json"], cwd=tree, env=env_for(tree), check=True, capture_output=True)
    return time.perf_counter() - t


def run_predict(tree: Path, calls: int) -> dict:
    image = str(REPO / "assets" / "astronaut.jpg")
    done = subprocess.run([sys.executable, "-c", PREDICT_SNIPPET, image, CAPTION, str(calls)], cwd=tree,
                          env=env_for(tree), check=True, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def run_app(tree: Path, port: int, out: Path) -> dict:
    subprocess.run([sys.executable, str(REPO / "benchmarks" / "bench_app.py"), "--root", str(tree), "--port",
                    str(port), "--json", str(out)], cwd=REPO, env=env_for(REPO), check=True, capture_output=True)
    return json.loads(out.read_text())


def app_summary(runs: dict[str, list[dict]], baseline: str) -> dict:
    """Medians over rounds of the load run and of each example's click, and this / baseline ratios."""
    def med(name: str, key: str) -> float:
        return statistics.median(r["load"][key] for r in runs[name])

    def per_run(key: str) -> dict[str, float]:
        return {n: statistics.median(r[key] for r in rs) for n, rs in runs.items()}

    clicks = next(k for k in runs["this"][0] if k.startswith("click_to_result"))
    click = {name: {ex: statistics.median(r[clicks][ex] for r in rs) for ex in rs[0][clicks]}
             for name, rs in runs.items()}
    return {"mode": "app", "baseline": baseline,
            "requests_per_s": {n: med(n, "throughput_rps") for n in runs},
            "ratio_requests_per_s": round(med("this", "throughput_rps") / med("baseline", "throughput_rps"), 3),
            "p95_ms": {n: med(n, "p95_ms") for n in runs},
            "ratio_p95": round(med("this", "p95_ms") / med("baseline", "p95_ms"), 3),
            "p50_ms": {n: med(n, "p50_ms") for n in runs},
            "errors": {n: sum(r["load"]["errors"] for r in rs) for n, rs in runs.items()},
            "click_ms_median": click,
            "start_to_model_ready_s": per_run("start_to_model_ready_s"),
            "rss_mb_after_load": per_run("rss_mb_after_load"),
            "rounds_requests_per_s": {n: [r["load"]["throughput_rps"] for r in rs] for n, rs in runs.items()},
            "rounds_p95_ms": {n: [r["load"]["p95_ms"] for r in rs] for n, rs in runs.items()}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("mode", choices=["extract", "predict", "app"])
    ap.add_argument("--baseline", default="d29df61")
    ap.add_argument("--posts", type=int, default=600)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--calls", type=int, default=20)
    args = ap.parse_args()
    trees = {"this": REPO, "baseline": baseline_tree(args.baseline)}
    results: dict[str, list[float]] = {name: [] for name in trees}
    if args.mode == "app":
        runs: dict[str, list[dict]] = {name: [] for name in trees}
        with tempfile.TemporaryDirectory() as tmp:
            for r in range(args.repeats):
                for k, (name, tree) in enumerate(trees.items()):
                    got = run_app(tree, 7900 + 2 * r + k, Path(tmp) / f"{name}_{r}.json")
                    runs[name].append(got)
                    print(f"round {r + 1} {name}: {got['load']['throughput_rps']} req/s, p50 {got['load']['p50_ms']} "
                          f"ms, p95 {got['load']['p95_ms']} ms, {got['load']['errors']} errors", flush=True)
        print(json.dumps(app_summary(runs, args.baseline)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp) / "corpus.jsonl"
        n = write_captions(corpus, args.posts) if args.mode == "extract" else 0
        for r in range(args.repeats):
            for name, tree in trees.items():
                if args.mode == "extract":
                    seconds = run_extract(tree, corpus, Path(tmp) / f"{name}_{r}")
                    results[name].append(n / seconds)
                    print(f"round {r + 1} {name}: {n} posts in {seconds:.1f} s = {n / seconds:.2f} posts/s", flush=True)
                else:
                    got = run_predict(tree, args.calls)
                    results[name].append(got["p50_ms"])
                    print(f"round {r + 1} {name}: p50 {got['p50_ms']:.1f} ms ({got['entities']} entities, "
                          f"{got['pairs']} pairs; RSS after Pipeline.load {got['rss_mb_after_load']:.0f} MB)",
                          flush=True)
    this, base = statistics.median(results["this"]), statistics.median(results["baseline"])
    unit = "posts/s" if args.mode == "extract" else "ms p50"
    print(json.dumps({"mode": args.mode, "baseline": args.baseline, "unit": unit, "this": round(this, 3),
                      "baseline_value": round(base, 3), "ratio_this_over_baseline": round(this / base, 3),
                      "rounds": {k: [round(v, 3) for v in vs] for k, vs in results.items()}}))


if __name__ == "__main__":
    main()
