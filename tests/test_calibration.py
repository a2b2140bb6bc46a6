"""Temperature scaling and ECE."""

from __future__ import annotations

import numpy as np
import pytest

from mmre_demo.train.calibration import calibration_report, expected_calibration_error, fit_temperature, nll, softmax


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
    r = calibration_report(logits, gold, t)
    assert r["ece_after"] < r["ece_before"] / 2 and r["ece_after"] < 0.03


def test_temperature_never_changes_the_labels():
    logits, _ = overconfident_set(200)
    assert (softmax(logits, 2.5).argmax(1) == logits.argmax(1)).all()


def test_ece_of_perfect_and_of_always_wrong_confident_predictions():
    probs = np.array([[0.9, 0.1], [0.9, 0.1]] * 5)
    assert expected_calibration_error(probs, [0, 1] * 5) == pytest.approx(0.4)
    one_hot = np.eye(3)[[0, 1, 2, 1]]
    assert expected_calibration_error(one_hot, [0, 1, 2, 1]) == pytest.approx(0.0)
    assert expected_calibration_error(one_hot, [1, 2, 0, 0]) == pytest.approx(1.0)
