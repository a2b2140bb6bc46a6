"""MNRE metrics: micro P/R/F1 over the non-None labels (the convention of every published MNRE
result), accuracy over all labels, a per-relation report and a confusion-matrix picture."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mmre_demo.train.thresholds import ThresholdCurve, stable_threshold


def mnre_scores(gold: Sequence[int], pred: Sequence[int], none_id: int = 0) -> dict[str, float]:
    """A prediction of None is never a prediction; a gold None is never in recall."""
    if len(gold) != len(pred):
        raise ValueError(f"{len(gold)} gold labels but {len(pred)} predictions")
    correct = sum(1 for g, p in zip(gold, pred) if p == g and p != none_id)
    predicted = sum(1 for p in pred if p != none_id)
    relevant = sum(1 for g in gold if g != none_id)
    precision = correct / predicted if predicted else 0.0
    recall = correct / relevant if relevant else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    accuracy = sum(1 for g, p in zip(gold, pred) if g == p) / len(gold) if gold else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "accuracy": accuracy, "n": len(gold)}


def per_relation_report(gold: Sequence[int], pred: Sequence[int], labels: Sequence[str]) -> list[dict]:
    """Precision, recall, F1 and support of each label (None included, for reading)."""
    tp, fp, fn = Counter(), Counter(), Counter()
    for g, p in zip(gold, pred):
        if g == p:
            tp[g] += 1
        else:
            fp[p] += 1
            fn[g] += 1
    rows = []
    for i, name in enumerate(labels):
        p = tp[i] / (tp[i] + fp[i]) if tp[i] + fp[i] else 0.0
        r = tp[i] / (tp[i] + fn[i]) if tp[i] + fn[i] else 0.0
        f = 2 * p * r / (p + r) if p + r else 0.0
        rows.append({"label": name, "precision": p, "recall": r, "f1": f, "support": tp[i] + fn[i]})
    return rows


def format_report(rows: list[dict]) -> str:
    lines = [f"{'relation':<30} {'P':>6} {'R':>6} {'F1':>6} {'n':>6}"]
    for r in rows:
        lines.append(f"{r['label']:<30} {r['precision']:6.3f} {r['recall']:6.3f} {r['f1']:6.3f} {r['support']:6d}")
    return "\n".join(lines)


def confusion_matrix(gold: Sequence[int], pred: Sequence[int], num_labels: int) -> np.ndarray:
    cm = np.zeros((num_labels, num_labels), dtype=np.int64)
    for g, p in zip(gold, pred):
        cm[g, p] += 1
    return cm


def save_confusion_png(cm: np.ndarray, labels: Sequence[str], path: str | Path, title: str = "") -> Path:
    """Row-normalised confusion matrix with counts; rows = gold, columns = predicted."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    norm = cm / np.maximum(cm.sum(1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(11, 10))
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    short = [lab.replace("/", " ", 1).strip() if lab != "None" else "None" for lab in labels]
    ax.set_xticks(range(len(labels)), short, rotation=90, fontsize=7)
    ax.set_yticks(range(len(labels)), short, fontsize=7)
    for i in range(cm.shape[0]):
        for j in range(cm.shape[1]):
            if cm[i, j]:
                ax.text(j, i, str(cm[i, j]), ha="center", va="center", fontsize=5,
                        color="white" if norm[i, j] > 0.5 else "black")
    ax.set_xlabel("predicted")
    ax.set_ylabel("gold")
    ax.set_title(title or "confusion matrix (row-normalised)")
    fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


THRESHOLD_GRID = tuple(round(float(x), 2) for x in np.arange(0.05, 0.96, 0.05))


def best_gold_threshold(probs: np.ndarray, gold: Sequence[int], none_id: int = 0,
                        grid: Sequence[float] = THRESHOLD_GRID) -> tuple[float, float]:
    """The probability threshold (decision rule of `relation_decisions`) that maximises MNRE micro F1
    on these gold pairs, and that F1: the single best point, which does not travel (training and
    `mmre calibrate` use `stable_gold_threshold`)."""
    from mmre_demo.decoding import relation_decisions

    best = (0.5, -1.0)
    for t in grid:
        f1 = mnre_scores(gold, relation_decisions(probs, t, none_id).tolist(), none_id)["f1"]
        if f1 > best[1] + 1e-12:
            best = (float(t), f1)
    return best


def gold_pair_counts(probs: np.ndarray, gold: Sequence[int], captions: Sequence[int], threshold: float,
                     none_id: int = 0) -> np.ndarray:
    """Each caption's (found, predicted, gold) gold pairs at `threshold` (`captions`: each line's caption
    number, 0..n-1), the counts whose micro F1 is `mnre_scores`'s."""
    from mmre_demo.decoding import relation_decisions

    pred = relation_decisions(probs, threshold, none_id)
    gold = np.asarray(gold)
    captions = np.asarray(captions, dtype=np.int64)
    per_line = np.stack([(pred == gold) & (pred != none_id), pred != none_id, gold != none_id], axis=1)
    counts = np.zeros((int(captions.max()) + 1 if len(captions) else 0, 3), dtype=np.int64)
    np.add.at(counts, captions, per_line.astype(np.int64))
    return counts


def stable_gold_threshold(probs: np.ndarray, gold: Sequence[int], captions: Sequence[int], none_id: int = 0,
                          **options: Any) -> ThresholdCurve:
    """The stable gold-pair threshold (`thresholds.stable_threshold`; `options` go to it)."""
    return stable_threshold(lambda t: gold_pair_counts(probs, gold, captions, t, none_id), **options)
