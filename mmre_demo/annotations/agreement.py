"""How far annotators agree on the pairs two of them decided: raw agreement and Cohen's kappa, overall
and per relation (one relation against the rest). Written out (20 lines) rather than pulling in
scikit-learn for `cohen_kappa_score`; `tests/test_annotations_review.py` checks it against hand-computed
values."""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from itertools import combinations

from mmre_demo.annotations.store import Decision


@dataclass(frozen=True)
class Agreement:
    """Agreement of two label sequences over the same items."""

    items: int
    raw: float  # share of items both gave the same label
    kappa: float | None  # Cohen's kappa; None when chance agreement is 1 (both used one label only)


@dataclass(frozen=True)
class PairAgreement:
    """Two annotators on the pairs both decided: overall, and per relation either of them used."""

    first: str
    second: str
    overall: Agreement
    per_relation: dict[str, Agreement] = field(default_factory=dict)


def cohen_kappa(a: Sequence[Hashable], b: Sequence[Hashable]) -> Agreement:
    """kappa = (p_o - p_e) / (1 - p_e), p_e from each annotator's own label frequencies."""
    if len(a) != len(b):
        raise ValueError("the two label sequences must be as long as each other")
    n = len(a)
    if n == 0:
        return Agreement(0, 0.0, None)
    observed = sum(x == y for x, y in zip(a, b)) / n
    ca, cb = Counter(a), Counter(b)
    expected = sum(ca[k] * cb.get(k, 0) for k in ca) / (n * n)
    kappa = None if expected >= 1.0 else (observed - expected) / (1.0 - expected)
    return Agreement(n, observed, kappa)


def agreement(decisions: Sequence[Decision]) -> list[PairAgreement]:
    """Per pair of annotators with common items: their standing decisions' relations compared
    (`decisions` should be `AnnotationStore.current()`: one decision per item and annotator)."""
    by_annotator: dict[str, dict[str, str]] = {}
    for d in decisions:
        by_annotator.setdefault(d.annotator, {})[d.candidate.key] = d.relation
    out = []
    for first, second in combinations(sorted(by_annotator), 2):
        common = sorted(set(by_annotator[first]) & set(by_annotator[second]))
        if not common:
            continue
        a = [by_annotator[first][k] for k in common]
        b = [by_annotator[second][k] for k in common]
        per = {rel: cohen_kappa([x == rel for x in a], [y == rel for y in b])
               for rel in sorted(set(a) | set(b))}
        out.append(PairAgreement(first, second, cohen_kappa(a, b), per))
    return out


def agreement_rows(results: Sequence[PairAgreement]) -> list[list[object]]:
    """Table rows: annotators, relation ("all" first), items, raw agreement, kappa."""
    rows: list[list[object]] = []
    for r in results:
        for rel, ag in [("all", r.overall), *r.per_relation.items()]:
            rows.append([f"{r.first} / {r.second}", rel, ag.items, round(ag.raw, 3),
                         None if ag.kappa is None else round(ag.kappa, 3)])
    return rows


AGREEMENT_HEADERS = ["annotators", "relation", "pairs both decided", "raw agreement", "Cohen's kappa"]
