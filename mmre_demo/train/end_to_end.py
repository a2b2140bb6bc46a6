"""The product's metric: what a user sees for a caption (detected entities, decoded pairs) against MNRE.

A gold non-`None` triple is *found* when a predicted triple has the same relation and the same head
and tail after name normalisation (`normalise_name`: "@Titans" = "Titans"); for symmetric relations
either direction counts; each gold triple is found at most once, and a predicted triple is one fact
however often it is predicted. Micro P/R/F1 over all captions. The strict score (exact texts,
direction) is kept beside it for comparison with earlier numbers.

Every predicted triple that is not found and every gold triple that is missed gets a reason, so the
score says *why* it is what it is. `predict_captions` runs the product once; `score_runs` scores it at
any threshold, so tuning the threshold costs no second run.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mmre_demo.data.labels import NONE_LABEL, is_symmetric
from mmre_demo.data.mnre import MnreExample
from mmre_demo.data.names import normalise_name
from mmre_demo.data.schema import Entity, InputError
from mmre_demo.prediction import Predictor, PredictRequest
from mmre_demo.train.thresholds import ThresholdCurve, stable_threshold

FALSE_POSITIVE_REASONS = ("unannotated_pair", "gold_none_pair", "wrong_label", "wrong_direction")
MISS_REASONS = ("entity_not_detected", "boundary_differs", "relation_wrong")

TripleKey = tuple[str, str, str]


@dataclass(frozen=True)
class Triple:
    """A (head, relation, tail) with the entities' caption spans (spans explain misses)."""

    head: Entity
    relation: str
    tail: Entity


@dataclass
class CaptionResult:
    """One caption: the gold lines (all of them, `None` included) and what the product showed."""

    gold: list[Triple]
    predicted: list[Triple]
    detected: list[Entity] = field(default_factory=list)


def triple_key(head: str, relation: str, tail: str) -> TripleKey:
    """Normalised names; a symmetric relation's names are put in a fixed order."""
    h, t = normalise_name(head), normalise_name(tail)
    if is_symmetric(relation) and t < h:
        h, t = t, h
    return h, relation, t


def _strict_key(t: Triple) -> tuple[str, str, str]:
    return t.head.text, t.relation, t.tail.text


def _false_positive_reason(key: TripleKey, annotated: dict[tuple[str, str], set[str]]) -> str:
    h, rel, t = key
    forward, backward = annotated.get((h, t), set()), annotated.get((t, h), set())
    if rel in backward and rel not in forward:
        return "wrong_direction"
    if (forward | backward) - {NONE_LABEL}:
        return "wrong_label"
    if forward or backward:
        return "gold_none_pair"
    return "unannotated_pair"


def _entity_status(gold: Entity, detected: Sequence[Entity], detected_names: set[str]) -> str:
    if normalise_name(gold.text) in detected_names:
        return "found"
    if any(d.start < gold.end and gold.start < d.end for d in detected):
        return "boundary"
    return "missing"


def _miss_reason(gold: Triple, detected: Sequence[Entity], detected_names: set[str]) -> str:
    statuses = {_entity_status(e, detected, detected_names) for e in (gold.head, gold.tail)}
    if "missing" in statuses:
        return "entity_not_detected"
    if "boundary" in statuses:
        return "boundary_differs"
    return "relation_wrong"


def _prf(tp: int, n_pred: int, n_gold: int) -> dict[str, float]:
    p = tp / n_pred if n_pred else 0.0
    r = tp / n_gold if n_gold else 0.0
    return {"precision": p, "recall": r, "f1": 2 * p * r / (p + r) if p + r else 0.0}


@dataclass
class CaptionErrors:
    """One caption's triples by outcome: found, false positives and misses, each with its reason."""

    n_gold: int
    n_predicted: int
    found: list[TripleKey]
    false_positives: list[tuple[TripleKey, str]]
    misses: list[tuple[TripleKey, str]]
    strict: tuple[int, int, int]  # (found, predicted, gold) with exact texts and direction


def caption_errors(res: CaptionResult) -> CaptionErrors:
    """Match one caption's predicted triples against its gold ones and explain every mismatch."""
    gold_rel = [g for g in res.gold if g.relation != NONE_LABEL]
    gold_keys: dict[TripleKey, Triple] = {}
    for g in gold_rel:
        gold_keys.setdefault(triple_key(g.head.text, g.relation, g.tail.text), g)
    pred_keys = {triple_key(p.head.text, p.relation, p.tail.text) for p in res.predicted if p.relation != NONE_LABEL}
    found = pred_keys & gold_keys.keys()
    annotated: dict[tuple[str, str], set[str]] = defaultdict(set)
    for g in res.gold:
        annotated[(normalise_name(g.head.text), normalise_name(g.tail.text))].add(g.relation)
    detected_names = {normalise_name(d.text) for d in res.detected}
    strict_gold = {_strict_key(g) for g in gold_rel}
    strict_pred = {_strict_key(p) for p in res.predicted if p.relation != NONE_LABEL}
    return CaptionErrors(
        len(gold_keys), len(pred_keys), sorted(found),
        [(k, _false_positive_reason(k, annotated)) for k in sorted(pred_keys - found)],
        [(k, _miss_reason(gold_keys[k], res.detected, detected_names)) for k in sorted(gold_keys.keys() - found)],
        (len(strict_gold & strict_pred), len(strict_pred), len(strict_gold)),
    )


def score_captions(results: Iterable[CaptionResult]) -> dict[str, Any]:
    """Micro P/R/F1 (normalised names, symmetric either way), the strict score, and the breakdown."""
    tp = n_pred = n_gold = s_tp = s_pred = s_gold = n_captions = 0
    fp_reasons: Counter[str] = Counter()
    miss_reasons: Counter[str] = Counter()
    for res in results:
        e = caption_errors(res)
        n_captions += 1
        tp, n_pred, n_gold = tp + len(e.found), n_pred + e.n_predicted, n_gold + e.n_gold
        s_tp, s_pred, s_gold = s_tp + e.strict[0], s_pred + e.strict[1], s_gold + e.strict[2]
        fp_reasons.update(reason for _, reason in e.false_positives)
        miss_reasons.update(reason for _, reason in e.misses)
    return {
        **_prf(tp, n_pred, n_gold),
        "n_captions": n_captions, "n_gold_triples": n_gold, "n_predicted_triples": n_pred, "n_found": tp,
        "strict": {**_prf(s_tp, s_pred, s_gold), "n_gold_triples": s_gold, "n_predicted_triples": s_pred},
        "false_positives": {r: fp_reasons[r] for r in FALSE_POSITIVE_REASONS},
        "misses": {r: miss_reasons[r] for r in MISS_REASONS},
    }


def gold_by_caption(examples: Sequence[MnreExample]) -> dict[str, list[MnreExample]]:
    """MNRE lines grouped by caption (one post = one caption), in order of first appearance."""
    groups: dict[str, list[MnreExample]] = defaultdict(list)
    for ex in examples:
        groups[ex.caption].append(ex)
    return dict(groups)


def caption_index(examples: Sequence[MnreExample]) -> np.ndarray:
    """Each line's caption as a number, in `gold_by_caption`'s order (so the gold-pair counts of
    `metrics.gold_pair_counts` and the end-to-end counts of `caption_counts` are the same captions)."""
    numbers: dict[str, int] = {}
    return np.array([numbers.setdefault(ex.caption, len(numbers)) for ex in examples], dtype=np.int64)


@dataclass
class CaptionRun:
    """What the product produced for one caption (every decoded pair, before any threshold)."""

    caption: str
    line_no: int
    gold: list[Triple]
    pairs: list[Any]  # PairPrediction, one per unordered entity pair
    detected: list[Entity]

    def result(self, threshold: float) -> CaptionResult:
        shown = [Triple(p.head, p.label, p.tail) for p in self.pairs if p.is_shown(threshold)]
        return CaptionResult(self.gold, shown, self.detected)

    def record(self, threshold: float) -> dict[str, Any]:
        """What a person auditing the score reads: gold, shown triples, and each error with its reason."""
        errors = caption_errors(self.result(threshold))
        return {"caption": self.caption, "line_no": self.line_no,
                "gold": [[g.head.text, g.relation, g.tail.text] for g in self.gold],
                "predicted": [[p.head.text, p.label, p.tail.text, round(p.probability, 4)] for p in self.pairs
                              if p.is_shown(threshold)],
                "entities": [e.text for e in self.detected],
                "false_positives": [[*key, reason] for key, reason in errors.false_positives],
                "misses": [[*key, reason] for key, reason in errors.misses]}


def predict_captions(pipeline: Predictor, examples: Sequence[MnreExample], images_dir: str | Path | None = None,
                     progress: bool = False, batch_size: int = 32) -> list[CaptionRun]:
    """Run the product on every caption (`Predictor.predict_many`, `batch_size` captions a call): entities
    detected, both directions classified, decoded."""
    items = list(gold_by_caption(examples).items())
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(items), desc="end to end", dynamic_ncols=True, mininterval=2.0)
    runs = []
    for k in range(0, len(items), batch_size):
        chunk = items[k : k + batch_size]
        requests = [PredictRequest(caption, _image_path(images_dir, group[0].img_id)) for caption, group in chunk]
        for (caption, group), pred in zip(chunk, pipeline.predict_many(requests), strict=True):
            if isinstance(pred, InputError):
                raise InputError(f"line {group[0].line_no}: {pred}")
            runs.append(CaptionRun(caption, group[0].line_no, [Triple(g.head, g.relation, g.tail) for g in group],
                                   list(pred.pairs), list(pred.entities)))
        if bar is not None:
            bar.update(len(chunk))
    if bar is not None:
        bar.close()
    return runs


def _image_path(images_dir: str | Path | None, img_id: str | None) -> Path | None:
    """The caption's image in `images_dir` (None: no folder, or the image is not there)."""
    if not images_dir or not img_id:
        return None
    path = Path(images_dir) / img_id
    return path if path.is_file() else None


def score_runs(runs: Sequence[CaptionRun], threshold: float) -> dict[str, Any]:
    """The end-to-end score of these runs at one threshold, with the tagger's recall ceiling."""
    scores = score_captions(r.result(threshold) for r in runs)
    scores["threshold"] = threshold
    scores["recall_ceiling"] = recall_ceiling_of_runs(runs)
    return scores


def caption_counts(runs: Sequence[CaptionRun], threshold: float) -> np.ndarray:
    """Each caption's (found, predicted, gold) triples at `threshold`, the counts `score_captions` sums:
    the input of the paired bootstrap and of `thresholds.stable_threshold`."""
    rows = []
    for run in runs:
        e = caption_errors(run.result(threshold))
        rows.append((len(e.found), e.n_predicted, e.n_gold))
    return np.array(rows, dtype=np.int64).reshape(-1, 3)


def recall_ceiling_of_runs(runs: Sequence[CaptionRun]) -> float:
    """Share of gold relation triples whose head and tail names are both among the detected entities:
    the end-to-end recall no relation classifier can beat with these entities."""
    hit = total = 0
    for r in runs:
        names = {normalise_name(e.text) for e in r.detected}
        keys = {triple_key(g.head.text, g.relation, g.tail.text) for g in r.gold if g.relation != NONE_LABEL}
        total += len(keys)
        hit += sum(1 for h, _, t in keys if h in names and t in names)
    return hit / total if total else 0.0


THRESHOLD_GRID = tuple(round(x, 2) for x in np.arange(0.05, 0.96, 0.05))


def best_threshold(runs: Sequence[CaptionRun], grid: Sequence[float] = THRESHOLD_GRID) -> tuple[float, dict[str, Any]]:
    """The threshold with the highest end-to-end F1 on these runs, and its scores: the single best point,
    which does not travel (training and `mmre calibrate` use `stable_end_to_end_threshold`)."""
    best: tuple[float, dict[str, Any]] | None = None
    for t in grid:
        scores = score_runs(runs, t)
        if best is None or scores["f1"] > best[1]["f1"] + 1e-12:
            best = (float(t), scores)
    assert best is not None
    return best


def stable_end_to_end_threshold(runs: Sequence[CaptionRun], **options: Any) -> tuple[ThresholdCurve, dict[str, Any]]:
    """The stable threshold of these (dev) runs (`thresholds.stable_threshold`; `options` go to it), and the
    end-to-end scores at it."""
    curve = stable_threshold(lambda t: caption_counts(runs, t), **options)
    return curve, score_runs(runs, curve.chosen)
