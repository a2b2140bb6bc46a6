"""Direction-aware decoding: one relation per unordered entity pair.

The classifier reads each ordered pair (A → B and B → A) separately. MNRE annotates one direction
per pair, so a user must never see `A charges B` *and* `B charges A`: of the two directions the one
whose relation is more probable is kept, the other is reported beside it as the reverse reading.
A symmetric relation (`peer`, `couple`, ...) is one fact in either direction, so one entry suffices.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from itertools import combinations

import numpy as np

from mmre_demo.data.names import normalise_name
from mmre_demo.data.schema import Entity, Span
from mmre_demo.prediction import MAX_PAIRS, PairPrediction


def select_pairs(entities: Sequence[Entity], max_pairs: int = MAX_PAIRS) -> tuple[list[tuple[int, int]], str | None]:
    """Ordered pairs to classify: both directions of every unordered pair of differently named
    entities, or of the `max_pairs // 2` closest such pairs (with a message) when there are more."""
    unordered = [(i, j) for i, j in combinations(range(len(entities)), 2)
                 if normalise_name(entities[i].text) != normalise_name(entities[j].text)]
    budget = max(max_pairs // 2, 1)
    message = None
    if len(unordered) > budget:
        def gap(p: tuple[int, int]) -> int:
            a, b = entities[p[0]], entities[p[1]]
            return max(a.start, b.start) - min(a.end, b.end)

        message = (f"{len(entities)} entities give {len(unordered)} entity pairs; only the {budget} pairs of "
                   f"entities closest to each other were classified, both directions each (raise max_pairs "
                   "for more).")
        unordered = sorted(sorted(unordered, key=lambda p: (gap(p), p))[:budget])
    ordered = [pair for i, j in unordered for pair in ((i, j), (j, i))]
    return ordered, message


def best_relations(probs: np.ndarray, none_id: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Each row's most probable relation other than `None`, and its probability."""
    rel = np.array(probs, dtype=np.float64, copy=True)
    rel[:, none_id] = -1.0
    ids = rel.argmax(axis=1)
    return ids, rel[np.arange(len(rel)), ids]


def relation_decisions(probs: np.ndarray, threshold: float, none_id: int = 0) -> np.ndarray:
    """The decision rule: a row's best relation when its calibrated probability reaches `threshold`,
    else `None`. Probabilities are calibrated, so the threshold reads as "at least this likely"."""
    ids, p = best_relations(probs, none_id)
    return np.where(p >= threshold, ids, none_id)


def _spans(p: PairPrediction) -> tuple[Span, Span]:
    return (p.head.start, p.head.end), (p.tail.start, p.tail.end)


def decode_directions(ordered: Sequence[PairPrediction]) -> list[PairPrediction]:
    """Keep one direction per unordered pair, in the order the pairs first appear.

    Kept: the direction whose predicted label is a relation with the higher probability; when
    neither direction predicts a relation, the first direction (as a `None` pair). The kept pair
    records the other direction's best label and probability in `reverse` (a new pair: the given ones are
    left as they are).
    """
    groups: dict[frozenset[Span], list[PairPrediction]] = {}
    for p in ordered:
        groups.setdefault(frozenset(_spans(p)), []).append(p)
    decoded = []
    for group in groups.values():
        relations = [p for p in group if p.is_relation]
        kept = max(relations, key=lambda p: p.probability) if relations else group[0]
        other = next((p for p in group if p is not kept), None)
        decoded.append(kept if other is None else replace(kept, reverse=(other.label, other.probability)))
    return decoded
