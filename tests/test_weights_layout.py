"""`WeightsLayout`: which relation model and which tagger a weights folder means, and a version that covers
both, so `mmre extract --resume` refuses a run whose tagger changed, even when the tagger is the default one
a training run's folder falls back to."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from mmre_demo.cli import main
from mmre_demo.data.paths import SHIPPED_WEIGHTS, WEIGHTS_ENV, WeightsLayout, weights_dir
from mmre_demo.extract import OutputStore
from mmre_demo.extract.predictor import model_info, output_settings
from tests.support.extract_fakes import write_jsonl


@pytest.fixture
def folders(tmp_path, monkeypatch):
    """A default weights folder (`$MMRE_WEIGHTS`: relation + a copy of the shipped tagger) and a training
    run's folder (the relation model's files only, no ner/)."""
    default, run = tmp_path / "default", tmp_path / "run"
    shutil.copytree(SHIPPED_WEIGHTS / "ner", default / "ner")
    (default / "relation").mkdir(parents=True)
    run.mkdir()
    for f in (SHIPPED_WEIGHTS / "relation").iterdir():
        (default / "relation" / f.name).symlink_to(f)
        (run / f.name).symlink_to(f)
    monkeypatch.setenv(WEIGHTS_ENV, str(default))
    return default, run


def test_a_shipped_style_folder_means_its_relation_and_ner_subfolders(folders):
    default, _ = folders
    layout = WeightsLayout.find()
    assert (layout.root, layout.relation, layout.tagger) == (default, default / "relation", default / "ner")


def test_a_run_folder_without_ner_uses_the_default_tagger_and_its_version_covers_it(folders):
    default, run = folders
    layout = WeightsLayout.find(run)
    assert (layout.relation, layout.tagger) == (run, default / "ner")
    info = model_info(run)
    assert info.name.endswith("+ ner tagger")
    cfg = json.loads((default / "ner" / "config.json").read_text())
    (default / "ner" / "config.json").write_text(json.dumps({**cfg, "dropout": cfg.get("dropout", 0.1) + 0.05}))
    assert model_info(run).version != info.version


def test_a_given_tagger_replaces_the_folders_own(folders, tmp_path):
    default, _ = folders
    other = tmp_path / "other_ner"
    other.mkdir()
    assert WeightsLayout.find(default, other).tagger == other


def test_resume_refuses_a_run_whose_fallback_tagger_changed(folders, tmp_path, capsys):
    default, run = folders
    corpus = write_jsonl(tmp_path / "in.jsonl", [{"id": "a", "caption": "Ann Smith works at Acme"}])
    out = tmp_path / "out"
    before = model_info(run)
    OutputStore.open(out, before, output_settings(30, 3)).close()  # an interrupted run with this tagger
    weights = default / "ner" / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 1  # a retrained tagger (same files, other numbers)
    weights.write_bytes(bytes(data))
    code = main(["extract", str(corpus), "--out", str(out), "--weights", str(run), "--resume", "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2, err
    assert f"version {before.version}" in err and "new --out folder" in err


def test_the_old_environment_variable_still_works_with_a_deprecation_line(monkeypatch, tmp_path, caplog):
    monkeypatch.delenv(WEIGHTS_ENV, raising=False)
    monkeypatch.setenv("MMRE_WEIGHTS_DIR", str(tmp_path))
    with caplog.at_level("WARNING", logger="mmre_demo.data.paths"):
        assert weights_dir() == Path(tmp_path)
    assert "MMRE_WEIGHTS_DIR is deprecated" in caplog.text and WEIGHTS_ENV in caplog.text
