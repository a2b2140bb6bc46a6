"""`mmre review open / list / walk`: an extract folder's queue built and walked from a terminal, its
decisions in the same store the app reads."""

from __future__ import annotations

import re

import pytest

from mmre_demo.annotations import AnnotationStore
from tests.support.review_corpus import make_extract_folder, mmre


@pytest.fixture(scope="module")
def opened(tmp_path_factory):
    root = tmp_path_factory.mktemp("review_cli")
    folder = make_extract_folder(root)
    db = root / "ann.sqlite3"
    done = mmre("review", "open", str(folder), "--db", str(db))
    assert done.returncode == 0, done.stderr[-2000:]
    qid, pairs = re.search(r"queue (\w+): (\d+) pairs of 12 posts", done.stdout).groups()
    return db, qid, int(pairs)


def test_open_stores_a_queue_of_every_pair(opened):
    db, qid, pairs = opened
    assert pairs >= 20  # every classified pair, shown or not
    listed = mmre("review", "list", "--db", str(db), "--annotator", "ann")
    assert qid in listed.stdout and f"0 of {pairs} reviewed" in listed.stdout


def test_walk_decides_by_keys_and_undo_takes_back(opened):
    db, qid, pairs = opened
    from mmre_demo.annotations.review import ReviewQueues

    queues, keys, position = ReviewQueues(AnnotationStore(db)), ["a", "r"], 2
    while not queues.item(qid, position).relabel_choices():  # relabel the first later item that offers a label
        keys.append("s")
        position += 1
    keys += ["1", "u", "z", "s", "q"]
    done = mmre("review", "walk", qid, "--annotator", "terminal", "--db", str(db), stdin="\n".join(keys) + "\n")
    assert done.returncode == 0, done.stderr
    assert "unknown key 'z'" in done.stdout
    assert done.stdout.strip().endswith(f"2 of {pairs} reviewed")  # a, r, 1 then undo of the relabel
    standing = AnnotationStore(db).current("terminal")
    assert [d.decision for d in standing] == ["accept", "reject"]
    assert len(AnnotationStore(db).all()) == 3  # the undone relabel stays in the history


def test_walk_of_an_unknown_queue_fails_with_a_clear_message(opened):
    db, _, _ = opened
    done = mmre("review", "walk", "nope", "--annotator", "x", "--db", str(db))
    assert done.returncode == 2 and "no review queue 'nope'" in done.stderr
