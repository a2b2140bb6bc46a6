"""Training and evaluation of the NER tagger (entity-level micro P/R/F1, as seqeval computes it).

Model selection: the epoch with the best mean of the valid F1s (both years); test splits are never read.
"""

from __future__ import annotations

import json
import math
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import torch

from mmre_demo.data.conll import TaggedSentence, read_conll
from mmre_demo.model.ner import NerConfig, NerTagger


def entity_scores(gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]]) -> dict[str, float]:
    """Entity-level micro precision/recall/F1 (exact span and type; seqeval default mode)."""
    from seqeval.metrics import f1_score, precision_score, recall_score

    gold, pred = [list(g) for g in gold], [list(p) for p in pred]
    if len(gold) != len(pred) or any(len(g) != len(p) for g, p in zip(gold, pred)):
        raise ValueError("gold and predicted tag sequences differ in length")
    kw = {"average": "micro", "zero_division": 0}
    return {"precision": float(precision_score(gold, pred, **kw)), "recall": float(recall_score(gold, pred, **kw)),
            "f1": float(f1_score(gold, pred, **kw))}


@torch.no_grad()
def evaluate(model: NerTagger, sentences: Sequence[TaggedSentence], feats: Sequence[torch.Tensor] | None = None,
             batch_size: int = 64) -> dict[str, float]:
    """Scores of the model's tags on pre-tokenised sentences (the data's own tokens)."""
    was_training = model.training
    model.eval()
    preds = model.predict_words([s.tokens for s in sentences], feats=feats, batch_size=batch_size)
    model.train(was_training)
    scores = entity_scores([s.tags for s in sentences], [p for p, _ in preds])
    scores["n_sentences"] = len(sentences)
    return scores


def cached_features(model: NerTagger, sentences: Sequence[TaggedSentence], cache: Path | None,
                    name: str) -> list[torch.Tensor]:
    """Backbone word features (fp16), computed once and kept in `cache/<name>.safetensors` if given.

    The backbone is frozen, so features never change during training; the cache key holds the
    backbone name and a digest of the tokens (a changed file means a new cache entry).
    """
    import hashlib

    from safetensors.torch import load_file, save_file

    digest = hashlib.sha256("\n".join(" ".join(s.tokens) for s in sentences).encode()).hexdigest()[:12]
    key = f"{name}-{Path(model.config.text_backbone).name}-{digest}.safetensors"
    if cache is not None and (cache / key).is_file():
        d = load_file(str(cache / key))
        return list(torch.split(d["feats"], d["lengths"].tolist()))
    feats = [f.half() for f in model.word_features([s.tokens for s in sentences], progress=True)]
    if cache is not None:
        cache.mkdir(parents=True, exist_ok=True)
        lengths = torch.tensor([len(f) for f in feats])
        save_file({"feats": torch.cat(feats).contiguous(), "lengths": lengths}, str(cache / key))
    return feats


def length_batches(lengths: Sequence[int], batch_size: int, rng: random.Random) -> list[list[int]]:
    """Shuffled batches of similar length (less padding -> faster on CPU)."""
    idx = list(range(len(lengths)))
    rng.shuffle(idx)
    pool = batch_size * 50
    batches = []
    for i in range(0, len(idx), pool):
        chunk = sorted(idx[i : i + pool], key=lambda k: lengths[k])
        batches += [chunk[j : j + batch_size] for j in range(0, len(chunk), batch_size)]
    rng.shuffle(batches)
    return batches


@dataclass
class TrainSettings:
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
    history: list[dict] = field(default_factory=list)


def _schedule(opt: torch.optim.Optimizer, total: int, warmup: float) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warm-up, then linear decay to 10% of the peak."""
    warm = max(1, int(total * warmup))
    return torch.optim.lr_scheduler.LambdaLR(
        opt, lambda step: min((step + 1) / warm, max(0.1, (total - step) / max(1, total - warm))))


def seed_everything(seed: int) -> None:
    random.seed(seed)
    torch.manual_seed(seed)


def train_epoch(model: NerTagger, data: Sequence[TaggedSentence], feats: Sequence[torch.Tensor],
                batches: list[list[int]], opt: torch.optim.Optimizer, sched, s: TrainSettings,
                desc: str = "train") -> float:
    """One pass over cached features; returns the mean loss."""
    from tqdm.auto import tqdm

    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    total, n = 0.0, 0
    bar = tqdm(batches, desc=desc, disable=not s.progress, dynamic_ncols=True, leave=False)
    for step, b in enumerate(bar):
        if s.max_steps is not None and step >= s.max_steps:
            break
        batch = model.make_batch([feats[k] for k in b], [data[k].tokens for k in b], [data[k].tags for k in b])
        loss = model.loss(batch)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 5.0)
        opt.step()
        sched.step()
        total, n = total + loss.item(), n + 1
        bar.set_postfix(loss=f"{total / n:.4f}")
    return total / max(1, n)


def _dataset_name(path: str | Path) -> str:
    p = Path(path)
    return f"{p.parent.name}/{p.stem}"


def load_split(model: NerTagger, files: Sequence[str | Path], cache: Path | None,
               limit: int | None = None) -> dict[str, tuple[list[TaggedSentence], list[torch.Tensor]]]:
    """Sentences + backbone features of each file, keyed by `year/split`."""
    out = {}
    for f in files:
        data = read_conll(f)[:limit] if limit else read_conll(f)
        name = _dataset_name(f)
        out[name] = (data, cached_features(model, data, cache, name.replace("/", "-")))
    return out


def train_ner(config: NerConfig, train_files: Sequence[str | Path], val_files: Sequence[str | Path],
              out: str | Path, s: TrainSettings, device: str = "cpu") -> NerTagger:
    """Train the head, keep the epoch with the best mean valid F1, save it (+ history) to `out`."""
    seed_everything(s.seed)
    out = Path(out)
    cache = Path(s.cache_dir) if s.cache_dir else None
    model = NerTagger(config).to(device)
    train_sets = load_split(model, train_files, cache, s.limit)
    vals = load_split(model, val_files, cache)
    data = [x for d, _ in train_sets.values() for x in d]
    feats = [x for _, f in train_sets.values() for x in f]
    rng = random.Random(s.seed)
    per_epoch = math.ceil(len(data) / s.batch_size)
    steps = per_epoch if s.max_steps is None else min(per_epoch, s.max_steps)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=s.lr,
                            weight_decay=s.weight_decay)
    sched = _schedule(opt, steps * s.epochs, s.warmup)
    best, best_epoch = -1.0, 0
    for epoch in range(1, s.epochs + 1):
        t0 = time.time()
        loss = train_epoch(model, data, feats, length_batches([len(x.tokens) for x in data], s.batch_size, rng),
                           opt, sched, s, desc=f"epoch {epoch}/{s.epochs}")
        record = {"epoch": epoch, "train_loss": round(loss, 4), "train_seconds": round(time.time() - t0, 1)}
        for name, (vdata, vfeats) in vals.items():
            record[name] = {k: round(v, 4) for k, v in evaluate(model, vdata, vfeats).items() if k != "n_sentences"}
        mean_f1 = sum(record[n]["f1"] for n in vals) / len(vals) if vals else -loss
        record["mean_valid_f1"] = round(mean_f1, 4)
        s.history.append(record)
        print(json.dumps(record), flush=True)
        if mean_f1 > best:
            best, best_epoch = mean_f1, epoch
            model.config.metrics = {"best_epoch": epoch, "valid": {n: record[n] for n in vals}}
            model.save_pretrained(out)
        elif epoch - best_epoch >= s.patience:
            print(f"no improvement for {s.patience} epochs: stopping", flush=True)
            break
    (out / "history.json").write_text(json.dumps(s.history, indent=2) + "\n")
    saved = NerConfig.load(out / "config.json")  # the full per-epoch curve goes into the saved config too
    saved.metrics["history"] = s.history
    saved.save(out / "config.json")
    return NerTagger.from_pretrained(out, device=device)
