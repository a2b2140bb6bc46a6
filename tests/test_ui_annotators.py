"""The app's annotator paths that wrote wrong data before, and the review queue driven through the
callbacks: relabel needs an explicit, type-fitting label; a later decision replaces the earlier one in
the graph, the exports and the table; undo; a login when the server requires one."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mmre_demo import graph as kg
from mmre_demo.annotations import AnnotationStore
from mmre_demo.data.labels import RELATIONS, fitting_relations, relation_fits
from mmre_demo.data.mnre import parse_mnre_line
from mmre_demo.ui import extract as extract_tab
from mmre_demo.ui import graph as graph_tab
from mmre_demo.ui import review as review_tab
from mmre_demo.ui.controller import Controller
from mmre_demo.ui.login import AnnotatorLogin, LoginMode
from mmre_demo.ui.outputs import REVIEW, Output
from tests.conftest import app_controller

CAPTION = "Kim Jong Un met Donald Trump in Singapore on Tuesday."


@pytest.fixture()
def ctl(pipeline, tmp_path):
    return app_controller(pipeline, tmp_path)


@pytest.fixture()
def ran(ctl):
    out = extract_tab.run(ctl, None, CAPTION, 0.0, True, None)
    assert out[Output.STATUS].kind != "error", out[Output.STATUS]
    return out


def per_loc_pair(s) -> tuple[str, object]:
    """The 1-based number of the first PER -> LOC pair of the run, and the pair."""
    i, p = next((i, p) for i, p in enumerate(s.prediction.pairs) if (p.head.type, p.tail.type) == ("PER", "LOC"))
    return str(i + 1), p


def status(out):
    return out[Output.STATUS]


def test_the_relabel_list_holds_only_relations_that_fit_the_pair_and_chooses_none(ctl, ran):
    s = ran[Output.TAB]
    number, p = per_loc_pair(s)
    choices = extract_tab.explain(ctl, number, s)[Output.NEW_LABEL]
    assert choices.value is None  # a relabel is always an explicit choice
    labels = [value for _, value in choices.choices]
    assert labels and all(relation_fits(lab, "PER", "LOC") for lab in labels)
    assert "/per/org/member_of" not in labels and "/per/per/parent" not in labels


def test_relabel_without_a_label_stores_nothing(ctl, ran):
    number, _ = per_loc_pair(ran[Output.TAB])
    out = extract_tab.annotate(ctl, number, "relabel", None, "ann", 0.0, ran[Output.TAB])
    assert status(out).kind == "warn" and "choose it from the list" in status(out).message
    assert ctl.annotations.count() == 0


def test_a_type_breaking_relabel_is_refused_with_both_types_named(ctl, ran):
    number, p = per_loc_pair(ran[Output.TAB])
    out = extract_tab.annotate(ctl, number, "relabel", "/per/org/member_of", "ann", 0.0, ran[Output.TAB])
    msg = status(out).message
    assert status(out).kind == "warn" and "needs a PER head and a ORG tail" in msg and f"{p.tail.text} is LOC" in msg
    assert ctl.annotations.count() == 0


def test_a_later_decision_replaces_the_earlier_one_in_graph_exports_and_table(ctl, ran):
    s = ran[Output.TAB]
    number, p = per_loc_pair(s)
    first, second = fitting_relations("PER", "LOC")[:2]
    extract_tab.annotate(ctl, number, "relabel", first, "ann", 0.0, s)
    out = extract_tab.annotate(ctl, number, "relabel", second, "ann", 0.0, s)
    assert "replaces your earlier" in status(out).message
    h, t = kg.node_id(p.head.text, p.head.type), kg.node_id(p.tail.text, p.tail.type)
    assert set(s.graph[h][t]) == {second}  # one edge: the latest decision (the prediction's is gone too)
    files = graph_tab.export_graph(ctl, 0.0, s)[Output.FILES]
    exported = json.loads(Path(next(f for f in files if f.endswith(".json"))).read_text())
    between = [e for e in exported["edges"] if {e["head"], e["tail"]} == {h, t}]
    assert [e["relation"] for e in between] == [second], between
    mnre = Path(review_tab.export_annotations(ctl, s)[Output.ANNOTATIONS_FILE]).read_text().splitlines()
    assert [parse_mnre_line(ln).relation for ln in mnre] == [second]
    rows = out[Output.DECISIONS_DF]
    assert [r[7] for r in rows] == [second]  # the table shows what stands
    assert ctl.annotations.count() == 2  # the store keeps the history


def test_undo_brings_back_the_earlier_decision_then_the_prediction(ctl, ran):
    s = ran[Output.TAB]
    number, p = per_loc_pair(s)
    shown = p.shown(0.0)[0]
    first, second = fitting_relations("PER", "LOC")[:2]
    extract_tab.annotate(ctl, number, "relabel", first, "ann", 0.0, s)
    extract_tab.annotate(ctl, number, "relabel", second, "ann", 0.0, s)
    h, t = kg.node_id(p.head.text, p.head.type), kg.node_id(p.tail.text, p.tail.type)
    out = extract_tab.undo_annotation(ctl, "ann", 0.0, s)
    assert status(out).kind == "ok" and f"{first} (your earlier decision) stands again" in status(out).message
    assert set(s.graph[h][t]) == {first}
    extract_tab.undo_annotation(ctl, "ann", 0.0, s)
    assert set(s.graph[h][t]) == {shown} and s.graph[h][t][shown]["source"] == kg.PREDICTED
    assert ctl.annotations.current() == [] and ctl.annotations.count() == 2
    assert "no decision to undo" in status(extract_tab.undo_annotation(ctl, "ann", 0.0, s)).message


def test_the_decisions_table_shows_the_annotators_own_by_default(ctl, ran):
    s = ran[Output.TAB]
    extract_tab.annotate(ctl, "1", "accept", None, "alice", 0.0, s)
    extract_tab.annotate(ctl, "1", "reject", None, "bob", 0.0, s)
    mine = review_tab.refresh(ctl, "alice", False, s)[Output.DECISIONS_DF]
    assert [r[2] for r in mine] == ["alice"]
    assert sorted(r[2] for r in review_tab.refresh(ctl, "alice", True, s)[Output.DECISIONS_DF]) == ["alice", "bob"]
    agreement = review_tab.refresh(ctl, "alice", False, s)[Output.AGREEMENT_DF]
    assert agreement[0][:4] == ["alice / bob", "all", 1, 0.0]


def test_with_a_login_required_nobody_writes_without_signing_in(pipeline, tmp_path):
    login = AnnotatorLogin(LoginMode.PASSWORD, {"alice": "s3cret"})
    c = Controller(pipeline=pipeline, annotations=AnnotationStore(tmp_path / "a.sqlite3"), export_dir=tmp_path,
                   suggester_factory=None, login=login)
    run = extract_tab.run(c, None, CAPTION, 0.0, True, None)
    s = run[Output.TAB]
    assert run[Output.RELATIONS_DF]  # visitors still see the predictions
    refused = extract_tab.annotate(c, "1", "accept", None, "mallory", 0.0, s)
    assert status(refused).kind == "warn" and "needs a login" in status(refused).message
    assert "wrong password" in status(review_tab.sign_in(c, "alice", "guess", s)).message
    assert s.signed_in is None
    signed = review_tab.sign_in(c, "alice", "s3cret", s)
    assert signed[Output.ANNOTATOR_NAME] == "alice"
    extract_tab.annotate(c, "1", "accept", None, "mallory", 0.0, s)  # the typed name does not count
    assert [d.annotator for d in c.annotations.current()] == ["alice"]


def test_without_the_login_setting_anyone_writes_under_their_name(ctl, ran):
    assert not ctl.login.required
    extract_tab.annotate(ctl, "1", "accept", None, "  carol ", 0.0, ran[Output.TAB])
    assert [d.annotator for d in ctl.annotations.current()] == ["carol"]


def test_on_a_space_the_oauth_name_is_the_annotator(pipeline, tmp_path, monkeypatch):
    monkeypatch.setenv("MMRE_ANNOTATION_LOGIN", "1")
    monkeypatch.setenv("SPACE_ID", "someone/mmre")
    c = Controller(pipeline=pipeline, annotations=AnnotationStore(tmp_path / "a.sqlite3"), export_dir=tmp_path,
                   suggester_factory=None)
    assert c.login.mode is LoginMode.HUGGINGFACE
    s = extract_tab.run(c, None, CAPTION, 0.0, True, None)[Output.TAB]
    assert "Hugging Face" in status(extract_tab.annotate(c, "1", "accept", None, "x", 0.0, s)).message
    extract_tab.annotate(c, "1", "accept", None, "x", 0.0, s, oauth_name="hf-user")
    assert [d.annotator for d in c.annotations.current()] == ["hf-user"]


def test_the_login_setting_reads_its_annotators_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.delenv("SPACE_ID", raising=False)
    monkeypatch.setenv("MMRE_ANNOTATION_LOGIN", "1")
    monkeypatch.setenv("MMRE_ANNOTATORS", "alice:pw1, bob:pw2")
    login = AnnotatorLogin.from_env()
    assert login.mode is LoginMode.PASSWORD and login.sign_in("bob", "pw2") == "bob"
    monkeypatch.setenv("MMRE_ANNOTATION_LOGIN", "off")
    assert not AnnotatorLogin.from_env().required


def test_review_this_tabs_posts_by_keys_with_progress(ctl, ran):
    s = ran[Output.TAB]
    extract_tab.run(ctl, None, "Eileen Collins of NASA poses in Houston.", 0.0, True, s)
    out = review_tab.open_tab_posts(ctl, "rita", s)
    assert status(out).kind == "ok", status(out)
    total = ctl.queues.info(s.review_queue).items
    assert out[Output.REVIEW_PROGRESS].startswith(f"**0 of {total} reviewed")
    assert out[Output.REVIEW_CAPTION] and "Probability" in out[Output.REVIEW_ITEM]
    labels = out[Output.REVIEW_LABELS]
    item = ctl.queues.item(s.review_queue, s.review_position)
    assert labels.value is None and all(relation_fits(v, item.head.type, item.tail.type) for _, v in labels.choices)
    out = review_tab.decide(ctl, "accept", None, "rita", s)
    assert "1 of" in out[Output.REVIEW_PROGRESS]
    item = ctl.queues.item(s.review_queue, s.review_position)
    breaking = next(lab for lab in RELATIONS[1:] if not relation_fits(lab, item.head.type, item.tail.type))
    bad = review_tab.decide(ctl, "relabel", breaking, "rita", s)
    assert status(bad).kind == "warn" and "Choose a relation that fits" in status(bad).message
    out = review_tab.skip(ctl, "rita", s)
    out = review_tab.undo(ctl, "rita", s)
    assert "0 of" in out[Output.REVIEW_PROGRESS]
    assert set(out) <= set(REVIEW)


def test_a_review_queue_needs_a_name(ctl, ran):
    out = review_tab.open_tab_posts(ctl, "", ran[Output.TAB])
    assert status(out).kind == "warn" and "annotator name" in status(out).message
