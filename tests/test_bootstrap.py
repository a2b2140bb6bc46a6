"""The paired bootstrap over captions: its interval, its verdict, and the records files it reads."""

from __future__ import annotations

import json
import runpy
import sys

import numpy as np
import pytest

from mmre_demo.train.bootstrap import PairedBootstrap, f1_of_counts, paired_bootstrap, record_counts, records_counts
from mmre_demo.train.end_to_end import CaptionResult, Triple, score_captions
from tests.test_end_to_end import CAP, ent


def captions(found: list[int], n: int = 2) -> np.ndarray:
    """Captions with `n` gold triples and `n` predictions each, `found[i]` of them right."""
    return np.array([(f, n, n) for f in found])


def test_f1_of_counts_is_micro_f1():
    assert f1_of_counts(np.array([(1, 2, 1), (0, 0, 1)])) == pytest.approx(2 * 1 / (2 + 2))
    assert f1_of_counts(np.zeros((3, 3))) == 0.0


def test_a_model_against_itself_is_noise_with_an_interval_of_zero():
    a = captions([1, 2, 0, 1] * 25)
    result = paired_bootstrap(a, a.copy(), n_boot=200)
    assert (result.difference, result.low, result.high) == (0.0, 0.0, 0.0)
    assert result.verdict == "noise" and result.share_b_not_lower == 1.0


def test_a_model_right_on_many_more_captions_is_better():
    a = captions([1] * 100)
    b = captions([2] * 60 + [1] * 40)
    result = paired_bootstrap(a, b, n_boot=500)
    assert result.difference == pytest.approx(0.3) and result.low > 0 and result.verdict == "better"
    assert paired_bootstrap(b, a, n_boot=500).verdict == "worse"


def test_a_difference_on_a_few_captions_is_noise():
    rng = np.random.default_rng(0)
    a = captions(rng.integers(0, 3, size=200).tolist())
    b = a.copy()
    b[:3, 0] = np.minimum(b[:3, 0] + 1, 2)  # three captions each find one more triple
    result = paired_bootstrap(a, b, n_boot=500)
    assert result.difference > 0 and result.low <= 0 <= result.high and result.verdict == "noise"
    assert "noise: the interval includes 0" in result.line("end to end", "old", "new")


def test_the_bootstrap_is_seeded_and_survives_its_dict_form():
    rng = np.random.default_rng(2)
    a, b = captions(rng.integers(0, 3, 150).tolist()), captions(rng.integers(0, 3, 150).tolist())
    first, again = paired_bootstrap(a, b, n_boot=300, seed=7), paired_bootstrap(a, b, n_boot=300, seed=7)
    assert first == again and PairedBootstrap.from_dict(first.to_dict()) == first
    assert first.to_dict()["verdict"] == first.verdict


def test_the_two_models_must_be_scored_on_the_same_captions():
    with pytest.raises(ValueError, match="same captions"):
        paired_bootstrap(captions([1, 1]), captions([1, 1, 1]))


def test_a_records_line_counts_what_score_captions_counts():
    """Gold duplicated on two MNRE lines and a symmetric relation written both ways are one triple each."""
    gold = [Triple(ent(CAP, "Marcus Mariota"), "/per/per/peer", ent(CAP, "Derrick Henry"))] * 2 + [
        Triple(ent(CAP, "Derrick Henry"), "/per/per/peer", ent(CAP, "Marcus Mariota")),
        Triple(ent(CAP, "Marcus Mariota"), "/per/org/member_of", ent(CAP, "Titans")),
        Triple(ent(CAP, "Derrick Henry"), "None", ent(CAP, "Houston"))]
    predicted = [Triple(ent(CAP, "Marcus Mariota"), "/per/per/peer", ent(CAP, "Derrick Henry")),
                 Triple(ent(CAP, "Derrick Henry"), "/per/loc/place_of_residence", ent(CAP, "Houston"))]
    scores = score_captions([CaptionResult(gold, predicted)])
    record = {"caption": CAP, "gold": [[g.head.text, g.relation, g.tail.text] for g in gold],
              "misses": [["marcusmariota", "/per/org/member_of", "titans", "relation_wrong"]],
              "false_positives": [["derrickhenry", "/per/loc/place_of_residence", "houston", "gold_none_pair"]]}
    assert record_counts(record) == (scores["n_found"], scores["n_predicted_triples"], scores["n_gold_triples"])


def test_the_benchmark_script_reads_two_records_files(tmp_path, capsys, monkeypatch):
    rows_a = [{"caption": f"c{i}", "gold": [["a", "/per/per/peer", "b"]], "misses": [] if i % 2 else [["a"] * 4],
               "false_positives": []} for i in range(40)]
    rows_b = [{**r, "misses": []} for r in rows_a]
    for name, rows in (("a", rows_a), ("b", rows_b)):
        (tmp_path / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    monkeypatch.setattr(sys, "argv", ["paired_bootstrap_e2e.py", str(tmp_path / "a.jsonl"), str(tmp_path / "b.jsonl")])
    with pytest.raises(SystemExit) as stop:
        runpy.run_path("benchmarks/paired_bootstrap_e2e.py", run_name="__main__")
    assert stop.value.code == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    expected = paired_bootstrap(records_counts(rows_a), records_counts(rows_b))
    assert out["b_minus_a"] == round(expected.difference, 4) and out["ci95"] == [round(expected.low, 4),
                                                                                  round(expected.high, 4)]
    assert out["f1_b"] == 1.0 and out["verdict"] == "better"
