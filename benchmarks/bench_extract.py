"""Throughput, time split and memory of `mmre extract` (run by hand, not a test).

    python benchmarks/bench_extract.py text   [--limit 931] [--threads 2] [--batch-size 32]
    python benchmarks/bench_extract.py images [--limit 500]
    python benchmarks/bench_extract.py memory [--posts 10000] [--checkpoints 1000,10000]
    python benchmarks/bench_extract.py ray    [--limit 200]
    python benchmarks/bench_extract.py all    [--json results.json]

* text:   the unique MNRE val captions, text only: the one-at-a-time `Pipeline.predict` loop against
          `mmre extract`'s local engine in the same process (posts/s each, the ratio, and whether
          the triples are the same: labels equal, probabilities within 1e-5).
* images: captions with the 34 sample images round-robin: posts/s and where the time goes
          (decode in the thread pool, vision, tagger, relation, write, export).
* memory: `mmre extract` in a subprocess on N text posts (MNRE train + val captions, repeated
          with new ids when N is larger); its RSS when posts.jsonl reaches each checkpoint.
* ray:    the same text corpus on `--engine ray` (a local Ray, 2 CPUs) against the local engine.

Needs the shared data (`../shared/data` or $MMRE_DATA_DIR). Numbers depend on what else runs on the
machine: report the load with them.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from mmre_demo.data.paths import shared_data_dir  # noqa: E402
from mmre_demo.extract import ExtractJob, PipelinePredictor, model_info, read_items, run_local  # noqa: E402
from mmre_demo.extract.images import read_and_decode  # noqa: E402
from mmre_demo.extract.posts import Post  # noqa: E402


def val_posts(limit: int | None) -> list[Post]:
    posts = [p for p in read_items(shared_data_dir() / "mnre" / "mnre_val.txt") if isinstance(p, Post)]
    return posts[:limit] if limit else posts


def write_corpus(path: Path, captions: list[str], images: list[Path] | None = None) -> Path:
    with path.open("w", encoding="utf-8") as fh:
        for i, c in enumerate(captions):
            img = str(images[i % len(images)]) if images else None
            fh.write(json.dumps({"id": i, "caption": c, "image": img}) + "\n")
    return path


def load_pipeline(threads: int):
    import torch

    from mmre_demo.pipeline import Pipeline

    torch.set_num_threads(threads)
    return Pipeline.load(device="cpu")


def same_triples(loop_preds: list, folder: Path, tol: float = 1e-5) -> dict:
    """Compare the loop's relations with triples.jsonl: same (post, head, tail, label), probabilities within tol."""
    got = [json.loads(x) for x in (folder / "triples.jsonl").read_text(encoding="utf-8").splitlines()]
    want = [(str(i), r) for i, p in enumerate(loop_preds) for r in p.relations()]
    keys_equal = [(t["post_id"], t["head"]["start"], t["tail"]["start"], t["relation"]) for t in got] == [
        (i, r.head.start, r.tail.start, r.label) for i, r in want]
    max_diff = max((abs(t["probability"] - r.probability) for t, (_, r) in zip(got, want)), default=0.0)
    return {"triples": len(got), "identical": keys_equal and max_diff <= tol, "max_probability_diff": max_diff}


def bench_text(args: argparse.Namespace) -> dict:
    posts = val_posts(args.limit)
    pipe = load_pipeline(args.threads)
    pipe.predict(None, posts[0].caption)  # warm-up
    t = time.perf_counter()
    loop = [pipe.predict(None, p.caption) for p in posts]
    loop_s = time.perf_counter() - t
    with tempfile.TemporaryDirectory() as tmp:
        f = write_corpus(Path(tmp) / "c.jsonl", [p.caption for p in posts])
        predictor = PipelinePredictor(pipe, model_info())
        s = run_local(ExtractJob(f, Path(tmp) / "out", batch_size=args.batch_size, progress=False), predictor)
        check = same_triples(loop, Path(tmp) / "out")
    extract_rate = s["this_run"]["posts_per_s"]
    return {"posts": len(posts), "threads": args.threads, "batch_size": args.batch_size,
            "loop_posts_per_s": round(len(posts) / loop_s, 2),
            "extract_posts_per_s": extract_rate, "speedup": round(extract_rate * loop_s / len(posts), 2),
            "extract_timings_s": s["this_run"]["timings_s"], **check}


def bench_images(args: argparse.Namespace) -> dict:
    images = sorted((shared_data_dir() / "mnre_images_sample").glob("*.jpg"))
    posts = val_posts(args.limit)
    pipe = load_pipeline(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        f = write_corpus(Path(tmp) / "c.jsonl", [p.caption for p in posts], images)
        decode_items = [it for it in read_items(f)]
        t = time.perf_counter()
        for it in decode_items:  # decoding alone, one thread: the work the thread pool takes off the model
            read_and_decode(it)
        decode_s = time.perf_counter() - t
        predictor = PipelinePredictor(pipe, model_info())
        s = run_local(ExtractJob(f, Path(tmp) / "out", batch_size=args.batch_size, progress=False), predictor)
    tim = s["this_run"]["timings_s"]
    return {"posts": len(posts), "images": len(images), "posts_per_s": s["this_run"]["posts_per_s"],
            "seconds": s["this_run"]["seconds"], "decode_s_one_thread": round(decode_s, 3),
            "split_s": {"decode_wait": tim.get("wait_for_decode"), "vision": tim.get("image"), "tagger": tim.get("ner"),
                        "relation": tim.get("relation"), "write": tim.get("write"), "export": tim.get("export"),
                        "ocr_beside_the_models": tim.get("ocr"), "predict_wall": tim.get("predict")}}


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def bench_memory(args: argparse.Namespace) -> dict:
    checkpoints = sorted(int(x) for x in args.checkpoints.split(","))
    data = shared_data_dir() / "mnre"
    captions = [p.caption for f in ("mnre_train.txt", "mnre_val.txt") for p in read_items(data / f)
                if isinstance(p, Post)]
    corpus = [captions[i % len(captions)] for i in range(args.posts)]
    out: dict = {"posts": args.posts, "rss_mb": {}}
    with tempfile.TemporaryDirectory() as tmp:
        f = write_corpus(Path(tmp) / "c.jsonl", corpus)
        env = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1"}
        cmd = [sys.executable, "-m", "mmre_demo", "extract", str(f), "--out", str(Path(tmp) / "out"), "--no-progress",
               "--batch-size", str(args.batch_size), "--threads", str(args.threads)]
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL)
        posts_file, todo = Path(tmp) / "out" / "posts.jsonl", list(checkpoints)
        while todo and proc.poll() is None:
            n = sum(1 for _ in posts_file.open("rb")) if posts_file.is_file() else 0
            if n >= todo[0]:
                out["rss_mb"][f"after_{n}"] = round(rss_mb(proc.pid), 1)
                todo.pop(0)
            time.sleep(0.2)
        proc.wait()
    values = list(out["rss_mb"].values())
    if len(values) >= 2:
        out["change_first_to_last"] = round((values[-1] - values[0]) / values[0], 4)
    return out


def bench_ray(args: argparse.Namespace) -> dict:
    from mmre_demo.extract.predictor import PredictorSpec
    from mmre_demo.extract.ray_engine import run_ray

    posts = val_posts(args.limit)
    with tempfile.TemporaryDirectory() as tmp:
        f = write_corpus(Path(tmp) / "c.jsonl", [p.caption for p in posts])
        spec = PredictorSpec(threads=args.threads)
        t = time.perf_counter()
        local = run_local(ExtractJob(f, Path(tmp) / "local", batch_size=args.batch_size, progress=False), spec)
        local_s = time.perf_counter() - t  # including the model load, as the Ray run's actors include theirs
        t = time.perf_counter()
        ray = run_ray(ExtractJob(f, Path(tmp) / "ray", batch_size=args.batch_size, progress=False), spec,
                      actors=1, num_cpus=2)
        ray_s = time.perf_counter() - t
        local_bytes = (Path(tmp) / "local" / "triples.jsonl").read_bytes()
        same = local_bytes == (Path(tmp) / "ray" / "triples.jsonl").read_bytes()
    return {"posts": len(posts), "local_seconds_with_load": round(local_s, 2),
            "ray_seconds_with_start": round(ray_s, 2),
            "local_posts_per_s": local["this_run"]["posts_per_s"], "ray_posts_per_s": ray["this_run"]["posts_per_s"],
            "ray_overhead_s": round(ray_s - local_s, 2), "ray_start_s": ray["this_run"]["timings_s"].get("ray_start"),
            "same_triples_file": same}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("what", choices=["text", "images", "memory", "ray", "all"])
    ap.add_argument("--limit", type=int, help="posts (text: 931, images: 500, ray: 200 by default)")
    ap.add_argument("--posts", type=int, default=10_000, help="memory: corpus size")
    ap.add_argument("--checkpoints", default="1000,10000", help="memory: RSS when this many posts are written")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--json", help="also write the results to this file")
    args = ap.parse_args()
    limits = {"text": 931, "images": 500, "ray": 200}
    results = {"load_average": os.getloadavg()[0], "cpus": os.cpu_count()}
    for what, fn in (("text", bench_text), ("images", bench_images), ("memory", bench_memory), ("ray", bench_ray)):
        if args.what in (what, "all"):
            sub = argparse.Namespace(**{**vars(args), "limit": args.limit or limits.get(what)})
            results[what] = fn(sub)
            print(json.dumps({what: results[what]}), flush=True)
    results["load_average_after"] = os.getloadavg()[0]
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    print(json.dumps(results))


if __name__ == "__main__":
    main()
