"""Training and evaluation of the NER tagger (entity-level micro P/R/F1, as seqeval computes it).

Model selection: the epoch with the best mean of the valid F1s (both years; with MNRE partial labels,
the tagger's MNRE val recall ceiling counts as a third score); test splits are never read.
"""

from __future__ import annotations

import json
import logging
import math
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from mmre_demo.data.conll import ENTITY_TYPES, TAGS, TaggedSentence, read_conll
from mmre_demo.data.labels import NONE_LABEL, relation_types
from mmre_demo.data.mnre import MnreExample, read_mnre
from mmre_demo.data.names import normalise_name
from mmre_demo.model.ner import NerConfig, NerTagger, bio_spans, pre_tokenize, repair_bio
from mmre_demo.train.config import NerTrainConfig

log = logging.getLogger(__name__)


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
             batch_size: int = 64, convention: str | None = None) -> dict[str, float]:
    """Scores of the model's tags on pre-tokenised sentences (the data's own tokens), tagged under
    `convention` (default: the one `tag()` uses)."""
    was_training = model.training
    model.eval()
    preds = model.predict_words([s.tokens for s in sentences], feats=feats, batch_size=batch_size,
                                convention=convention)
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


@dataclass(frozen=True)
class PartialSentence:
    """A caption's words and the tags each word may have: known entity spans fixed, other words free."""

    tokens: tuple[str, ...]
    allowed: tuple[tuple[str, ...], ...]
    convention: str = "mnre"  # whose annotation guidelines the labels follow

    @classmethod
    def from_tagged(cls, s: TaggedSentence, convention: str = "twitter") -> PartialSentence:
        return cls(s.tokens, tuple((t,) for t in repair_bio(s.tags)), convention)


def _span_types(group: Sequence[MnreExample]) -> dict[tuple[int, int], set[str]]:
    """Each MNRE span of a caption and the entity types its relations imply (empty: unknown)."""
    types: dict[tuple[int, int], set[str]] = {}
    for ex in group:
        implied = relation_types(ex.relation)
        for k, e in enumerate((ex.head, ex.tail)):
            types.setdefault((e.start, e.end), set())
            if implied is not None:
                types[(e.start, e.end)].add(implied[k])
    return types


def mnre_partial_sentences(examples: Sequence[MnreExample]) -> list[PartialSentence]:
    """MNRE's entity spans as partial NER labels of its captions (words as the tagger splits a raw caption).

    A span's words are B-/I- of the types its relations imply (any type when only `None` lines name
    it); `@`/`#` stay outside the entity, as in Twitter-2017; the word after a span is not I-; all
    other words are free, because MNRE marks only some of a tweet's entities.
    """
    groups: dict[str, list[MnreExample]] = {}
    for ex in examples:
        groups.setdefault(ex.caption, []).append(ex)
    out = []
    for caption, group in groups.items():
        words = pre_tokenize(caption)
        allowed: list[tuple[str, ...]] = [tuple(TAGS)] * len(words)
        taken: set[int] = set()
        for (start, end), types in sorted(_span_types(group).items()):
            idx = [i for i, w in enumerate(words) if w.start >= start and w.end <= end]
            while idx and words[idx[0]].text in ("@", "#"):
                idx = idx[1:]
            if not idx or taken & set(range(idx[0], idx[-1] + 2)):
                continue  # nothing left, or it overlaps / touches a span already fixed
            kinds = sorted(types) or list(ENTITY_TYPES)
            allowed[idx[0]] = tuple(f"B-{t}" for t in kinds)
            for i in idx[1:]:
                allowed[i] = tuple(f"I-{t}" for t in kinds)
            if idx[-1] + 1 < len(words):
                allowed[idx[-1] + 1] = tuple(t for t in TAGS if not t.startswith("I-"))
            taken |= set(range(idx[0], idx[-1] + 1))
        out.append(PartialSentence(tuple(w.text for w in words), tuple(allowed)))
    return out


def mnre_tagger_ceiling(model: NerTagger, examples: Sequence[MnreExample],
                        feats: Sequence[torch.Tensor] | None = None) -> float:
    """Share of MNRE relation triples whose head and tail names the tagger finds in the caption
    (the end-to-end recall ceiling it sets), tagging each unique caption once."""
    from mmre_demo.train.end_to_end import gold_by_caption, triple_key

    groups = gold_by_caption(examples)
    words = [[w.text for w in pre_tokenize(c)] for c in groups]
    was_training = model.training
    model.eval()
    preds = model.predict_words(words, feats=feats, convention="mnre" if "mnre" in model.config.conventions else None)
    model.train(was_training)
    hit = total = 0
    for ws, (tags, _), group in zip(words, preds, groups.values()):
        names = {normalise_name(" ".join(ws[a:b])) for a, b, _ in bio_spans(tags)}
        keys = {triple_key(g.head.text, g.relation, g.tail.text) for g in group if g.relation != NONE_LABEL}
        total += len(keys)
        hit += sum(1 for h, _, t in keys if h in names and t in names)
    return hit / total if total else 0.0


def _schedule(opt: torch.optim.Optimizer, total: int, warmup: float) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warm-up, then linear decay to 10% of the peak."""
    warm = max(1, int(total * warmup))
    return torch.optim.lr_scheduler.LambdaLR(
        opt, lambda step: min((step + 1) / warm, max(0.1, (total - step) / max(1, total - warm))))


def seed_everything(seed: int) -> None:
    random.seed(seed)
    torch.manual_seed(seed)


def train_epoch(model: NerTagger, data: Sequence[TaggedSentence | PartialSentence], feats: Sequence[torch.Tensor],
                batches: list[list[int]], opt: torch.optim.Optimizer, sched, s: NerTrainConfig,
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
        if isinstance(data[b[0]], PartialSentence):
            batch = model.make_batch([feats[k] for k in b], [data[k].tokens for k in b],
                                     allowed=[data[k].allowed for k in b],
                                     conventions=[model.config.convention_id(data[k].convention) for k in b])
        else:
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
              out: str | Path, s: NerTrainConfig, device: str = "cpu") -> NerTagger:
    """Train the head, keep the epoch with the best mean valid F1, save it (+ history) to `out`."""
    seed_everything(s.seed)
    out = Path(out)
    cache = Path(s.cache_dir) if s.cache_dir else None
    model = NerTagger(config).to(device)
    train_sets = load_split(model, train_files, cache, s.limit)
    vals = load_split(model, val_files, cache)
    data: list[TaggedSentence | PartialSentence] = [x for d, _ in train_sets.values() for x in d]
    feats = [x for _, f in train_sets.values() for x in f]
    mnre_val, mnre_val_feats = None, None
    if s.mnre_train:
        if not config.use_crf:
            raise ValueError("partial labels (MNRE spans) need the CRF")
        partial = mnre_partial_sentences(read_mnre(s.mnre_train)[0])
        data = [PartialSentence.from_tagged(x, "twitter") for x in data] + partial
        feats = feats + cached_features(model, partial, cache, "mnre-train-partial")
        log.info("MNRE partial labels: %d captions", len(partial))
    if s.mnre_val:
        mnre_val = read_mnre(s.mnre_val)[0]
        captions = list(dict.fromkeys(e.caption for e in mnre_val))
        mnre_val_feats = cached_features(model, [PartialSentence(tuple(w.text for w in pre_tokenize(c)), ())
                                                 for c in captions], cache, "mnre-val-captions")
    rng = random.Random(s.seed)
    per_epoch = math.ceil(len(data) / s.batch_size)
    steps = per_epoch if s.max_steps is None else min(per_epoch, s.max_steps)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=s.lr,
                            weight_decay=s.weight_decay)
    sched = _schedule(opt, steps * s.epochs, s.warmup)
    best, best_epoch = -1.0, 0
    history: list[dict] = []
    for epoch in range(1, s.epochs + 1):
        t0 = time.time()
        loss = train_epoch(model, data, feats, length_batches([len(x.tokens) for x in data], s.batch_size, rng),
                           opt, sched, s, desc=f"epoch {epoch}/{s.epochs}")
        record = {"epoch": epoch, "train_loss": round(loss, 4), "train_seconds": round(time.time() - t0, 1)}
        for name, (vdata, vfeats) in vals.items():  # the Twitter files are scored under their own convention
            record[name] = {k: round(v, 4) for k, v in evaluate(model, vdata, vfeats, convention="twitter").items()
                            if k != "n_sentences"}
        mean_f1 = sum(record[n]["f1"] for n in vals) / len(vals) if vals else -loss
        record["mean_valid_f1"] = round(mean_f1, 4)
        if mnre_val is not None:
            # the MNRE ceiling counts as one more validation score in the selection
            record["mnre_val_ceiling"] = round(mnre_tagger_ceiling(model, mnre_val, mnre_val_feats), 4)
            mean_f1 = (mean_f1 * len(vals) + record["mnre_val_ceiling"]) / (len(vals) + 1)
            record["selection_score"] = round(mean_f1, 4)
        history.append(record)
        log.info("%s", json.dumps(record))
        if mean_f1 > best:
            best, best_epoch = mean_f1, epoch
            model.config.metrics = {"best_epoch": epoch, "valid": {n: record[n] for n in vals}}
            model.save_pretrained(out)
        elif epoch - best_epoch >= s.patience:
            log.info("no improvement for %d epochs: stopping", s.patience)
            break
    (out / "history.json").write_text(json.dumps(history, indent=2) + "\n")
    saved = NerConfig.load(out / "config.json")  # the full per-epoch curve goes into the saved config too
    saved.metrics["history"] = history
    saved.save(out / "config.json")
    return NerTagger.from_pretrained(out, device=device)
