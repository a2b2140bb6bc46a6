"""Training: PyKEEN's LCWA (1-vs-all) loop with inverse triples, label smoothing and early stopping.

Why these settings: PyKEEN's defaults (sLCWA, no inverse triples, std-1 init, fixed epochs) give a
badly trained model (UMLS ComplEx MRR 0.06-0.6 here); 1-vs-all BCE with label smoothing, inverse
triples for head prediction and early stopping on validation MRR gives ~0.9 in seconds.
"""

from __future__ import annotations

import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from pykeen.evaluation import RankBasedEvaluator
from pykeen.models import Model
from pykeen.stoppers import EarlyStopper, Stopper
from pykeen.training import LCWATrainingLoop
from pykeen.training.callbacks import TrainingCallback
from pykeen.triples import CoreTriplesFactory, LCWAInstances
from torch.utils.data import DataLoader


@dataclass
class KgeTrainConfig:
    """Optimiser / loop settings of one KGE training run. Defaults train a good UMLS ComplEx in well under
    a minute on one core; `default_train_config` gives the per-model and sparse-graph variants."""

    loss: str = "bcewithlogits"
    lr: float = 0.01
    batch_size: int = 256
    label_smoothing: float = 0.1
    max_epochs: int = 100
    eval_every: int = 5  # early stopping: evaluate on validation every N epochs ...
    patience: int = 2  # ... and stop after this many evaluations without a relative gain of ...
    relative_delta: float = 0.002
    seed: int = 0
    time_budget_s: float | None = None  # hard wall-clock cap (the app's background refresh)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def default_train_config(model: str, sparse: bool = False, **overrides: Any) -> KgeTrainConfig:
    """Defaults per model and kind of graph; `overrides` that are not None win.

    Dense benchmark graphs (UMLS, Nations): TransE scores are <= 0, so it trains with softmax
    cross-entropy; the bilinear models with BCE. `sparse=True` is for MNRE and the app's
    graphs (thousands of entities, about one triple each): softmax cross-entropy over all entities
    for every model, batch 512, at most 60 epochs, validation every 2. Measured on the MNRE KG
    (ComplEx, text features, docs/kge.md): BCE's validation MRR crawled to 0.042 in 60 epochs
    (100 s); cross-entropy reaches ~0.17 in 8 epochs.
    """
    if sparse:
        cfg = KgeTrainConfig(loss="crossentropy", batch_size=512, max_epochs=60, eval_every=2, patience=3)
    else:
        cfg = KgeTrainConfig(loss="crossentropy" if model == "transe" else "bcewithlogits")
    for k, v in overrides.items():
        if v is not None:
            setattr(cfg, k, v)
    return cfg


class BudgetStopper(Stopper):
    """Stops on a wall-clock deadline or a cancel event, delegating to an optional EarlyStopper."""

    def __init__(self, inner: EarlyStopper | None, deadline: float | None, cancel: threading.Event | None):
        super().__init__()
        self.inner, self.deadline, self.cancel = inner, deadline, cancel
        self.stopped_by: str | None = None

    def should_evaluate(self, epoch: int) -> bool:
        return True

    def should_stop(self, epoch: int) -> bool:
        if self.cancel is not None and self.cancel.is_set():
            self.stopped_by = "cancelled"
            return True
        if self.deadline is not None and time.monotonic() > self.deadline:
            self.stopped_by = "time budget"
            return True
        if self.inner is not None and self.inner.should_evaluate(epoch) and self.inner.should_stop(epoch):
            self.stopped_by = "early stopping"
            return True
        return False

    def get_summary_dict(self) -> dict[str, Any]:
        return {"stopped_by": self.stopped_by}

    def _write_from_summary_dict(self, **kwargs: Any) -> None:  # pragma: no cover - checkpoints unused
        pass


class _Interrupted(Exception):
    """Raised between batches to end training mid-epoch (not a RuntimeError: PyKEEN lets it through)."""


class DeadlineCallback(TrainingCallback):
    """Checks the deadline / cancel event after every batch, so one long epoch (100k triples) cannot
    overrun the app's time budget."""

    def __init__(self, deadline: float | None, cancel: threading.Event | None):
        super().__init__()
        self.deadline, self.cancel = deadline, cancel
        self.batches = 0

    def post_batch(self, epoch: int, batch: Any, **kwargs: Any) -> None:
        self.batches += 1
        if self.cancel is not None and self.cancel.is_set():
            raise _Interrupted("cancelled")
        if self.deadline is not None and time.monotonic() > self.deadline:
            raise _Interrupted("time budget")


class BatchedLCWAInstances(LCWAInstances):
    """PyKEEN's LCWA instances, fetched a batch at a time.

    PyKEEN builds each (h, r) row's dense target with its own scipy slice. That took ~40% of an
    MNRE-KG epoch (5.3k rows x 5,527 entities; cProfile, benchmarks/bench_kge.py). `DataLoader`
    calls `__getitems__` with a whole batch of indices, so one CSR slice serves the batch. Same
    rows, same order, same numbers.
    """

    def __getitems__(self, items: list[int]) -> list[dict[str, Any]]:
        idx = np.asarray(items)
        targets = torch.from_numpy(self.compressed[idx].toarray())
        return [{"pairs": p, "target": t} for p, t in zip(self.pairs[idx], targets)]


class BatchedLCWATrainingLoop(LCWATrainingLoop):
    """`LCWATrainingLoop` reading its batches through `BatchedLCWAInstances`."""

    def _create_training_data_loader(self, triples_factory: CoreTriplesFactory, sampler: str | None,
                                     **kwargs: Any) -> DataLoader:
        if sampler or self.loss_weighter is not None:  # not used here: keep PyKEEN's own path
            return super()._create_training_data_loader(triples_factory, sampler, **kwargs)
        dataset = BatchedLCWAInstances.from_triples_factory(triples_factory, target=self.target)
        kwargs["pin_memory"] = kwargs.get("pin_memory", False) and torch.cuda.is_available()
        return DataLoader(dataset=dataset, **kwargs)


@dataclass
class TrainResult:
    losses: list[float]
    epochs: int
    seconds: float
    stopped_by: str | None
    best_validation_mrr: float | None = None
    validation_history: list[float] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def train_model(model: Model, training: CoreTriplesFactory, config: KgeTrainConfig,
                validation: CoreTriplesFactory | None = None, cancel: threading.Event | None = None) -> TrainResult:
    """Train in place. With a validation split: early stopping on filtered validation MRR (best weights kept)."""
    start = time.monotonic()
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    loop = BatchedLCWATrainingLoop(model=model, triples_factory=training, optimizer=optimizer)
    with tempfile.TemporaryDirectory(prefix="mmre-kge-") as tmp:
        inner = None
        if validation is not None and validation.num_triples and config.eval_every > 0:
            inner = EarlyStopper(
                model=model, evaluator=RankBasedEvaluator(filtered=True), training_triples_factory=training,
                evaluation_triples_factory=validation, frequency=config.eval_every, patience=config.patience,
                metric="inverse_harmonic_mean_rank", relative_delta=config.relative_delta,
                best_model_path=Path(tmp) / "best.pt", evaluation_batch_size=256, use_tqdm=False,
            )
        deadline = None if config.time_budget_s is None else start + config.time_budget_s
        stopper = BudgetStopper(inner, deadline, cancel) if (deadline or cancel) else inner
        callback = DeadlineCallback(deadline, cancel) if (deadline or cancel) else None
        try:
            losses = loop.train(
                triples_factory=training, num_epochs=config.max_epochs,
                batch_size=min(config.batch_size, max(1, training.num_triples * 2)),
                label_smoothing=config.label_smoothing, stopper=stopper, use_tqdm=False, use_tqdm_batch=False,
                callbacks=callback,
            ) or []
        except _Interrupted as exc:  # mid-epoch stop: keep the weights trained so far
            losses = list(loop.losses_per_epochs)
            stopper.stopped_by = f"{exc} (mid-epoch, after {callback.batches} batches)"  # type: ignore[union-attr]
        if inner is not None and inner.best_model_path.is_file() and not inner.stopped:
            # ran out of epochs: keep the best validated weights, as early stopping would
            model.load_state_dict(torch.load(inner.best_model_path, weights_only=True))
    stopped_by = stopper.stopped_by if isinstance(stopper, BudgetStopper) else (
        "early stopping" if inner is not None and inner.stopped else None)
    return TrainResult(
        losses=[float(x) for x in losses], epochs=len(losses), seconds=time.monotonic() - start,
        stopped_by=stopped_by or ("max epochs" if len(losses) >= config.max_epochs else None),
        best_validation_mrr=None if inner is None or not inner.results else float(max(inner.results)),
        validation_history=[] if inner is None else [float(x) for x in inner.results],
    )
