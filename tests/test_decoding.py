"""Direction-aware decoding: one relation per unordered entity pair."""

from __future__ import annotations

from mmre_demo.data.schema import Entity
from mmre_demo.decoding import decode_directions
from mmre_demo.prediction import PairPrediction

A, B, C = Entity("Jimmer", 0, 6), Entity("Harden", 20, 26), Entity("Rockets", 35, 42)


def pair(head: Entity, tail: Entity, label: str, p: float) -> PairPrediction:
    return PairPrediction(head, tail, label, p, [(label, p)])


def test_the_more_probable_direction_of_an_asymmetric_relation_is_kept_alone():
    out = decode_directions([pair(A, B, "/per/per/charges", 0.6), pair(B, A, "/per/per/charges", 0.85)])
    assert len(out) == 1
    assert (out[0].head, out[0].tail, out[0].probability) == (B, A, 0.85)
    assert out[0].reverse == ("/per/per/charges", 0.6)


def test_a_relation_beats_none_in_the_other_direction():
    out = decode_directions([pair(A, C, "None", 0.95), pair(C, A, "/per/org/member_of", 0.4)])
    assert len(out) == 1 and out[0].head == C and out[0].label == "/per/org/member_of"
    assert out[0].reverse == ("None", 0.95)


def test_a_symmetric_relation_is_one_entry():
    out = decode_directions([pair(A, B, "/per/per/peer", 0.7), pair(B, A, "/per/per/peer", 0.9)])
    assert len(out) == 1 and out[0].symmetric and out[0].probability == 0.9


def test_none_pairs_keep_the_first_direction_and_pairs_keep_their_order():
    pairs = [pair(A, B, "None", 0.9), pair(B, A, "None", 0.8), pair(A, C, "/per/org/member_of", 0.7),
             pair(C, A, "None", 0.6), pair(B, C, "None", 0.5), pair(C, B, "/per/org/member_of", 0.55)]
    out = decode_directions(pairs)
    assert [(p.head.text, p.tail.text) for p in out] == [("Jimmer", "Harden"), ("Jimmer", "Rockets"),
                                                         ("Rockets", "Harden")]
    assert out[0].label == "None" and out[0].reverse == ("None", 0.8)


def test_a_pair_classified_in_one_direction_only_has_no_reverse():
    out = decode_directions([pair(A, B, "/per/per/peer", 0.5)])
    assert len(out) == 1 and out[0].reverse is None


def test_one_decision_rule_for_rows_and_decoded_pairs():
    """`relation_decisions` (gold-pair scoring, training's selection) and `PairPrediction.is_shown` (the
    product, `mmre eval --detect-entities`) decide alike: the best relation when it reaches the threshold."""
    import numpy as np

    from mmre_demo.data.labels import RELATIONS
    from mmre_demo.decoding import best_relations, relation_decisions

    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.ones(len(RELATIONS)) * 0.3, size=200)
    for threshold in (0.2, 0.45, 0.7):
        rows = relation_decisions(probs, threshold)
        ids, p = best_relations(probs)
        shown = [pair(A, B, RELATIONS[i], float(q)).is_shown(threshold) for i, q in zip(ids, p)]
        assert [r != 0 for r in rows] == shown
        assert all(rows[k] == ids[k] for k in range(len(rows)) if shown[k])
