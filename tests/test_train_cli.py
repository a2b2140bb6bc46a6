"""`mmre train` (seeded, resumable) and `mmre eval` end to end on a tiny data file and tiny backbones."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from mmre_demo.cli import main
from tests.test_relation_model import _tiny_hub_models

LINES = [
    "{'token': ['Alice', 'works', 'for', 'Acme', 'Corp'], 'h': {'name': 'Alice', 'pos': [0, 1]}, "
    "'t': {'name': 'Acme Corp', 'pos': [3, 5]}, 'img_id': 'a.png', 'relation': '/per/org/member_of'}",
    "{'token': ['Bob', 'lives', 'in', 'Paris'], 'h': {'name': 'Bob', 'pos': [0, 1]}, "
    "'t': {'name': 'Paris', 'pos': [3, 4]}, 'img_id': 'missing.png', 'relation': '/per/loc/place_of_residence'}",
    "{'token': ['Paris', 'and', 'Bob'], 'h': {'name': 'Paris', 'pos': [0, 1]}, "
    "'t': {'name': 'Bob', 'pos': [2, 3]}, 'img_id': 'a.png', 'relation': 'None'}",
]


@pytest.fixture()
def tiny_setup(tmp_path: Path):
    from PIL import Image


    bert, vit, _ = _tiny_hub_models(tmp_path)
    data = tmp_path / "data.txt"
    data.write_text("\n".join(LINES * 4) + "\n")
    images = tmp_path / "images"
    images.mkdir()
    Image.new("RGB", (40, 40), (10, 200, 10)).save(images / "a.png")
    return tmp_path, data, images, str(bert), str(vit)


def test_train_resume_and_eval(tiny_setup, capsys):
    tmp, data, images, bert, vit = tiny_setup
    out = tmp / "run"
    common = ["train", "--train", str(data), "--val", str(data), "--images", str(images), "--out", str(out),
              "--text-backbone", bert, "--vision-backbone", vit, "--lora-r", "2", "--batch-size", "4", "--seed", "1"]
    assert main(common + ["--epochs", "1"]) == 0
    state = json.loads((out / "last" / "trainer_state.json").read_text())
    assert state["epoch"] == 1 and len(state["history"]) == 1
    assert main(common + ["--epochs", "2", "--resume"]) == 0
    history = json.loads((out / "history.json").read_text())
    assert [row["epoch"] for row in history] == [1, 2]
    capsys.readouterr()

    assert main(["eval", "--data", str(data), "--images", str(images), "--weights", str(out / "best"),
                 "--report-dir", str(tmp / "report"), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert set(summary) == {"precision", "recall", "f1", "accuracy", "n", "n_with_image"}
    assert summary["n"] == 12 and summary["n_with_image"] == 8  # missing.png is scored text-only, still counted
    with Image.open(tmp / "report" / "confusion.png") as png:  # a real image of the matrix, not a stub file
        darkest, lightest = png.convert("L").getextrema()
        assert png.format == "PNG" and min(png.size) >= 200 and lightest - darkest > 100, (png.size, darkest, lightest)


def test_training_is_seeded(tiny_setup):
    tmp, data, images, bert, vit = tiny_setup
    losses = []
    for run in ("a", "b"):
        assert main(["train", "--train", str(data), "--val", str(data), "--out", str(tmp / run), "--epochs", "1",
                     "--text-backbone", bert, "--vision-backbone", vit, "--lora-r", "2", "--seed", "5"]) == 0
        losses.append(json.loads((tmp / run / "history.json").read_text())[0]["train_loss"])
    assert losses[0] == losses[1]


def test_unknown_training_device_is_a_one_line_error(tiny_setup, capsys):
    tmp, data, _, bert, vit = tiny_setup
    code = main(["train", "--train", str(data), "--val", str(data), "--out", str(tmp / "run"),
                 "--text-backbone", bert, "--vision-backbone", vit, "--device", "tpu9"])
    assert code == 2
    assert "unknown device 'tpu9'" in capsys.readouterr().err


def test_malformed_training_file_names_the_line(tmp_path: Path, capsys):
    bad = tmp_path / "bad.txt"
    bad.write_text(LINES[0] + "\n{'token': oops}\n")
    assert main(["train", "--train", str(bad), "--val", str(bad), "--out", str(tmp_path / "o")]) == 2
    assert f"{bad}:2:" in capsys.readouterr().err


def test_train_options_default_to_the_run_config():
    """`mmre train --help` shows what the code does: the option defaults are the dataclasses' defaults."""
    from mmre_demo.cli import build_parser
    from mmre_demo.model.config import RelationConfig
    from mmre_demo.train.config import RelationTrainConfig

    args = build_parser().parse_args(["train", "--train", "t", "--val", "v", "--out", "o"])
    run, model = RelationTrainConfig(out=Path("o")), RelationConfig()
    assert (args.epochs, args.batch_size, args.lr, args.head_lr, args.seed, args.device, args.extra_fraction,
            args.select_on) == (run.epochs, run.batch_size, run.lr, run.head_lr, run.seed, run.device,
                                run.extra_fraction, run.select_on)
    assert tuple(args.pairs.split(",")) == run.pair_sources
    assert (args.text_backbone, args.vision_backbone, args.backbone_training, args.lora_r) == (
        model.text_backbone, model.vision_backbone, model.backbone_training, model.lora_r)
    assert (args.architecture, args.max_rows, args.distill_weight, args.distill_temperature) == (
        model.architecture, model.max_rows, run.distill_weight, run.distill_temperature)
    assert (args.dev, args.dev_fraction, args.dev_seed) == (None, run.dev_fraction, run.dev_seed)


def test_the_dev_split_options_share_one_default():
    """`mmre train`, `mmre calibrate` and `mmre dev-split` carve the same dev split unless told otherwise."""
    from mmre_demo.cli import build_parser

    parser = build_parser()
    train = parser.parse_args(["train", "--train", "t", "--out", "o"])  # --val is optional: it only confirms
    calibrate = parser.parse_args(["calibrate", "--weights", "w", "--train", "t", "--out", "o"])
    split = parser.parse_args(["dev-split", "--train", "t", "--out", "o"])
    assert train.val is None
    assert (train.dev_fraction, train.dev_seed) == (calibrate.dev_fraction, calibrate.dev_seed) == (
        split.fraction, split.seed)


def test_a_caption_once_student_learns_from_a_pair_marker_teacher(tiny_setup, capsys):
    """`--distill-from`: the teacher scores every training pair once (kept for --resume); the student trains."""
    tmp, data, images, bert, vit = tiny_setup
    # --dev given: every training line is trained on (no dev carved out of it), so the teacher scores all 12
    common = ["train", "--train", str(data), "--dev", str(data), "--val", str(data), "--out", "", "--text-backbone",
              bert, "--vision-backbone", vit, "--lora-r", "2", "--batch-size", "4", "--seed", "1", "--epochs", "1",
              "--select-on", "gold"]
    teacher = common.copy()
    teacher[teacher.index("--out") + 1] = str(tmp / "teacher")
    assert main(teacher + ["--architecture", "pair-markers"]) == 0
    student = common.copy()
    student[student.index("--out") + 1] = str(tmp / "student")
    assert main(student + ["--architecture", "entity-pooling", "--distill-from", str(tmp / "teacher" / "best")]) == 0
    saved = json.loads((tmp / "student" / "best" / "config.json").read_text())
    assert saved["architecture"] == "entity-pooling"
    import numpy as np

    assert np.load(tmp / "student" / "teacher_logits.npy").shape == (len(LINES) * 4, 23)


def test_an_ensemble_teaches_the_mean_of_its_log_probabilities(tiny_setup, capsys):
    """Two teachers: each scores the pairs once (its own file), the student learns their mean log-probabilities."""
    import numpy as np
    import torch

    from mmre_demo.train.config import RelationTrainConfig
    from mmre_demo.train.relation import teacher_logits

    tmp, data, images, bert, vit = tiny_setup
    common = ["train", "--train", str(data), "--dev", str(data), "--text-backbone", bert, "--vision-backbone", vit,
              "--lora-r", "2", "--batch-size", "4", "--epochs", "1", "--select-on", "gold"]
    for name, arch, seed in (("a", "pair-markers", "1"), ("b", "entity-pooling", "2")):
        assert main(common + ["--out", str(tmp / name), "--architecture", arch, "--seed", seed]) == 0
    teachers = [tmp / "a" / "best", tmp / "b" / "best"]
    assert main(common + ["--out", str(tmp / "student"), "--seed", "3", "--distill-from", *map(str, teachers)]) == 0
    first, second = (np.load(tmp / "student" / f) for f in ("teacher_logits.npy", "teacher_logits_2.npy"))
    assert first.shape == second.shape == (len(LINES) * 4, 23) and not np.allclose(first, second)
    from mmre_demo.data.mnre import read_mnre

    examples, _ = read_mnre(data)
    args = RelationTrainConfig(out=tmp / "student", distill_from=tuple(teachers))
    n = len(LINES) * 4
    mixed = teacher_logits(args, [examples[0]] * n, None, tmp / "student")  # the stamps match: read back, not rerun
    expected = (torch.log_softmax(torch.from_numpy(first).double(), -1)
                + torch.log_softmax(torch.from_numpy(second).double(), -1)) / 2
    np.testing.assert_allclose(mixed, expected.numpy(), atol=1e-6)


def test_distillation_loss_is_zero_only_when_the_student_agrees():
    import torch

    from mmre_demo.train.relation import distillation_loss

    teacher = torch.tensor([[2.0, 0.0, -1.0]])
    assert float(distillation_loss(teacher.clone(), teacher, 2.0)) == pytest.approx(0.0, abs=1e-6)
    assert float(distillation_loss(torch.tensor([[-1.0, 0.0, 2.0]]), teacher, 2.0)) > 0.1


def test_train_ner_options_default_to_the_run_config():
    from mmre_demo.cli import build_parser
    from mmre_demo.model.ner.config import NerConfig
    from mmre_demo.train.config import NerTrainConfig

    args = build_parser().parse_args(["train-ner", "--out", "o"])
    run, model = NerTrainConfig(), NerConfig()
    assert (args.epochs, args.batch_size, args.lr, args.patience, args.seed) == (
        run.epochs, run.batch_size, run.lr, run.patience, run.seed)
    assert (args.text_backbone, args.lstm_hidden) == (model.text_backbone, model.lstm_hidden)


def test_image_text_training_needs_the_images(tiny_setup, capsys):
    tmp, data, _, bert, vit = tiny_setup
    code = main(["train", "--train", str(data), "--val", str(data), "--out", str(tmp / "run_it"),
                 "--text-backbone", bert, "--vision-backbone", vit, "--image-text"])
    assert code == 2
    assert "--image-text reads the text in the training images" in capsys.readouterr().err


CONLL = """IMGID:1
Alice\tB-PER
visits\tO
Acme\tB-ORG
Corp\tI-ORG
in\tO
Paris\tB-LOC

IMGID:2
only\tO
Bob\tB-PER

"""


def test_a_transfer_set_is_learnt_from_the_teachers_alone(tiny_setup, capsys):
    """`--transfer-set`: every ordered pair of a tweet's entities is scored by the teacher beside the MNRE pairs
    (3 entities: 6 pairs; a tweet with one entity gives none), and the student trains on them."""
    tmp, data, images, bert, vit = tiny_setup
    conll = tmp / "train.txt"
    conll.write_text(CONLL)
    common = ["train", "--train", str(data), "--dev", str(data), "--out", "", "--text-backbone", bert,
              "--vision-backbone", vit, "--lora-r", "2", "--batch-size", "4", "--seed", "1", "--epochs", "1",
              "--select-on", "gold"]
    teacher = [*common[:common.index("--out") + 1], str(tmp / "teacher"), *common[common.index("--out") + 2:]]
    assert main(teacher) == 0
    student = [*common[:common.index("--out") + 1], str(tmp / "student"), *common[common.index("--out") + 2:]]
    assert main(student + ["--transfer-set", str(conll)]) == 2
    assert "--transfer-set has no relation labels" in capsys.readouterr().err
    assert main(student + ["--transfer-set", str(conll), "--distill-from", str(tmp / "teacher" / "best")]) == 0
    import numpy as np

    assert np.load(tmp / "student" / "teacher_logits.npy").shape == (len(LINES) * 4 + 6, 23)
    test_file = tmp / "test.txt"
    test_file.write_text(CONLL)
    assert main(student + ["--transfer-set", str(test_file), "--distill-from", str(tmp / "teacher" / "best")]) == 2
    assert "a test split is held out" in capsys.readouterr().err
