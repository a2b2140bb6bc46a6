"""The same job on Ray Data: `read_text` -> read image bytes -> `map_batches(ExtractActor)` -> the driver's store.

* The driver streams the records still to do into `_pending.jsonl` in the output folder (one JSON
  item per line, so 100k posts are never in memory) and Ray Data reads it in blocks.
* Reading that file and the image files is pinned to the driver's node, so a cluster needs no
  shared file system: image bytes travel through Ray's object store.
* `ExtractActor` loads the model once per actor (an actor pool of `actors` actors), decodes the
  images in a thread pool, calls the same `BatchPredictor` and builds the same records as the
  local engine.
* Results come back in input order (`preserve_order`) and the driver commits them through the same
  `OutputStore`: resume, crash-safety and the final files are those of the local engine.

Ray is an optional extra (`pip install -e ".[distributed]"`); without it this module says so.
"""

from __future__ import annotations

import json
import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from mmre_demo.data.schema import InputError
from mmre_demo.extract.engine import (
    ExtractJob,
    RunStats,
    finish,
    open_store,
    pending_items,
    predict_decoded,
    progress_bar,
    to_records,
)
from mmre_demo.extract.images import decode_or_error, read_checked
from mmre_demo.extract.posts import InputProblem, Post, item_from_dict
from mmre_demo.extract.predictor import PredictorSpec
from mmre_demo.extract.records import Records

log = logging.getLogger(__name__)

PENDING = "_pending.jsonl"


def require_ray() -> Any:
    """`ray` with Ray Data, or a clear InputError naming the extra to install."""
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError as exc:
        raise InputError(f"--engine ray needs Ray Data ({exc.name} is not installed): "
                         "pip install -e \".[distributed]\"  (or pip install \"ray[data]\")") from None
    return ray


def attach_image_bytes(batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Ray Data stage on the driver's node: add each post's image bytes (or the reason it has none)."""
    raws, has, errors = [], [], []
    for text in batch["text"]:
        item = item_from_dict(json.loads(text))
        raw, err = read_checked(item) if isinstance(item, Post) else (None, None)
        # no None in Arrow columns: a column of only None comes back as float NaN
        raws.append(raw or b"")
        has.append(raw is not None)
        errors.append(err or "")
    return {"item": batch["text"], "image": np.array(raws, dtype=object), "has_image": np.array(has, dtype=bool),
            "image_error": np.array(errors, dtype=object)}


class ExtractActor:
    """One model per actor; `__call__` turns a batch of items into their output records (as JSON text)."""

    def __init__(self, spec: dict[str, Any], decode_workers: int = 2):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        self.predictor = PredictorSpec(**spec).build()
        self.pool = ThreadPoolExecutor(max_workers=max(1, decode_workers), thread_name_prefix="mmre-decode")

    def _decode(self, text: str, raw: bytes, has_image: bool, error: str) -> Any:
        item = item_from_dict(json.loads(str(text)))
        if isinstance(item, InputProblem):
            return item
        return decode_or_error(item, bytes(raw) if has_image else None, str(error) or None)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        decoded = list(self.pool.map(self._decode, batch["item"], batch["image"], batch["has_image"],
                                     batch["image_error"]))
        t = time.perf_counter()
        outcomes = predict_decoded(decoded, self.predictor)
        seconds = time.perf_counter() - t
        records = to_records(outcomes, self.predictor.info)
        timings = [json.dumps({k.removesuffix("_ms"): v / 1000.0 for k, v in o.prediction.timings_ms.items()
                               if k != "total_ms"}) if getattr(o, "prediction", None) is not None else "{}"
                   for o in outcomes]
        return {"key": np.array([r.key for r in records], dtype=object),
                "records": np.array([r.to_json() for r in records], dtype=object),
                "timings": np.array(timings, dtype=object),
                "predict_s": np.full(len(records), seconds / max(1, len(records)))}


def write_pending(job: ExtractJob, store: Any) -> int:
    """Stream the records still to do into `_pending.jsonl`; returns how many."""
    n = 0
    with (job.out / PENDING).open("w", encoding="utf-8") as fh:
        for item in pending_items(job, store):
            fh.write(json.dumps(item.to_dict(), ensure_ascii=False) + "\n")
            n += 1
    return n


def _connect(ray: Any, address: str | None, num_cpus: int | None) -> bool:
    """Join `address`, or start a local Ray on this machine; True when we started it (and must stop it)."""
    if ray.is_initialized():
        return False
    kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False, "logging_level": logging.WARNING}
    try:
        if address:
            ray.init(address=address, **kwargs)
        else:
            ray.init(num_cpus=num_cpus, **kwargs)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise InputError(f"cannot start or join Ray{' at ' + address if address else ''}: {exc}") from None
    return True


def _check_room(ray: Any, actors: int, threads: int) -> None:
    """Refuse an actor pool the cluster cannot place (Ray Data would wait for it forever)."""
    cpus = float(ray.cluster_resources().get("CPU", 0))
    if actors * threads > cpus:
        raise InputError(f"--ray-actors {actors} x --threads {threads} needs {actors * threads} CPUs; the Ray "
                         f"cluster has {cpus:g}. Lower one of them (or add nodes).")


def _dataset(ray: Any, job: ExtractJob, spec: PredictorSpec, actors: int, decode_workers: int) -> Any:
    ctx = ray.data.DataContext.get_current()
    ctx.execution_options.preserve_order = True  # the same file order as the local engine
    ctx.enable_progress_bars = False  # ours is on stderr
    ctx.print_on_execution_start = False
    here = {"ray.io/node-id": ray.get_runtime_context().get_node_id()}  # the driver's node: its files
    threads = spec.threads or 1
    return (ray.data.read_text(str(job.out / PENDING), num_cpus=0, label_selector=here)
            .map_batches(attach_image_bytes, batch_size=job.batch_size, num_cpus=0, label_selector=here)
            .map_batches(ExtractActor, fn_constructor_kwargs={"spec": spec.to_dict(), "decode_workers": decode_workers},
                         compute=ray.data.ActorPoolStrategy(size=actors), batch_size=job.batch_size,
                         num_cpus=threads))


def run_ray(job: ExtractJob, spec: PredictorSpec, address: str | None = None, actors: int = 1,
            num_cpus: int | None = None) -> dict[str, Any]:
    """Run (or resume) the job on Ray; the same folder as `run_local` with the same predictor settings."""
    ray = require_ray()
    stats = RunStats()
    with open_store(job, spec.info(), spec.settings()) as store:
        todo = write_pending(job, store)
        started = False
        try:
            if todo:
                t = time.perf_counter()
                started = _connect(ray, address, num_cpus)
                stats.seconds["ray_start"] += time.perf_counter() - t
                _check_room(ray, max(1, actors), spec.threads or 1)
                ds = _dataset(ray, job, spec, max(1, actors), job.decode_workers)
                with progress_bar(job, todo, store.counts.posts) as bar:
                    for batch in ds.iter_batches(batch_size=job.batch_size, batch_format="numpy", prefetch_batches=1):
                        _commit_batch(store, batch, stats, bar)
        finally:
            if started:
                ray.shutdown()
            (job.out / PENDING).unlink(missing_ok=True)
        return finish(job, store, "ray", stats, {"ray": {"address": address or "local", "actors": actors,
                                                          "threads_per_actor": spec.threads or 1}})


def _commit_batch(store: Any, batch: dict[str, np.ndarray], stats: RunStats, bar: Any) -> None:
    t = time.perf_counter()
    n = store.commit([Records.from_json(s) for s in batch["records"]])
    stats.seconds["write"] += time.perf_counter() - t
    stats.seconds["predict"] += float(np.sum(batch["predict_s"]))
    for text in batch["timings"]:
        for k, v in json.loads(text).items():
            stats.seconds[k] += v
    stats.posts += n
    bar.update(n)


__all__ = ["ExtractActor", "require_ray", "run_ray"]
