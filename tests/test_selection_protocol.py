"""The selection protocol: `mmre train` / `mmre calibrate` choose on dev, val only confirms (docs/evaluation.md)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mmre_demo.cli import main
from mmre_demo.data.splits import DEV_FRACTION, DEV_SEED
from tests.test_relation_model import _tiny_hub_models
from tests.test_train_cli import LINES

EXTRA = [  # a caption the training file does not have: a confirmation set unlike the training data
    "{'token': ['Carol', 'visits', 'Rome'], 'h': {'name': 'Carol', 'pos': [0, 1]}, "
    "'t': {'name': 'Rome', 'pos': [2, 3]}, 'img_id': '', 'relation': '/per/loc/place_of_residence'}",
]


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """Tiny backbones, a training file of 3 captions (12 lines), two confirmation files and a model trained
    on the training file with the carved dev (read-only for the tests)."""
    tmp = tmp_path_factory.mktemp("protocol")
    bert, vit, _ = _tiny_hub_models(tmp)
    data = tmp / "data.txt"
    data.write_text("\n".join(LINES * 4) + "\n")
    other_val = tmp / "other_val.txt"
    other_val.write_text("\n".join(EXTRA + LINES[:1]) + "\n")
    common = ["train", "--train", str(data), "--text-backbone", str(bert), "--vision-backbone", str(vit),
              "--lora-r", "2", "--batch-size", "4", "--seed", "1", "--epochs", "2"]
    assert main(common + ["--val", str(data), "--out", str(tmp / "run")]) == 0
    return tmp, data, other_val, common


def _config(folder: Path) -> dict:
    return json.loads((folder / "config.json").read_text())


def test_train_chooses_on_a_dev_split_carved_from_train_and_records_it(setup, capsys):
    tmp, data, _, _ = setup
    metrics = _config(tmp / "run" / "best")["metrics"]
    assert main(["dev-split", "--train", str(data), "--out", str(tmp / "split")]) == 0
    split = json.loads((tmp / "split" / "split.json").read_text())
    selection = metrics["selection"]
    assert metrics["selected_on"] == "dev" and selection["split"] == "dev" and selection["metric"] == "end_to_end"
    assert selection["dev_ids_sha256"] == split["dev_caption_ids_sha256"]  # the same dev `mmre dev-split` writes
    assert selection["carved"]["source_sha256"] == split["source_sha256"]
    assert (selection["carved"]["seed"], selection["carved"]["fraction"]) == (DEV_SEED, DEV_FRACTION)
    assert selection["overlap_captions"] == 0 and selection["n_lines"] == split["counts"]["lines"]["dev"]
    assert set(metrics["threshold_curves"]) == {"gold", "end_to_end"}
    history = json.loads((tmp / "run" / "history.json").read_text())
    assert all("dev_f1" in row and "val_f1" not in row for row in history)


def test_val_is_scored_once_on_the_chosen_model_and_only_reported(setup):
    tmp, data, _, _ = setup
    config = _config(tmp / "run" / "best")
    confirmation = config["metrics"]["confirmation"]
    assert confirmation["file"] == "data.txt" and confirmation["n_lines"] == 12
    assert confirmation["end_to_end"]["threshold"] == config["threshold"]  # at the threshold chosen on dev
    assert set(confirmation["gold"]) >= {"f1", "precision", "recall"}


def test_another_val_file_changes_no_choice(setup):
    """Same run, another confirmation set: the same epoch, calibration and thresholds are chosen."""
    tmp, _, other_val, common = setup
    assert main(common + ["--val", str(other_val), "--out", str(tmp / "run_other_val")]) == 0
    a, b = _config(tmp / "run" / "best"), _config(tmp / "run_other_val" / "best")
    for key in ("threshold", "gold_threshold", "label_bias", "temperature"):
        assert a[key] == b[key], key
    assert a["metrics"]["epoch"] == b["metrics"]["epoch"]
    assert a["metrics"]["confirmation"]["file"] != b["metrics"]["confirmation"]["file"]


def test_a_dev_file_given_is_chosen_on_and_captions_it_shares_with_train_are_counted(setup):
    tmp, data, other_val, common = setup
    assert main(common + ["--epochs", "1", "--dev", str(other_val), "--out", str(tmp / "run_dev")]) == 0
    selection = _config(tmp / "run_dev" / "best")["metrics"]["selection"]
    assert selection["file"] == "other_val.txt" and selection["carved"] is None
    assert selection["n_captions"] == 2 and selection["overlap_captions"] == 1  # LINES[0]'s caption is trained on


def test_a_model_from_before_the_protocol_still_loads_and_reads_as_chosen_on_val(shipped_relation_dir):
    from mmre_demo.model.relation import RelationModel
    from mmre_demo.train.protocol import Selection

    model = RelationModel.from_pretrained(shipped_relation_dir, device="cpu")
    assert "selection" not in model.config.metrics
    selection = Selection.from_metrics(model.config.metrics)
    assert (selection.split, selection.metric, selection.dev_ids_sha256) == ("val", "end_to_end", None)


def test_calibrate_refuses_to_fit_on_val(tmp_path, capsys):
    assert main(["calibrate", "--weights", str(tmp_path), "--val", "v.txt", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "never on --val" in err and "--dev FILE" in err


def test_calibrate_fits_on_the_carved_dev_and_reports_val(setup, capsys):
    tmp, data, other_val, _ = setup
    out = tmp / "calibrated"
    assert main(["calibrate", "--weights", str(tmp / "run" / "best"), "--train", str(data), "--val", str(other_val),
                 "--out", str(out)]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    metrics = _config(out)["metrics"]
    trained = _config(tmp / "run" / "best")["metrics"]
    assert summary["dev_ids_sha256"] == trained["selection"]["dev_ids_sha256"] == metrics["selection"]["dev_ids_sha256"]
    assert metrics["calibrated_on"] == "data.txt" and metrics["confirmation"]["file"] == "other_val.txt"
    assert summary["confirmation"]["file"] == "other_val.txt" and "e2e_f1" in summary["confirmation"]


def test_eval_prints_the_threshold_curve_and_a_paired_comparison(setup, capsys):
    tmp, data, _, _ = setup
    best = str(tmp / "run" / "best")
    assert main(["eval", "--data", str(data), "--weights", best, "--curve", "--compare-to", best, "--n-boot", "50",
                 "--report-dir", str(tmp / "report"), "--json"]) == 0
    out = capsys.readouterr().out
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["curve"]["thresholds"][0] == 0.2 and summary["curve"]["thresholds"][-1] == 0.7
    assert "<- stable" in out and "noise: the interval includes 0" in out
    gold = summary["compare"]["gold"]
    assert gold["difference"] == 0.0 and gold["verdict"] == "noise"  # a model against itself


def test_eval_end_to_end_compares_both_ways(setup, capsys):
    tmp, data, _, _ = setup
    best = str(tmp / "run" / "best")
    assert main(["eval", "--data", str(data), "--weights", best, "--detect-entities", "--curve",
                 "--compare-to", best, "--n-boot", "50", "--json"]) == 0
    out = capsys.readouterr().out
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["compare"]["end_to_end"]["difference"] == 0.0
    assert summary["compare"]["end_to_end"]["verdict"] == "noise" and "ships only when" in out
    assert len(summary["curve"]["f1"]) == 21


def test_with_decisions_only_the_dev_split_is_carved_from_the_decisions(setup):
    from mmre_demo.annotations import AnnotationStore
    from tests.test_annotations_training import synthetic_decisions

    tmp, _, other_val, common = setup
    store = AnnotationStore(tmp / "decisions.sqlite3")
    store.add_many(synthetic_decisions(12, seed=3), source="test")
    args = [a for a in common if a not in ("--train", str(setup[1]))]
    assert main(args + ["--epochs", "1", "--select-on", "gold", "--annotations", str(tmp / "decisions.sqlite3"),
                        "--init-from", str(tmp / "run" / "best"), "--val", str(other_val),
                        "--out", str(tmp / "run_decisions")]) == 0
    selection = _config(tmp / "run_decisions" / "best")["metrics"]["selection"]
    carved = selection["carved"]
    assert selection["split"] == "dev" and carved["source"] == "" and carved["source_sha256"] is None
    assert carved["counts"]["captions"]["dev"] == 1 and selection["overlap_captions"] == 0
