"""The dev split: choices are made on captions carved from MNRE train, never on MNRE val.

Why: every choice made on val (epochs, thresholds, 23 calibration offsets, recipes) fits val's noise, so
val's F1 rises while held-out data falls (issue 33). A dev split carved from train takes those choices;
val is then scored once per candidate, as confirmation (docs/evaluation.md).

A caption (one post: its token list) goes whole to one side, so no caption's lines are both trained on
and selected on. Which captions are dev depends only on the set of captions, the seed and the fraction:
each caption's id is a hash of its tokens, captions are ordered by a seeded hash of that id and the first
`round(fraction * n)` are dev, so the split is the same however the file's lines are ordered.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mmre_demo.data.mnre import MnreExample, read_mnre
from mmre_demo.data.schema import InputError

DEV_FRACTION = 0.1  # share of train's captions carved into dev
DEV_SEED = 13  # fixed apart from the training seed: runs with other seeds select on the same dev
SPLIT_FILES = ("train.txt", "dev.txt", "split.json")  # what `mmre dev-split` writes


def caption_id(tokens: Sequence[str]) -> str:
    """A caption's id: the first 16 hex digits of the sha256 of its token list (as JSON)."""
    return hashlib.sha256(json.dumps(list(tokens), ensure_ascii=False).encode("utf-8")).hexdigest()[:16]


def ids_sha256(ids: Sequence[str]) -> str:
    """The fingerprint of a caption-id list: sha256 of the sorted ids, one per line."""
    return hashlib.sha256("".join(f"{i}\n" for i in sorted(ids)).encode("utf-8")).hexdigest()


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def dev_caption_ids(ids: Sequence[str], fraction: float = DEV_FRACTION, seed: int = DEV_SEED) -> set[str]:
    """The captions (by id) that go to dev: at least one, and at least one left for training."""
    unique = sorted(set(ids))
    if not 0 < fraction < 1:
        raise InputError(f"the dev fraction must be in (0, 1), got {fraction}")
    if len(unique) < 2:
        raise InputError(f"cannot carve a dev split from {len(unique)} caption(s): it needs at least 2")
    n_dev = min(max(1, round(fraction * len(unique))), len(unique) - 1)
    order = sorted(unique, key=lambda cid: hashlib.sha256(f"{seed}:{cid}".encode()).hexdigest())
    return set(order[:n_dev])


@dataclass(frozen=True)
class SplitInfo:
    """What identifies a dev split (`split.json`; `selection` in a model's metrics): the rule's seed and
    fraction, the source file's sha256, the counts and the sha256 of the dev caption-id list."""

    seed: int
    fraction: float
    source: str  # the file the split was carved from (name only)
    source_sha256: str | None
    dev_ids_sha256: str
    train_captions: int
    dev_captions: int
    train_lines: int
    dev_lines: int

    def to_dict(self) -> dict[str, Any]:
        return {"seed": self.seed, "fraction": self.fraction, "source": self.source,
                "source_sha256": self.source_sha256, "dev_caption_ids_sha256": self.dev_ids_sha256,
                "counts": {"captions": {"train": self.train_captions, "dev": self.dev_captions},
                           "lines": {"train": self.train_lines, "dev": self.dev_lines}}}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SplitInfo:
        counts = d.get("counts", {})
        captions, lines = counts.get("captions", {}), counts.get("lines", {})
        return cls(int(d["seed"]), float(d["fraction"]), str(d.get("source", "")), d.get("source_sha256"),
                   str(d["dev_caption_ids_sha256"]), int(captions.get("train", 0)), int(captions.get("dev", 0)),
                   int(lines.get("train", 0)), int(lines.get("dev", 0)))


@dataclass(frozen=True)
class DevSplit:
    """Train's lines split by caption: `train` (what is trained on) and `dev` (what choices are made on)."""

    train: list[MnreExample]
    dev: list[MnreExample]
    info: SplitInfo


def carve_dev(examples: Sequence[MnreExample], fraction: float = DEV_FRACTION, seed: int = DEV_SEED,
              source: str = "", source_sha256: str | None = None) -> DevSplit:
    """Split `examples` by caption (`dev_caption_ids`), each side in the examples' own order."""
    ids = [caption_id(ex.tokens) for ex in examples]
    dev_ids = dev_caption_ids(ids, fraction, seed)
    train = [ex for ex, cid in zip(examples, ids) if cid not in dev_ids]
    dev = [ex for ex, cid in zip(examples, ids) if cid in dev_ids]
    n_captions = len(set(ids))
    info = SplitInfo(seed, fraction, source, source_sha256, ids_sha256(list(dev_ids)), n_captions - len(dev_ids),
                     len(dev_ids), len(train), len(dev))
    return DevSplit(train, dev, info)


def read_dev_split(path: str | Path, fraction: float = DEV_FRACTION, seed: int = DEV_SEED,
                   skip_bad: bool = False) -> tuple[DevSplit, int]:
    """Read an MNRE train file and carve its dev split; returns (split, number of skipped bad lines)."""
    examples, bad = read_mnre(path, skip_bad=skip_bad)
    return carve_dev(examples, fraction, seed, Path(path).name, file_sha256(path)), bad


def unseen_entity_dev(split: DevSplit) -> list[MnreExample]:
    """Dev's lines of the captions whose gold entities (case-folded) never occur in the training side: how a
    model does on names it has not learnt (most MNRE test captions, PG-MRE, AAAI 2025)."""
    seen = {ent.text.casefold() for ex in split.train for ent in (ex.head, ex.tail)}
    by_caption: dict[str, list[MnreExample]] = {}
    for ex in split.dev:
        by_caption.setdefault(caption_id(ex.tokens), []).append(ex)
    unseen = {cid for cid, group in by_caption.items()
              if all(ent.text.casefold() not in seen for ex in group for ent in (ex.head, ex.tail))}
    return [ex for ex in split.dev if caption_id(ex.tokens) in unseen]


def write_dev_split(path: str | Path, out: str | Path, fraction: float = DEV_FRACTION,
                    seed: int = DEV_SEED) -> SplitInfo:
    """`mmre dev-split`: OUT/train.txt (train minus dev) and OUT/dev.txt hold the source's lines unchanged,
    in their order, OUT/dev_unseen.txt dev's unseen-entity slice (`unseen_entity_dev`); OUT/split.json the
    `SplitInfo`. A malformed line is refused (named by its line)."""
    split, _ = read_dev_split(path, fraction, seed)
    with Path(path).open(encoding="utf-8") as fh:
        lines = [line.rstrip("\n") for line in fh]  # split as `read_mnre` reads, so line numbers agree
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for name, part in (("train.txt", split.train), ("dev.txt", split.dev),
                       ("dev_unseen.txt", unseen_entity_dev(split))):
        (out / name).write_text("".join(lines[ex.line_no - 1] + "\n" for ex in part), encoding="utf-8")
    (out / "split.json").write_text(json.dumps(split.info.to_dict(), indent=2) + "\n")
    return split.info
