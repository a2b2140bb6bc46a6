import numpy as np
import pytest

from mmre_demo.train.metrics import best_gold_threshold, confusion_matrix, mnre_scores, per_relation_report


def test_micro_scores_by_hand():
    # gold:  N  A  A  B  N  B ; pred: A  A  N  B  N  C
    gold = [0, 1, 1, 2, 0, 2]
    pred = [1, 1, 0, 2, 0, 3]
    s = mnre_scores(gold, pred)
    # predicted non-None: 4 (A, A, B, C); correct non-None: 2 (A, B); gold non-None: 4
    assert s["precision"] == pytest.approx(2 / 4)
    assert s["recall"] == pytest.approx(2 / 4)
    assert s["f1"] == pytest.approx(0.5)
    assert s["accuracy"] == pytest.approx(3 / 6)  # includes the correct None


def test_none_predictions_never_count():
    s = mnre_scores([0, 0, 1], [0, 0, 0])
    assert s["precision"] == 0 and s["recall"] == 0 and s["f1"] == 0 and s["accuracy"] == pytest.approx(2 / 3)


def test_perfect_and_length_mismatch():
    assert mnre_scores([1, 2, 0], [1, 2, 0])["f1"] == 1.0
    with pytest.raises(ValueError):
        mnre_scores([1], [1, 2])


def test_report_and_confusion():
    gold, pred = [0, 1, 1, 2], [0, 1, 2, 2]
    rows = {r["label"]: r for r in per_relation_report(gold, pred, ["None", "A", "B"])}
    assert rows["A"]["precision"] == 1.0 and rows["A"]["recall"] == 0.5
    assert rows["B"]["precision"] == 0.5 and rows["B"]["support"] == 1
    cm = confusion_matrix(gold, pred, 3)
    assert cm.tolist() == [[1, 0, 0], [0, 1, 1], [0, 0, 1]]


def test_threshold_search_finds_the_cut_between_relations_and_none():
    # the true relations are less probable than None but more probable than in the true-None pair
    probs = np.array([[0.6, 0.4], [0.55, 0.45], [0.9, 0.1]])
    gold = [1, 1, 0]
    threshold, f1 = best_gold_threshold(probs, gold, grid=[0.05, 0.2, 0.35, 0.5])
    assert (threshold, f1) == (0.2, 1.0)
