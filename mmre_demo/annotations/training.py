"""Annotators' decisions as training data (`mmre train --annotations DB`), and decisions simulated from
labelled data (to measure what fine-tuning on decisions does without waiting for real annotators).

One training example per judged pair: accept and relabel give the relation that holds, reject gives
`None`. Where several annotators decided the same pair, the relation most of them chose wins; a tie
goes to the latest decision (the freshest look at it). Entity types are not part of a training
example (the relation model does not read them; MNRE lines carry none).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from mmre_demo.annotations.store import Candidate, Decision, DecisionKind
from mmre_demo.data.labels import NONE_LABEL, relation_types
from mmre_demo.data.mnre import MnreExample, parse_mnre_line
from mmre_demo.data.schema import Entity, InputError

log = logging.getLogger(__name__)


def resolve_pairs(decisions: Sequence[Decision]) -> list[Decision]:
    """One decision per pair (`Candidate.key`): the majority relation, ties to the latest; in the order
    the pairs were first decided."""
    by_pair: dict[str, list[Decision]] = {}
    for d in sorted(decisions, key=lambda d: d.id or 0):
        by_pair.setdefault(d.candidate.key, []).append(d)
    out = []
    for group in by_pair.values():
        votes = Counter(d.relation for d in group)
        top = max(votes.values())
        out.append(next(d for d in reversed(group) if votes[d.relation] == top))
    return out


def decision_examples(decisions: Sequence[Decision]) -> list[MnreExample]:
    """Training examples from standing decisions (`AnnotationStore.current()`), one per pair."""
    chosen = resolve_pairs(decisions)
    examples = [parse_mnre_line(d.mnre_line(), i + 1) for i, d in enumerate(chosen)]
    if len(chosen) < len(decisions):
        log.info("%d decisions on %d pairs (several annotators: majority, ties to the latest)",
                 len(decisions), len(chosen))
    return examples


def load_decision_examples(db: str, annotator: str | None = None) -> list[MnreExample]:
    """`mmre train --annotations DB [--annotator NAME]`: the store's standing decisions as examples;
    refuses a store with none (a typo in the path would otherwise train on nothing)."""
    from pathlib import Path

    from mmre_demo.annotations.store import AnnotationStore

    if not Path(db).is_file():
        raise InputError(f"--annotations {db}: no such annotation store")
    current = AnnotationStore(db).current(annotator)
    if not current:
        who = f" by {annotator}" if annotator else ""
        raise InputError(f"--annotations {db}: no standing decisions{who} to train on")
    examples = decision_examples(current)
    counts = Counter("None" if e.relation == NONE_LABEL else "relation" for e in examples)
    log.info("annotations: %d pairs from %s (%d with a relation, %d None)", len(examples), db,
             counts["relation"], counts["None"])
    return examples


@dataclass(frozen=True)
class SimulatedDecision:
    """What an annotator who knows the gold label does with the model's prediction on one pair."""

    candidate: Candidate
    decision: str
    new_label: str | None

    def as_tuple(self, annotator: str) -> tuple[Candidate, str, str | None, str]:
        """The shape `AnnotationStore.add_many` takes."""
        return self.candidate, self.decision, self.new_label, annotator


def _typed(e: Entity, etype: str) -> Entity:
    return Entity(e.text, e.start, e.end, etype)


def simulate_decision(example: MnreExample, predicted: str, probability: float | None = None) -> SimulatedDecision:
    """Accept when the prediction is the gold label, reject when gold is `None`, else relabel to gold.
    The pair's entity types are the ones the deciding relation implies (gold, else the prediction;
    unknown when both are `None`), as a tagger agreeing with the annotator would give them."""
    types = relation_types(example.relation) or relation_types(predicted) or ("", "")
    cand = Candidate(example.caption, example.img_id, _typed(example.head, types[0]),
                     _typed(example.tail, types[1]), predicted, probability)
    if predicted == example.relation:
        return SimulatedDecision(cand, DecisionKind.ACCEPT.value, None)
    if example.relation == NONE_LABEL:
        return SimulatedDecision(cand, DecisionKind.REJECT.value, None)
    return SimulatedDecision(cand, DecisionKind.RELABEL.value, example.relation)


def simulate_decisions(examples: Iterable[MnreExample], predicted: Sequence[str],
                       probabilities: Sequence[float] | None = None) -> list[SimulatedDecision]:
    examples = list(examples)
    if len(examples) != len(predicted):
        raise ValueError("one prediction per example")
    probs = probabilities if probabilities is not None else [None] * len(examples)
    return [simulate_decision(e, p, q) for e, p, q in zip(examples, predicted, probs)]
