"""`mmre extract INPUT --out DIR`: a corpus of posts -> triples, posts, errors, the corpus graph, a summary."""

from __future__ import annotations

import argparse
import json
import sys

from mmre_demo.prediction import DEFAULT_TOP_K, MAX_PAIRS


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("extract", help="extract the knowledge graph of a corpus (batched, resumable; local or Ray)",
                       description="INPUT: JSON Lines or CSV with id, caption, image (path or empty), or an MNRE "
                                   "file (one post per unique caption + image). Writes triples.jsonl, posts.jsonl, "
                                   "errors.jsonl, graph.json, graph.graphml, triples.csv and summary.json to --out.")
    p.add_argument("input", help="corpus file: .jsonl, .csv, or .txt (MNRE lines)")
    p.add_argument("--out", required=True, help="output folder (created; must be new unless --resume)")
    p.add_argument("--images", help="folder that relative image paths (and MNRE img_id) are resolved against "
                                    "(default: the input file's folder; MNRE without --images is text only)")
    p.add_argument("--format", dest="fmt", choices=["auto", "jsonl", "csv", "mnre"], default="auto",
                   help="input format (default: from the extension)")
    p.add_argument("--batch-size", type=int, default=32, help="posts per model batch and per commit (default 32)")
    p.add_argument("--resume", action="store_true", help="continue the extraction already in --out")
    p.add_argument("--engine", choices=["local", "ray"], default="local")
    p.add_argument("--ray-address", help="join this Ray cluster (default: start a local Ray on this machine)")
    p.add_argument("--ray-actors", type=int, default=1, help="model actors (each loads the model once; default 1)")
    p.add_argument("--ray-cpus", type=int, help="CPUs of the local Ray (default: all of this machine's)")
    p.add_argument("--threshold", type=float, default=None,
                   help="probability threshold of the graph exports (default: the model's own, with which "
                        "triples.jsonl is written; a higher one filters the exports further)")
    p.add_argument("--weights", help="weights folder (default: $MMRE_WEIGHTS, else the shipped weights/)")
    p.add_argument("--device", default="auto", help="auto (cuda > mps > cpu; the default), cpu, cuda or mps")
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads (per Ray actor; default 2)")
    p.add_argument("--decode-workers", type=int, default=2, help="image decoding threads (default 2)")
    p.add_argument("--max-pairs", type=int, default=MAX_PAIRS,
                   help="ordered entity pairs classified per post (default %(default)s)")
    p.add_argument("--top-k", type=int, default=DEFAULT_TOP_K, help="alternatives kept per pair (default %(default)s)")
    p.add_argument("--no-read-text", action="store_true",
                   help="do not read the text in the images (OCR, ~0.2-0.3 s per image; on by default)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    p.add_argument("--json", action="store_true", help="print the summary as JSON (the last line of stdout)")
    p.set_defaults(handler=cmd_extract)


def cmd_extract(args: argparse.Namespace) -> int:
    from mmre_demo.data.schema import InputError
    from mmre_demo.extract.engine import ExtractJob, run_local
    from mmre_demo.extract.predictor import PredictorSpec

    if args.threshold is not None and not 0.0 <= args.threshold <= 1.0:
        raise InputError(f"--threshold must be in [0, 1], got {args.threshold}")
    job = ExtractJob(args.input, args.out, args.images, args.fmt, args.batch_size, args.resume, args.threshold,
                     args.decode_workers, progress=not args.no_progress)
    spec = PredictorSpec(args.weights, args.device, args.max_pairs, args.top_k, max(1, args.threads),
                         read_text=not args.no_read_text)
    try:
        if args.engine == "ray":
            from mmre_demo.extract.ray_engine import run_ray

            summary = run_ray(job, spec, args.ray_address, args.ray_actors, args.ray_cpus)
        else:
            summary = run_local(job, spec)
    except KeyboardInterrupt:
        print(f"mmre extract: interrupted; every finished batch is in {args.out}. Run the same command with "
              "--resume to continue.", file=sys.stderr)
        return 130
    run = summary["this_run"]
    print(f"{summary['out']}: {summary['posts']} posts ({summary['posts_error']} errors), {summary['triples']} "
          f"triples; this run {run['posts']} posts in {run['seconds']} s ({run['posts_per_s']} posts/s)")
    if args.json:
        print(json.dumps(summary, ensure_ascii=False))
    return 0
