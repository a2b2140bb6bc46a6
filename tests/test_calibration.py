"""Temperature scaling and ECE."""

from __future__ import annotations

import numpy as np
import pytest

from mmre_demo.train.calibration import (
    calibrated,
    calibration_report,
    ece_noise_floor,
    expected_calibration_error,
    fit_calibration,
    fit_none_offset,
    fit_temperature,
    nll,
    softmax,
)


def overconfident_set(n: int = 4000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Labels drawn from softmax(z); the model reports 3 * z: right ranking, far too sure."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, 5))
    p = softmax(z)
    gold = np.array([rng.choice(5, p=row) for row in p])
    return 3.0 * z, gold


def test_a_fitted_temperature_lowers_nll_and_ece_on_an_overconfident_set():
    logits, gold = overconfident_set()
    t = fit_temperature(logits, gold)
    assert t == pytest.approx(3.0, rel=0.15)
    assert nll(logits, gold, t) < nll(logits, gold)
    r = calibration_report(logits, gold, 0, np.zeros(5), t)
    assert r["ece_after"] < r["ece_before"] / 2 and r["ece_after"] < 0.03 and r["ece_held_out"] < 0.04


def test_the_none_offset_undoes_a_shifted_none_logit():
    """A model that learned too little None (its None logit 1.5 too low) and is overconfident: the
    joint fit finds both, and the calibrated probabilities are those of the true model."""
    logits, gold = overconfident_set()
    biased = logits.copy()
    biased[:, 0] -= 1.5 * 3.0
    offset, t = fit_none_offset(biased, gold, none_id=0)
    assert offset == pytest.approx(4.5, abs=0.6) and t == pytest.approx(3.0, rel=0.15)
    offsets, t = fit_calibration(biased, gold, none_id=0)
    assert offsets[0] - offsets[1:].mean() == pytest.approx(4.5, abs=0.6) and t == pytest.approx(3.0, rel=0.15)
    assert np.abs(calibrated(biased, offsets, t) - softmax(logits / 3.0)).mean() < 0.01


def test_per_label_offsets_undo_a_relation_the_model_learned_too_rarely():
    """Label 3's logit 2 too low (a rare relation): the per-label fit raises it and the calibrated
    probabilities approach the true model's; the L2 penalty keeps the untouched labels' offsets near 0."""
    logits, gold = overconfident_set()
    biased = logits.copy()
    biased[:, 3] -= 2.0 * 3.0
    offsets, t = fit_calibration(biased, gold, none_id=0)
    relative = offsets - offsets[[1, 2, 4]].mean()
    assert relative[3] == pytest.approx(6.0, abs=1.0) and abs(relative[0]) < 0.5
    assert nll(biased + offsets, gold, t) < nll(biased + np.eye(5)[0] * fit_none_offset(biased, gold)[0], gold,
                                               fit_none_offset(biased, gold)[1])
    assert np.abs(calibrated(biased, offsets, t) - softmax(logits / 3.0)).mean() < 0.02


def test_an_old_config_keeps_its_none_offset():
    from mmre_demo.model.config import RelationConfig

    cfg = RelationConfig.from_dict({"none_bias": 1.25, "labels": ["None", "a", "b"]})
    assert cfg.label_bias == [1.25, 0.0, 0.0]
    assert RelationConfig.from_dict({"labels": ["None", "a"]}).label_bias == []


def test_temperature_never_changes_the_labels():
    logits, _ = overconfident_set(200)
    assert (softmax(logits, 2.5).argmax(1) == logits.argmax(1)).all()


def test_ece_of_perfect_and_of_always_wrong_confident_predictions():
    probs = np.array([[0.9, 0.1], [0.9, 0.1]] * 5)
    assert expected_calibration_error(probs, [0, 1] * 5) == pytest.approx(0.4)
    one_hot = np.eye(3)[[0, 1, 2, 1]]
    assert expected_calibration_error(one_hot, [0, 1, 2, 1]) == pytest.approx(0.0)
    assert expected_calibration_error(one_hot, [1, 2, 0, 0]) == pytest.approx(1.0)


def test_the_noise_floor_is_the_ece_of_labels_drawn_from_the_model_itself():
    probs = softmax(np.random.default_rng(1).normal(size=(300, 4)))
    floor = ece_noise_floor(probs, draws=50)
    assert 0.0 < floor < 0.15  # small sets show a positive ECE even when perfectly calibrated
    assert ece_noise_floor(np.repeat(probs, 20, axis=0), draws=20) < floor  # and less on larger ones
