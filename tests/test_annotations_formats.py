"""`mmre annotations export / import / stats`: JSONL and Label Studio formats, the Label Studio round trip
keeping every standing decision, and bad Label Studio files refused with where and why, storing nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mmre_demo.annotations import AnnotationStore, Candidate
from mmre_demo.annotations.formats import label_studio_config, label_studio_decisions, label_studio_tasks
from mmre_demo.cli import main
from mmre_demo.data.labels import ENTITY_TYPES, RELATIONS
from mmre_demo.data.schema import Entity, InputError

CAP = "Astronaut Eileen Collins of NASA poses in Houston, Texas."
PER = Entity("Eileen Collins", 10, 24, "PER")
ORG = Entity("NASA", 28, 32, "ORG")
LOC = Entity("Houston", 42, 49, "LOC")
CAP2 = "Messi scores for Barcelona 🎉 at Camp Nou"
MESSI = Entity("Messi", 0, 5, "PER")
BARCA = Entity("Barcelona", 17, 26, "ORG")
NOU = Entity("Camp Nou", 32, 40, "LOC")  # after an emoji: offsets are code points


def standing(store: AnnotationStore) -> list[tuple]:
    """What must survive a round trip: caption, image, spans with types, decision, relation, annotator."""
    rows = []
    for d in store.current():
        c = d.candidate
        rows.append((c.caption, c.img_id, (c.head.text, c.head.start, c.head.end, c.head.type),
                     (c.tail.text, c.tail.start, c.tail.end, c.tail.type), c.predicted, d.decision, d.relation,
                     d.annotator))
    return sorted(rows)


@pytest.fixture()
def decided(tmp_path: Path) -> AnnotationStore:
    """Two annotators, every kind of decision, one superseded decision, one image-less caption."""
    st = AnnotationStore(tmp_path / "decided.sqlite3")
    st.add(Candidate(CAP, "img.jpg", PER, ORG, "/per/org/member_of", 0.9), "accept", annotator="ann")
    st.add(Candidate(CAP, "img.jpg", PER, LOC, "/per/loc/place_of_residence", 0.7), "relabel",
           "/per/loc/place_of_birth", annotator="ann")
    st.add(Candidate(CAP, "img.jpg", ORG, LOC, "/org/loc/locate_at", 0.5), "reject", annotator="ann")
    st.add(Candidate(CAP, "img.jpg", ORG, LOC, "/org/loc/locate_at", 0.5), "accept", annotator="ann")  # replaces
    st.add(Candidate(CAP, "img.jpg", PER, ORG, "/per/org/member_of", 0.9), "reject", annotator="bob")
    st.add(Candidate(CAP2, None, MESSI, BARCA, "/per/org/member_of", 0.8), "accept", annotator="bob")
    st.add(Candidate(CAP2, None, MESSI, NOU, "None", 0.2), "relabel", "/per/loc/place_of_residence",
           annotator="bob")
    return st


def _export(db: Path, out: Path, fmt: str, *extra: str) -> int:
    return main(["annotations", "export", "--db", str(db), "--format", fmt, "-o", str(out), *extra])


def test_label_studio_round_trip_keeps_every_standing_decision(decided, tmp_path, capsys):
    out = tmp_path / "ls.json"
    assert _export(decided.path, out, "label-studio") == 0
    tasks = json.loads(out.read_text())
    assert len(tasks) == 2 and tasks[0]["data"]["text"] == CAP and tasks[0]["data"]["img_id"] == "img.jpg"
    assert all("completed_by" not in a for t in tasks for a in t["annotations"])  # Label Studio refuses strangers
    assert list(tasks[0]["meta"]["mmre_demo"]["annotators"].values()) == ["ann", "bob"]
    empty = tmp_path / "empty.sqlite3"
    assert main(["annotations", "import", str(out), "--format", "label-studio", "--db", str(empty)]) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["imported"] == 6
    assert standing(AnnotationStore(empty)) == standing(decided)


def as_label_studio_exports_them(tasks: list[dict]) -> list[dict]:
    """What Label Studio's JSON export makes of imported tasks: new ids (ours kept as `import_id`),
    `completed_by` the importing user's id, predictions listed by id only, the meta unchanged."""
    out = []
    for n, t in enumerate(tasks, start=1):
        anns = [{**{k: v for k, v in a.items() if k != "id"}, "id": 500 + i, "import_id": a["id"], "completed_by": 1}
                for i, a in enumerate(t["annotations"])]
        out.append({"id": 90 + n, "data": t["data"], "meta": t["meta"], "annotations": anns, "predictions": [7]})
    return out


def test_names_and_predictions_survive_label_studio_s_export_through_the_meta(decided):
    tasks = as_label_studio_exports_them(label_studio_tasks(decided.current()))
    back = [(c.head.text, c.tail.text, c.predicted, d, lab, who)
            for c, d, lab, who in label_studio_decisions(json.dumps(tasks), "export.json")]
    assert ("Eileen Collins", "NASA", "/per/org/member_of", "accept", None, "ann") in back
    assert ("Eileen Collins", "NASA", "/per/org/member_of", "reject", None, "bob") in back
    assert ("Messi", "Camp Nou", "None", "relabel", "/per/loc/place_of_residence", "bob") in back


def test_an_annotation_made_in_label_studio_keeps_its_user_beside_the_imported_ones(decided):
    tasks = as_label_studio_exports_them(label_studio_tasks(decided.current("bob")))
    mine = {**tasks[0]["annotations"][0], "id": 777, "completed_by": 3}
    mine.pop("import_id")
    tasks[0]["annotations"].append(mine)
    who = [w for *_, w in label_studio_decisions(json.dumps(tasks), "export.json")]
    assert who.count("label-studio-user-3") == 1 and who.count("bob") == 3


def test_completed_by_is_written_only_on_request(decided):
    tasks = label_studio_tasks(decided.current(), completed_by=True)
    assert [a["completed_by"]["email"] for a in tasks[0]["annotations"]] == ["ann", "bob"]
    assert all("annotators" not in t["meta"]["mmre_demo"] and "completed_by" not in a
               for t in label_studio_tasks(decided.current(), annotator_names=False) for a in t["annotations"])


def test_entities_of_unknown_type_round_trip_as_untyped(tmp_path):
    """MNRE-derived decisions may carry no entity types (they constrain nothing): span label UNTYPED."""
    st = AnnotationStore(tmp_path / "u.sqlite3")
    st.add(Candidate(CAP, None, Entity("NASA", 28, 32, ""), Entity("Houston", 42, 49, ""), "None"), "accept",
           annotator="ann")
    tasks = label_studio_tasks(st.current())
    assert [r["value"]["labels"] for r in tasks[0]["annotations"][0]["result"] if r["type"] == "labels"] == [
        ["UNTYPED"], ["UNTYPED"]]
    back = AnnotationStore(tmp_path / "back.sqlite3")
    back.add_many(label_studio_decisions(json.dumps(tasks), "u.json"), source="test")
    assert standing(back) == standing(st)


def test_a_rejected_pair_is_a_relation_labelled_none(decided):
    tasks = label_studio_tasks(decided.current("bob"))
    relations = [r for r in tasks[0]["annotations"][0]["result"] if r["type"] == "relation"]
    assert [(r["from_id"], r["to_id"], r["labels"]) for r in relations] == [("10-24-PER", "28-32-ORG", ["None"])]
    predicted = [r for r in tasks[0]["predictions"][0]["result"] if r["type"] == "relation"]
    assert predicted[0]["labels"] == ["/per/org/member_of"] and predicted[0]["score"] == 0.9


def test_the_labeling_config_names_every_label_the_export_uses():
    config = label_studio_config()
    for label in (*RELATIONS, *ENTITY_TYPES, "UNTYPED"):
        assert f'value="{label}"' in config
    assert 'name="label" toName="text"' in config and 'value="$text"' in config and 'value="$image"' in config


def test_label_studio_import_without_predictions_reads_relations_as_relabels():
    """A task annotated in Label Studio from scratch: no prediction, so every relation is a relabel of
    "nothing shown" (None), and a "None" relation accepts that nothing holds (predictions listed by id only,
    as some exports write them, are no predictions)."""
    task = {"data": {"text": CAP}, "predictions": [12], "annotations": [{"completed_by": 7, "result": [
        {"id": "a", "type": "labels", "value": {"start": 10, "end": 24, "text": "Eileen Collins", "labels": ["PER"]}},
        {"id": "b", "type": "labels", "value": {"start": 28, "end": 32, "labels": ["ORG"]}},
        {"id": "c", "type": "labels", "value": {"start": 42, "end": 49, "labels": ["LOC"]}},
        {"type": "relation", "from_id": "b", "to_id": "a", "direction": "left", "labels": ["/per/org/member_of"]},
        {"type": "relation", "from_id": "b", "to_id": "c", "labels": ["None"]}]}]}
    got = label_studio_decisions(json.dumps([task]), "t.json")
    assert [(c.head.text, c.tail.text, d, lab, who) for c, d, lab, who in got] == [
        ("Eileen Collins", "NASA", "relabel", "/per/org/member_of", "label-studio-user-7"),
        ("NASA", "Houston", "accept", None, "label-studio-user-7")]


def test_jsonl_export_holds_every_field_and_history_on_request(decided, tmp_path):
    assert _export(decided.path, tmp_path / "d.jsonl", "jsonl") == 0
    rows = [json.loads(ln) for ln in (tmp_path / "d.jsonl").read_text().splitlines()]
    assert len(rows) == 6 and rows[0]["head"] == {"text": "Eileen Collins", "start": 10, "end": 24, "type": "PER"}
    assert {r["decision"] for r in rows} == {"accept", "reject", "relabel"}
    assert _export(decided.path, tmp_path / "h.jsonl", "jsonl", "--history") == 0
    assert len((tmp_path / "h.jsonl").read_text().splitlines()) == 7  # the superseded reject too


def test_mnre_export_of_one_annotator(decided, tmp_path):
    assert _export(decided.path, tmp_path / "m.txt", "mnre", "--annotator", "bob") == 0
    assert len((tmp_path / "m.txt").read_text().splitlines()) == 3


def _ls_file(tmp_path: Path, result: list, text: str = CAP) -> Path:
    f = tmp_path / "bad.json"
    f.write_text(json.dumps([{"id": 41, "data": {"text": text}, "annotations": [{"result": result}]}]))
    return f


SPAN_PER = {"id": "p", "type": "labels", "value": {"start": 10, "end": 24, "text": "Eileen Collins", "labels": ["PER"]}}
SPAN_ORG = {"id": "o", "type": "labels", "value": {"start": 28, "end": 32, "text": "NASA", "labels": ["ORG"]}}
SPAN_LOC = {"id": "l", "type": "labels", "value": {"start": 42, "end": 49, "text": "Houston", "labels": ["LOC"]}}


def _rel(a: str, b: str, label: str) -> dict:
    return {"type": "relation", "from_id": a, "to_id": b, "direction": "right", "labels": [label]}


@pytest.mark.parametrize(("result", "expected"), [
    ([{**SPAN_PER, "value": {**SPAN_PER["value"], "labels": ["PERSON"]}}], "result id p: unknown span label 'PERSON'"),
    ([SPAN_PER, SPAN_ORG, _rel("p", "o", "/per/org/works_for")], "unknown relation label '/per/org/works_for'"),
    ([{**SPAN_LOC, "value": {"start": 42, "end": 90, "labels": ["LOC"]}}],
     "result id l: span [42, 90) is outside the text (length 57)"),
    ([{**SPAN_LOC, "value": {**SPAN_LOC["value"], "text": "Texas"}}], "reads 'Houston' in the text, not 'Texas'"),
    ([SPAN_PER, _rel("p", "zz", "/per/org/member_of")], "result id p->zz: relation to_id 'zz' is not a span region"),
    ([SPAN_PER, SPAN_LOC, _rel("p", "l", "/per/org/member_of")],
     "/per/org/member_of needs a PER head and a ORG tail; Eileen Collins is PER and Houston is LOC"),
], ids=["unknown-entity-label", "unknown-relation", "span-outside-text", "span-text-differs", "missing-span",
        "type-breaking-relation"])
def test_a_bad_label_studio_file_is_refused_with_where_and_why_and_nothing_stored(tmp_path, capsys, result, expected):
    db = tmp_path / "store.sqlite3"
    good = [SPAN_PER, SPAN_ORG, _rel("p", "o", "/per/org/member_of")]
    f = tmp_path / "bad.json"  # a good task first: refusing the second must store neither
    f.write_text(json.dumps([{"id": 40, "data": {"text": CAP}, "annotations": [{"result": good}]},
                             {"id": 41, "data": {"text": CAP}, "annotations": [{"result": result}]}]))
    assert main(["annotations", "import", str(f), "--db", str(db)]) == 2
    err = capsys.readouterr().err
    assert f"{f}: task 2 (id 41)" in err and expected in err
    assert AnnotationStore(db).count() == 0


def test_a_file_that_is_not_json_is_refused_with_its_line(tmp_path, capsys):
    f = tmp_path / "broken.json"
    f.write_text('[\n  {"data": {"text": "x"},\n  oops\n]')
    db = tmp_path / "s.sqlite3"
    assert main(["annotations", "import", str(f), "--db", str(db)]) == 2
    err = capsys.readouterr().err
    assert f"{f}:3:3: not JSON" in err and err.count("\n") == 1
    assert not db.exists() or AnnotationStore(db).count() == 0


def test_two_way_relations_are_refused(tmp_path):
    bi = {**_rel("p", "o", "/per/org/member_of"), "direction": "bi"}
    with pytest.raises(InputError, match="direction 'bi'"):
        label_studio_decisions(_ls_file(tmp_path, [SPAN_PER, SPAN_ORG, bi]).read_text(), "f")


def test_stats_show_counts_and_agreement(decided, capsys):
    assert main(["annotations", "stats", "--db", str(decided.path)]) == 0
    out = capsys.readouterr().out
    assert "6 standing decisions (7 ever made" in out
    assert "Cohen's kappa" in out and "ann / bob" in out
    assert main(["annotations", "stats", "--db", str(decided.path), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["per_annotator"] == {"ann": 3, "bob": 3}
    assert result["agreement"][0][:4] == ["ann / bob", "all", 1, 0.0]  # one common pair: ann accepted, bob rejected


def test_exporting_a_missing_store_is_an_error_not_an_empty_file(tmp_path, capsys):
    assert _export(tmp_path / "nope.sqlite3", tmp_path / "o.json", "label-studio") == 2
    assert "no such annotation store" in capsys.readouterr().err and not (tmp_path / "o.json").exists()


@pytest.mark.parametrize(("meta", "expected"), [
    ({"mmre_demo": {"predicted": {"10-24-PER": ["/per/org/member_of", 0.9]}}},
     "expected 'start-end-TYPE>start-end-TYPE'"),
    ({"mmre_demo": {"predicted": {"10-24-PER>28-32-ORG": ["/per/org/works_for", 0.9]}}}, "unknown relation label"),
    ({"mmre_demo": {"annotators": ["ann"]}}, "meta.mmre_demo.annotators must map annotation ids to names"),
], ids=["pair-key", "relation-label", "annotators-list"])
def test_a_broken_meta_is_refused_with_its_task_and_nothing_stored(tmp_path, capsys, meta, expected):
    db = tmp_path / "store.sqlite3"
    f = tmp_path / "meta.json"
    result = [SPAN_PER, SPAN_ORG, _rel("p", "o", "/per/org/member_of")]
    f.write_text(json.dumps([{"id": 41, "data": {"text": CAP}, "meta": meta, "annotations": [{"result": result}]}]))
    assert main(["annotations", "import", str(f), "--db", str(db)]) == 2
    err = capsys.readouterr().err
    assert f"{f}: task 1 (id 41)" in err and expected in err
    assert AnnotationStore(db).count() == 0
