"""The local engine: read -> batch -> decode images (thread pool, one batch ahead) -> predict -> commit.

Posts are grouped into batches of `batch_size`; the predictor sees one batch at a time (with
`Pipeline.predict_many`, one tagger batch and one relation batch), and every finished batch is
appended to the output folder and fsynced before the next one starts, so a kill loses at most the
batch in flight. A progress bar with posts/s and ETA goes to stderr.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any

from mmre_demo.extract.exports import SUMMARY, write_exports
from mmre_demo.extract.images import prefetched
from mmre_demo.extract.posts import InputProblem, Item, PostInput, PostResult
from mmre_demo.extract.predictor import BatchPredictor, ModelInfo, PredictorSpec
from mmre_demo.extract.readers import count_items, read_items, sniff_format
from mmre_demo.extract.records import Records, records_for_problem, records_for_result
from mmre_demo.extract.store import OutputStore, atomic_write

log = logging.getLogger(__name__)

DEFAULT_BATCH_SIZE = 32


@dataclass
class ExtractJob:
    """What to extract and where; the model side is the predictor's (or the Ray spec's)."""

    input: Path
    out: Path
    images: Path | None = None
    fmt: str = "auto"
    batch_size: int = DEFAULT_BATCH_SIZE
    resume: bool = False
    threshold: float | None = None  # of the graph exports; None: the model's own
    decode_workers: int = 2
    progress: bool = True

    def __post_init__(self) -> None:
        self.input, self.out = Path(self.input), Path(self.out)
        self.images = Path(self.images) if self.images is not None else None
        if self.batch_size < 1:
            from mmre_demo.data.schema import InputError

            raise InputError(f"--batch-size must be at least 1, got {self.batch_size}")

    def describe(self) -> dict[str, Any]:
        """Manifest fields about the input (informative; resume does not compare them)."""
        return {"input": str(self.input.resolve()), "input_format": sniff_format(self.input, self.fmt),
                "images": str(self.images.resolve()) if self.images else None}


@dataclass
class RunStats:
    """Counters of one run (not of the folder): posts written and where the time went."""

    posts: int = 0
    t0: float = field(default_factory=time.perf_counter)
    seconds: dict[str, float] = field(default_factory=lambda: defaultdict(float))

    def add_model_timings(self, results: Iterable[PostResult]) -> None:
        """Sum the pipeline's own per-stage timings (tagger, vision, relation) of the batch."""
        for r in results:
            if r.prediction is not None:
                for k, v in r.prediction.timings_ms.items():
                    if k != "total_ms":
                        self.seconds[k.removesuffix("_ms")] += v / 1000.0


def open_store(job: ExtractJob, info: ModelInfo, settings: dict[str, Any]) -> OutputStore:
    read_items(job.input, job.fmt, job.images)  # format / header / folder errors before anything is created
    return OutputStore.open(job.out, info, settings, job.resume, job.describe())


def pending_items(job: ExtractJob, store: OutputStore) -> Iterator[Item]:
    """The input's records that the folder does not hold yet, in input order."""
    return (it for it in read_items(job.input, job.fmt, job.images) if not store.is_done(it.key))


def batched(items: Iterable[Item], n: int) -> Iterator[list[Item]]:
    it = iter(items)
    while batch := list(islice(it, n)):
        yield batch


def predict_decoded(decoded: Sequence[PostInput | PostResult | InputProblem], predictor: BatchPredictor
                    ) -> list[PostResult | InputProblem]:
    """Run the predictor on the decodable posts of a batch; keep input order with the failures in place."""
    ready = [x for x in decoded if isinstance(x, PostInput)]
    results = predictor.predict_batch(ready) if ready else []
    if len(results) != len(ready):
        raise RuntimeError(f"the predictor returned {len(results)} results for {len(ready)} posts")
    it = iter(results)
    return [next(it) if isinstance(x, PostInput) else x for x in decoded]


def to_records(outcomes: Sequence[PostResult | InputProblem], info: ModelInfo) -> list[Records]:
    return [records_for_problem(x) if isinstance(x, InputProblem) else records_for_result(x, info) for x in outcomes]


def progress_bar(job: ExtractJob, total: int | None, initial_done: int) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, unit="post", file=sys.stderr, disable=not job.progress, dynamic_ncols=True,
                desc="extract", smoothing=0.1, mininterval=0.5,
                postfix={"done before": initial_done} if initial_done else None)


def run_local(job: ExtractJob, predictor: BatchPredictor | PredictorSpec) -> dict[str, Any]:
    """Run (or resume) the job in this process; returns the summary (also written to summary.json).

    With a `PredictorSpec` the model is loaded only after the input and the output folder passed their
    checks (an unwritable --out is refused in a second, not after the model load).
    """
    stats = RunStats()
    spec = predictor if isinstance(predictor, PredictorSpec) else None
    info, settings = (spec.info(), spec.settings()) if spec else (predictor.info, predictor.settings)
    with open_store(job, info, settings) as store:
        if spec is not None:
            predictor = spec.build()
            if predictor.info != info or predictor.settings != settings:
                raise RuntimeError(f"the loaded model {predictor.info}/{predictor.settings} is not the one the "
                                   f"folder was opened for ({info}/{settings})")
        total = max(0, count_items(job.input, job.fmt) - store.counts.posts) if job.progress else None
        with progress_bar(job, total, store.counts.posts) as bar:
            batches = prefetched(batched(pending_items(job, store), job.batch_size), job.decode_workers)
            t_wait = time.perf_counter()
            for decoded in batches:
                t1 = time.perf_counter()
                stats.seconds["wait_for_decode"] += t1 - t_wait
                outcomes = predict_decoded(decoded, predictor)
                t2 = time.perf_counter()
                stats.seconds["predict"] += t2 - t1
                stats.add_model_timings(x for x in outcomes if isinstance(x, PostResult))
                n = store.commit(to_records(outcomes, predictor.info))
                t_wait = time.perf_counter()
                stats.seconds["write"] += t_wait - t2
                stats.posts += n
                bar.update(n)
        return finish(job, store, "local", stats)


def finish(job: ExtractJob, store: OutputStore, engine: str, stats: RunStats,
           extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Exports from the files, then summary.json (counts of the folder, speed of this run)."""
    t = time.perf_counter()
    threshold = job.threshold if job.threshold is not None else float(store.manifest["model"].get("threshold", 0.5))
    graph = write_exports(job.out, threshold)
    stats.seconds["export"] += time.perf_counter() - t
    seconds = time.perf_counter() - stats.t0
    summary = {
        "format": "mmre_demo.extract.summary/1", "input": str(job.input), "out": str(job.out), "engine": engine,
        "model": store.manifest["model"], "settings": store.manifest["settings"],
        **store.counts.as_dict(), "errors": store.counts.errors, "graph": graph,
        "this_run": {"posts": stats.posts, "resumed_after": store.resumed_from, "seconds": round(seconds, 3),
                     "posts_per_s": round(stats.posts / seconds, 3) if seconds > 0 else None,
                     "batch_size": job.batch_size,
                     "timings_s": {k: round(v, 3) for k, v in sorted(stats.seconds.items())}, **(extra or {})},
    }
    atomic_write(job.out / SUMMARY, json.dumps(summary, indent=1, ensure_ascii=False))
    log.info("%s: %d posts (%d errors), %d triples", job.out, summary["posts"], summary["errors"], summary["triples"])
    return summary
