"""The settings of one training run, one dataclass per trainer (torch-free: the CLI reads its defaults
from here, so `mmre train --help` and the code agree). The model's own architecture is its config
(`RelationConfig`, `NerConfig`); the KG embedding's run settings are `kge.training.KgeTrainConfig`."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, get_args

from mmre_demo.data.product_pairs import PairSource
from mmre_demo.data.splits import DEV_FRACTION, DEV_SEED
from mmre_demo.model.config import RelationConfig

# which dev F1 picks the best epoch: the product's (end to end, detected entities) or MNRE's gold pairs
SelectOn = Literal["end_to_end", "gold"]
SELECT_ON: tuple[str, ...] = get_args(SelectOn)


MIN_IMAGE_LINES = 20  # dev lines with an image that are evidence for the image gate (train/image_gate.py)


@dataclass
class RelationTrainConfig:
    """Everything one training run of the relation model needs; `mmre train`'s defaults come from here."""

    out: Path
    epochs: int = 7
    batch_size: int = 32
    lr: float = 8e-4  # LoRA adapters (or the whole backbone with backbone_training="full": use ~5e-5)
    head_lr: float = 1e-3  # fusion + classifier
    warmup: float = 0.06
    weight_decay: float = 0.01
    seed: int = 13
    tensorboard: bool = False
    resume: bool = False
    device: str = "auto"  # cuda > mps > cpu, or $MMRE_DEVICE (see mmre_demo.device)
    # which pairs of each caption to train on (see mmre_demo.data.product_pairs): MNRE's lines ("gold"),
    # their other direction ("reverse"), and the pairs MNRE left out, with the tagger's entities ("silver")
    pair_sources: tuple[PairSource, ...] = ("gold",)
    extra_fraction: float = 1.0  # share of the reverse + silver pairs drawn afresh for each epoch
    silver_weight: float = 1.0  # loss weight of a silver pair (some are true relations MNRE left out)
    init_from: Path | None = None  # start from a saved model (its config wins over `config`)
    ner_weights: Path | None = None  # tagger for silver pairs and end-to-end selection (default: shipped)
    # distillation: saved teachers' distribution on every training pair (several: the mean of their
    # log-probabilities), mixed into the loss (weight `distill_weight`, softened by `distill_temperature`);
    # e.g. the one-pass-per-pair model and an mpnet model teaching a MiniLM caption-once student
    distill_from: tuple[Path, ...] = ()
    distill_weight: float = 0.5
    distill_temperature: float = 2.0
    # unlabelled captions with gold entities (Twitter-2015/2017 train + valid CoNLL files; data/transfer.py):
    # every ordered pair is scored by the teachers and learnt from their distribution alone (no hard label)
    transfer_files: tuple[Path, ...] = ()
    # entity-name substitution (train/name_swap.py): each typed entity of a caption renamed with this
    # probability (another training name of its type), drawn afresh each epoch; 0 = names as written
    name_swap: float = 0.0
    select_on: SelectOn = "end_to_end"
    # the dev split every choice is made on, carved from the training file by caption when no dev file is
    # given (data/splits.py; docs/evaluation.md); its seed is not `seed`, so runs of any seed choose on one dev
    dev_fraction: float = DEV_FRACTION
    dev_seed: int = DEV_SEED
    config: RelationConfig = field(default_factory=RelationConfig)


@dataclass
class NerTrainConfig:
    """Everything one training run of the tagger's head needs; `mmre train-ner`'s defaults come from here."""

    epochs: int = 20
    batch_size: int = 32
    lr: float = 2e-3
    weight_decay: float = 1e-4
    warmup: float = 0.03
    seed: int = 13
    patience: int = 5  # stop when the mean valid F1 has not improved for this many epochs
    limit: int | None = None  # first N training sentences (quick runs)
    max_steps: int | None = None  # optimiser steps per epoch at most (smoke tests)
    cache_dir: str | None = None  # where backbone features are cached (None: recompute)
    progress: bool = True
    mnre_train: str | None = None  # MNRE file whose entity spans are added as partial labels
    mnre_val: str | None = None  # MNRE file on which the tagger's end-to-end recall ceiling is measured
