"""Annotator decisions: validation, MNRE export round trip, durability across re-created stores and
apps, and concurrent writers (threads and processes) losing nothing."""

from __future__ import annotations

import multiprocessing as mp
import threading

import pytest

from mmre_demo.annotations import AnnotationStore, Candidate, tokenize_for_mnre
from mmre_demo.data.mnre import parse_mnre_line
from mmre_demo.data.schema import Entity, InputError

CAP = "Astronaut Eileen Collins of NASA poses in Houston, Texas."
HEAD = Entity("Eileen Collins", 10, 24, "PER")
ORG = Entity("NASA", 28, 32, "ORG")
LOC = Entity("Houston", 42, 49, "LOC")


def cand(head: Entity, tail: Entity, predicted: str, img_id: str | None = None, probability: float = 0.9) -> Candidate:
    return Candidate(CAP, img_id, head, tail, predicted, probability)


def test_tokenize_covers_spans_exactly():
    tokens, idx = tokenize_for_mnre(CAP, [(10, 24), (42, 49), (51, 56)])
    assert tokens[idx[(42, 49)][0]:idx[(42, 49)][1]] == ["Houston"]  # "Houston," split at the boundary
    assert tokens[idx[(51, 56)][0]] == "Texas"
    toks, idx = tokenize_for_mnre("ab cd", [(0, 1), (3, 5)])
    assert toks == ["a", "b", "cd"] and idx[(0, 1)] == (0, 1) and idx[(3, 5)] == (2, 3)


def test_decisions_export_as_mnre(tmp_path):
    st = AnnotationStore(tmp_path / "a.sqlite3")
    st.add(cand(HEAD, ORG, "/per/org/member_of", "img.jpg"), "accept", annotator="ann")
    st.add(cand(HEAD, LOC, "/per/loc/place_of_residence", "img.jpg", 0.8), "relabel", "/per/loc/place_of_birth",
           annotator="ann")
    st.add(cand(ORG, HEAD, "/per/org/member_of", "img.jpg", 0.6), "reject", annotator="ann")
    lines = st.export_mnre(tmp_path / "out.txt").splitlines()
    ex = [parse_mnre_line(ln) for ln in lines]
    assert [e.relation for e in ex] == ["/per/org/member_of", "/per/loc/place_of_birth", "None"]
    assert ex[0].head.text == "Eileen Collins" and ex[0].tail.text == "NASA" and ex[0].img_id == "img.jpg"
    assert ex[1].tail.text == "Houston"
    assert (tmp_path / "out.txt").read_text().count("\n") == 3


def test_bad_decisions_are_refused(tmp_path):
    st = AnnotationStore(tmp_path / "a.sqlite3")
    with pytest.raises(InputError):
        st.add(cand(HEAD, ORG, "/per/org/member_of"), "maybe")
    with pytest.raises(InputError):
        st.add(cand(HEAD, ORG, "/per/org/member_of"), "relabel", "not_a_label")
    with pytest.raises(InputError):
        st.add(cand(Entity("Eileen", 0, 6, "PER"), ORG, "/per/org/member_of"), "accept")
    assert st.count() == 0


def test_latest_decision_wins_but_history_is_kept(tmp_path):
    st = AnnotationStore(tmp_path / "a.sqlite3")
    st.add(cand(HEAD, ORG, "/per/org/member_of"), "accept", annotator="a")
    st.add(cand(HEAD, ORG, "/per/org/member_of"), "reject", annotator="a")
    assert st.count() == 2 and [d.decision for d in st.current()] == ["reject"]


def test_durable_across_store_and_controller_recreation(tmp_path, pipeline):
    from mmre_demo.ui import extract, review
    from mmre_demo.ui.controller import Controller, examples
    from mmre_demo.ui.outputs import Output

    db = tmp_path / "ann.sqlite3"
    ex = examples()[0]
    ctl = Controller(pipeline=pipeline, annotations=AnnotationStore(db), export_dir=tmp_path / "exp")
    out = extract.run(ctl, ex["path"], ex["caption"], 0.5, False, None)
    s = out[Output.TAB]
    out = extract.annotate(ctl, "1", "accept", None, "alice", 0.5, s)
    assert out[Output.STATUS].kind == "ok", out[Output.STATUS]
    out = extract.annotate(ctl, "2", "relabel", "/per/loc/place_of_residence", "alice", 0.5, s)
    assert out[Output.STATUS].kind == "ok", out[Output.STATUS]
    del ctl
    # the "app restarts": a new store and a new controller on the same file
    ctl2 = Controller(pipeline=pipeline, annotations=AnnotationStore(db), export_dir=tmp_path / "exp2")
    assert len(ctl2.annotations.rows()) == 2
    text = open(review.export_annotations(ctl2)[Output.ANNOTATIONS_FILE], encoding="utf-8").read()
    rels = [parse_mnre_line(ln).relation for ln in text.splitlines()]
    assert len(rels) == 2 and rels[1] == "/per/loc/place_of_residence"
    img_id = parse_mnre_line(text.splitlines()[0]).img_id
    assert (db.parent / "images" / img_id).is_file()  # the annotated image is kept for training


def _write_many(db: str, who: str, n: int) -> None:
    st = AnnotationStore(db)
    for i in range(n):
        st.add(cand(HEAD, ORG, "/per/org/member_of", f"{who}_{i}.jpg", 0.5), "accept", annotator=who)


def test_two_writers_at_once_lose_nothing(tmp_path):
    db = str(tmp_path / "c.sqlite3")
    AnnotationStore(db)
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_write_many, args=(db, f"p{i}", 40)) for i in range(2)]
    threads = [threading.Thread(target=_write_many, args=(db, f"t{i}", 40)) for i in range(2)]
    for w in procs + threads:
        w.start()
    for w in procs + threads:
        w.join(120)
    assert all(p.exitcode == 0 for p in procs)
    st = AnnotationStore(db)
    assert st.count() == 160
    assert len(st.current()) == 160  # distinct img_ids: every decision is its own item
    assert len({d.id for d in st.all()}) == 160
