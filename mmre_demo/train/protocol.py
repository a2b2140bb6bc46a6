"""The selection protocol (docs/evaluation.md): every choice is made on dev, val only confirms.

`mmre train` and `mmre calibrate` choose epochs, calibration and both thresholds on a dev split
(`data/splits.py`: carved from the training file by caption, or `--dev FILE`); MNRE val, when given, is
scored once on the chosen model and reported (`confirm`), never used to choose. A model records which data
chose it (`Selection`, `metrics["selection"]`); a model saved before the protocol has no such record and
reads as chosen on val.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, get_args

from mmre_demo.data.mnre import MnreExample, read_mnre
from mmre_demo.data.schema import InputError
from mmre_demo.data.splits import DEV_FRACTION, DEV_SEED, SplitInfo, caption_id, carve_dev, file_sha256, ids_sha256

log = logging.getLogger(__name__)

ChoosingSplit = Literal["dev", "val"]  # val: a model from before the protocol (chosen on MNRE val)
CHOOSING_SPLITS: tuple[str, ...] = get_args(ChoosingSplit)


@dataclass(frozen=True)
class Selection:
    """Which data chose a model's epoch, calibration and thresholds.

    `file`: the file that data came from (the training file when the dev split was carved from it, with
    `carved` the rule); `dev_ids_sha256`: the sha256 of its caption-id list (`splits.ids_sha256`), equal for
    a carved split and the `dev.txt` of `mmre dev-split` with the same rule; `overlap_captions`: captions
    both trained on and chosen on (0 for a carved split)."""

    split: ChoosingSplit
    metric: str  # `SelectOn`: end_to_end or gold
    file: str = ""
    dev_ids_sha256: str | None = None
    carved: SplitInfo | None = None
    overlap_captions: int = 0
    n_captions: int = 0
    n_lines: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"split": self.split, "metric": self.metric, "file": self.file, "dev_ids_sha256": self.dev_ids_sha256,
                "carved": self.carved.to_dict() if self.carved else None, "overlap_captions": self.overlap_captions,
                "n_captions": self.n_captions, "n_lines": self.n_lines}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Selection:
        return cls(d["split"], d.get("metric", "end_to_end"), d.get("file", ""), d.get("dev_ids_sha256"),
                   SplitInfo.from_dict(d["carved"]) if d.get("carved") else None, int(d.get("overlap_captions", 0)),
                   int(d.get("n_captions", 0)), int(d.get("n_lines", 0)))

    @classmethod
    def from_metrics(cls, metrics: dict[str, Any]) -> Selection:
        """A saved model's record; before the protocol (no `selection`) the model was chosen on MNRE val and
        `selected_on` named the metric."""
        if metrics.get("selection"):
            return cls.from_dict(metrics["selection"])
        metric = metrics.get("selected_on") if metrics.get("selected_on") in ("end_to_end", "gold") else "end_to_end"
        return cls("val", metric, str(metrics.get("calibrated_on", "")))


def _caption_ids(examples: Sequence[MnreExample]) -> set[str]:
    return {caption_id(ex.tokens) for ex in examples}


def selection_of(dev: Sequence[MnreExample], train: Sequence[MnreExample], metric: str, file: str = "",
                 carved: SplitInfo | None = None) -> Selection:
    """The record of choosing on `dev` for a model trained on `train`."""
    dev_ids = _caption_ids(dev)
    return Selection("dev", metric, file, ids_sha256(sorted(dev_ids)), carved, len(dev_ids & _caption_ids(train)),
                     len(dev_ids), len(dev))


@dataclass(frozen=True)
class DevChoice:
    """What a run trains on and chooses on, and the record of it."""

    train: list[MnreExample]
    dev: list[MnreExample]
    selection: Selection


def choose_dev(train: Sequence[MnreExample], metric: str, dev_path: str | Path | None = None,
               train_path: str | Path | None = None, fraction: float = DEV_FRACTION, seed: int = DEV_SEED,
               skip_bad: bool = False) -> DevChoice:
    """`--dev FILE` when given (`train` kept whole; captions it shares with `train` are counted and warned
    about), else a dev split carved from `train` by caption (`splits.carve_dev`), logged."""
    if dev_path:
        dev, bad = read_mnre(dev_path, skip_bad=skip_bad)
        if bad:
            log.warning("skipped %d malformed lines in %s", bad, dev_path)
        if not dev:
            raise InputError(f"{dev_path}: no lines to choose on")
        selection = selection_of(dev, train, metric, Path(dev_path).name)
        if selection.overlap_captions:
            log.warning("%d of the %d dev captions in %s are also trained on: choices made on them read high",
                        selection.overlap_captions, selection.n_captions, dev_path)
        return DevChoice(list(train), dev, selection)
    source = Path(train_path).name if train_path else ""
    split = carve_dev(train, fraction, seed, source, file_sha256(train_path) if train_path else None)
    info = split.info
    log.info("dev split carved from %s by caption (seed %d, fraction %g): %d captions / %d lines to choose on, "
             "%d / %d to train on; dev caption ids sha256 %s", source or "the training examples", seed, fraction,
             info.dev_captions, info.dev_lines, info.train_captions, info.train_lines, info.dev_ids_sha256[:12])
    return DevChoice(split.train, split.dev, selection_of(split.dev, split.train, metric, source, info))


def confirm(model: Any, examples: Sequence[MnreExample], images_dir: str | Path | None, tagger: Any,
            file: str = "") -> dict[str, Any]:
    """The chosen model on the confirmation set (MNRE val), once, at its own thresholds: gold-pair scores and,
    with a tagger, the end-to-end scores. Reported, never used to choose."""
    from mmre_demo.pipeline import Pipeline
    from mmre_demo.train.end_to_end import predict_captions, score_runs
    from mmre_demo.train.evaluate import evaluate_gold_entities

    was_training = model.training
    model.eval()
    result: dict[str, Any] = {"file": file, "n_lines": len(examples),
                              "gold": evaluate_gold_entities(model, list(examples), images_dir)["scores"]}
    if tagger is not None:
        device = str(next(model.parameters()).device)
        runs = predict_captions(Pipeline(model, tagger, device), examples, images_dir)
        result["end_to_end"] = score_runs(runs, model.config.threshold)
    model.train(was_training)
    return result
