"""The dev split: carved from train by caption, deterministic, every line on exactly one side."""

from __future__ import annotations

import json
import random
from collections import Counter
from pathlib import Path

import pytest

from mmre_demo.cli import main
from mmre_demo.data.mnre import example_to_mnre_line, read_mnre
from mmre_demo.data.schema import InputError
from mmre_demo.data.splits import caption_id, carve_dev, file_sha256, ids_sha256, read_dev_split, write_dev_split


def _train_file(path: Path, n_captions: int = 200, seed: int = 0) -> Path:
    """`n_captions` captions of 1-4 lines each (a caption's lines are not always adjacent)."""
    rng = random.Random(seed)
    lines = []
    for c in range(n_captions):
        tokens = [f"Name{c}", "met", f"Other{c}", "in", f"Town{c % 7}"]
        for k in range(rng.randint(1, 4)):
            relation = "None" if k else "/per/per/peer"
            lines.append(example_to_mnre_line(tokens, (tokens[0], 0, 1), (tokens[2 + 2 * (k % 2)], 2 + 2 * (k % 2),
                                                                            3 + 2 * (k % 2)), relation, f"{c}.jpg"))
    rng.shuffle(lines)
    path.write_text("\n".join(lines) + "\n")
    return path


def test_each_caption_lies_whole_on_one_side(tmp_path):
    split, _ = read_dev_split(_train_file(tmp_path / "train.txt"))
    train_ids = {caption_id(ex.tokens) for ex in split.train}
    dev_ids = {caption_id(ex.tokens) for ex in split.dev}
    assert train_ids and dev_ids and not train_ids & dev_ids


def test_every_line_lands_on_one_side_once(tmp_path):
    source = _train_file(tmp_path / "train.txt")
    info = write_dev_split(source, tmp_path / "split")
    written = [(tmp_path / "split" / name).read_text().splitlines() for name in ("train.txt", "dev.txt")]
    assert Counter(written[0] + written[1]) == Counter(source.read_text().splitlines())
    assert (len(written[0]), len(written[1])) == (info.train_lines, info.dev_lines)


def test_about_the_fraction_of_captions_goes_to_dev(tmp_path):
    split, _ = read_dev_split(_train_file(tmp_path / "train.txt", n_captions=200), fraction=0.1)
    assert (split.info.dev_captions, split.info.train_captions) == (20, 180)
    split, _ = read_dev_split(tmp_path / "train.txt", fraction=0.25)
    assert split.info.dev_captions == 50


def test_the_split_is_the_same_for_the_same_file_and_for_its_lines_reordered(tmp_path):
    source = _train_file(tmp_path / "train.txt", seed=0)
    first, _ = read_dev_split(source)
    again, _ = read_dev_split(source)
    examples, _ = read_mnre(source)
    shuffled = carve_dev(list(reversed(examples)))
    assert first.info == again.info
    assert first.info.dev_ids_sha256 == shuffled.info.dev_ids_sha256
    assert {ex.caption for ex in first.dev} == {ex.caption for ex in shuffled.dev}


def test_another_seed_carves_another_dev(tmp_path):
    source = _train_file(tmp_path / "train.txt")
    a, _ = read_dev_split(source, seed=13)
    b, _ = read_dev_split(source, seed=14)
    assert a.info.dev_ids_sha256 != b.info.dev_ids_sha256


def test_a_split_needs_two_captions_and_a_fraction_between_0_and_1(tmp_path):
    examples, _ = read_mnre(_train_file(tmp_path / "train.txt", n_captions=3))
    with pytest.raises(InputError, match="fraction"):
        carve_dev(examples, fraction=1.0)
    one_caption = [ex for ex in examples if ex.caption == examples[0].caption]
    with pytest.raises(InputError, match="at least 2"):
        carve_dev(one_caption)
    tiny = carve_dev(examples, fraction=0.01)  # rounds to 0 captions: still one to choose on
    assert tiny.info.dev_captions == 1 and tiny.info.train_captions == 2


def test_dev_split_command_writes_both_files_and_what_identifies_them(tmp_path, capsys):
    source = _train_file(tmp_path / "train.txt")
    out = tmp_path / "split"
    assert main(["dev-split", "--train", str(source), "--out", str(out), "--fraction", "0.2", "--seed", "3"]) == 0
    meta = json.loads((out / "split.json").read_text())
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1]) == meta
    assert (meta["seed"], meta["fraction"], meta["source"]) == (3, 0.2, "train.txt")
    assert meta["source_sha256"] == file_sha256(source)
    dev, _ = read_mnre(out / "dev.txt")
    assert meta["dev_caption_ids_sha256"] == ids_sha256(sorted({caption_id(ex.tokens) for ex in dev}))
    assert meta["counts"]["captions"]["dev"] == 40 and meta["counts"]["lines"]["dev"] == len(dev)


def test_a_malformed_training_line_is_named_and_nothing_is_written(tmp_path, capsys):
    bad = tmp_path / "bad.txt"
    bad.write_text(_train_file(tmp_path / "good.txt", n_captions=3).read_text() + "{'token': oops}\n")
    assert main(["dev-split", "--train", str(bad), "--out", str(tmp_path / "out")]) == 2
    assert f"{bad}:" in capsys.readouterr().err and not (tmp_path / "out").exists()


def test_mnre_train_gives_a_tenth_of_its_captions_to_dev(shared_data):
    split, _ = read_dev_split(shared_data / "mnre" / "mnre_train.txt")
    info = split.info
    assert info.train_lines + info.dev_lines == 12247
    assert info.dev_captions == round(0.1 * (info.dev_captions + info.train_captions))
    assert not {ex.caption for ex in split.train} & {ex.caption for ex in split.dev}


def test_the_unseen_slice_is_the_dev_captions_whose_names_training_never_saw(tmp_path):
    source = _train_file(tmp_path / "train.txt")
    write_dev_split(source, tmp_path / "split")
    read = {name: read_mnre(tmp_path / "split" / name)[0] for name in ("train.txt", "dev.txt", "dev_unseen.txt")}
    seen = {e.text.casefold() for ex in read["train.txt"] for e in (ex.head, ex.tail)}
    unseen_captions = {ex.caption for ex in read["dev_unseen.txt"]}
    dev_lines = (tmp_path / "split" / "dev.txt").read_text().splitlines()
    assert set((tmp_path / "split" / "dev_unseen.txt").read_text().splitlines()) <= set(dev_lines)
    assert unseen_captions and all(e.text.casefold() not in seen for ex in read["dev_unseen.txt"]
                                   for e in (ex.head, ex.tail))
    # a dev caption that names a town training has seen stays out, with all its lines
    left_out = {ex.caption for ex in read["dev.txt"]} - unseen_captions
    assert left_out and all(any(e.text.casefold() in seen for ex in read["dev.txt"] if ex.caption == c
                                for e in (ex.head, ex.tail)) for c in left_out)
