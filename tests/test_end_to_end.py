"""The product's end-to-end metric on hand-computed captions."""

from __future__ import annotations

import pytest

from mmre_demo.data.schema import Entity
from mmre_demo.train.end_to_end import CaptionResult, Triple, score_captions, triple_key


def ent(caption: str, text: str, occurrence: int = 0) -> Entity:
    start = -1
    for _ in range(occurrence + 1):
        start = caption.index(text, start + 1)
    return Entity(text, start, start + len(text))


CAP = "RT @Titans : Marcus Mariota and Derrick Henry beat Houston"


def gold(h: str, rel: str, t: str, caption: str = CAP) -> Triple:
    return Triple(ent(caption, h), rel, ent(caption, t))


def test_names_are_compared_normalised():
    assert triple_key("@Titans", "/per/org/member_of", "Titans!") == ("titans", "/per/org/member_of", "titans")
    res = CaptionResult([gold("Marcus Mariota", "/per/org/member_of", "@Titans")],
                        [gold("Marcus Mariota", "/per/org/member_of", "Titans")])
    s = score_captions([res])
    assert (s["precision"], s["recall"], s["n_found"]) == (1.0, 1.0, 1)
    assert s["strict"]["f1"] == 0.0  # the strict score wants the exact text


def test_symmetric_relations_count_either_direction_but_asymmetric_do_not():
    g = [gold("Marcus Mariota", "/per/per/peer", "Derrick Henry"),
         gold("Marcus Mariota", "/per/org/member_of", "Titans")]
    pred = [gold("Derrick Henry", "/per/per/peer", "Marcus Mariota"),
            gold("Titans", "/per/org/member_of", "Marcus Mariota")]
    s = score_captions([CaptionResult(g, pred)])
    assert s["n_found"] == 1 and s["precision"] == 0.5 and s["recall"] == 0.5
    assert s["false_positives"]["wrong_direction"] == 1


def test_each_gold_triple_is_found_once_and_a_repeated_prediction_is_one_triple():
    g = [gold("Marcus Mariota", "/per/per/peer", "Derrick Henry")] * 2  # duplicated MNRE line
    pred = [gold("Marcus Mariota", "/per/per/peer", "Derrick Henry"),
            gold("Derrick Henry", "/per/per/peer", "Marcus Mariota")]
    s = score_captions([CaptionResult(g, pred)])
    assert (s["n_gold_triples"], s["n_predicted_triples"], s["n_found"]) == (1, 1, 1)


def test_micro_average_over_captions():
    c2 = "Obama visits Paris"
    a = CaptionResult([gold("Marcus Mariota", "/per/org/member_of", "Titans")],
                      [gold("Marcus Mariota", "/per/org/member_of", "Titans"),
                       gold("Derrick Henry", "/per/org/member_of", "Titans")])
    b = CaptionResult([gold("Obama", "/per/loc/place_of_residence", "Paris", c2)], [])
    s = score_captions([a, b])
    assert s["precision"] == pytest.approx(1 / 2) and s["recall"] == pytest.approx(1 / 2)
    assert s["f1"] == pytest.approx(0.5) and s["n_captions"] == 2


def test_false_positives_are_explained():
    g = [gold("Marcus Mariota", "/per/org/member_of", "Titans"),
         gold("Derrick Henry", "None", "Houston"),
         gold("Marcus Mariota", "/per/per/peer", "Derrick Henry")]
    pred = [gold("Marcus Mariota", "/per/loc/place_of_residence", "Houston"),  # pair never annotated
            gold("Derrick Henry", "/per/loc/place_of_residence", "Houston"),  # annotated as None
            gold("Marcus Mariota", "/per/per/charges", "Derrick Henry"),  # annotated with another relation
            gold("Titans", "/per/org/member_of", "Marcus Mariota")]  # the annotated relation, reversed
    s = score_captions([CaptionResult(g, pred)])
    assert s["false_positives"] == {"unannotated_pair": 1, "gold_none_pair": 1, "wrong_label": 1,
                                    "wrong_direction": 1}


def test_misses_are_explained():
    g = [gold("Marcus Mariota", "/per/org/member_of", "Titans"),
         gold("Derrick Henry", "/per/loc/place_of_residence", "Houston"),
         gold("Marcus Mariota", "/per/per/peer", "Derrick Henry")]
    detected = [ent(CAP, "Mariota"), ent(CAP, "Derrick Henry"), ent(CAP, "Titans")]  # Houston not found
    pred = [gold("Derrick Henry", "/per/org/member_of", "Titans")]
    s = score_captions([CaptionResult(g, pred, detected)])
    # Mariota -> boundary differs; Houston -> not detected; and the first triple has a boundary problem too
    assert s["misses"] == {"entity_not_detected": 1, "boundary_differs": 2, "relation_wrong": 0}
    detected.append(ent(CAP, "Houston"))
    detected[0] = ent(CAP, "Marcus Mariota")
    s = score_captions([CaptionResult(g, pred, detected)])
    assert s["misses"] == {"entity_not_detected": 0, "boundary_differs": 0, "relation_wrong": 3}


def test_none_predictions_and_no_gold_give_zero_not_an_error():
    s = score_captions([CaptionResult([gold("Derrick Henry", "None", "Houston")],
                                      [gold("Derrick Henry", "None", "Houston")])])
    assert (s["precision"], s["recall"], s["f1"], s["n_predicted_triples"]) == (0.0, 0.0, 0.0, 0)
