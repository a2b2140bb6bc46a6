"""`mmre extract` output folder and local engine, with a stand-in model (fast, no torch): files, batching,
resume after a crash, torn lines, duplicates, refusals (other model, existing folder, unwritable --out)."""

from __future__ import annotations

import json
import shutil

import pytest
from PIL import Image

from mmre_demo import graph as kg
from mmre_demo.cli import main
from mmre_demo.data.schema import InputError
from mmre_demo.extract import ExtractJob, OutputStore, PipelinePredictor, run_local
from mmre_demo.extract.posts import Post, PostInput
from mmre_demo.extract.predictor import ModelInfo, output_settings
from mmre_demo.extract.records import Records
from mmre_demo.extract.store import FILE_MODE
from tests.support.extract_fakes import FakePredictor, assert_same_outputs, fake_prediction, read_jsonl, write_jsonl

CAPTIONS = ["Ann Smith works at Acme in Paris", "Bob visits Berlin with Carol", "Dora leads Globex",
            "Eve and Frank in Rome", "Gina from Oslo joins Initech", "Hank sees Ivy at Umbrella in Tokyo",
            "Jack REFUSE Kate", "Liam meets Mia in Lima", "Nora at Hooli", "Omar and Pia visit Quito"]


@pytest.fixture
def corpus(tmp_path):
    imgs = tmp_path / "imgs"
    imgs.mkdir()
    for i, color in enumerate(("red", "green")):
        Image.new("RGB", (16, 12), color).save(imgs / f"i{i}.png")
    rows = [{"id": f"p{i}", "caption": c, "image": f"i{i % 2}.png" if i % 3 == 0 else None}
            for i, c in enumerate(CAPTIONS)]
    rows.insert(3, "{bad json")
    rows.insert(6, {"id": "p1", "caption": "duplicate"})
    rows.append({"id": "p99", "caption": "Zoe at Nowhere", "image": "missing.png"})
    return write_jsonl(tmp_path / "in.jsonl", rows), imgs


def _job(corpus, out, **kw):
    f, imgs = corpus
    return ExtractJob(f, out, imgs, progress=False, **{"batch_size": 3, **kw})


def test_files_records_and_the_apps_graph(corpus, tmp_path):
    out = tmp_path / "out"
    fake = FakePredictor()
    summary = run_local(_job(corpus, out), fake)
    posts, triples, errors = (read_jsonl(out / n) for n in ("posts.jsonl", "triples.jsonl", "errors.jsonl"))
    assert [p["line"] for p in posts] == list(range(1, 14))  # one record per input record, in order
    assert [(e["line"], e["stage"]) for e in errors] == [(4, "input"), (7, "input"), (9, "model"), (13, "image")]
    assert "refused by the model" in errors[2]["reason"] and "missing.png" in errors[3]["reason"]
    ok = [p for p in posts if p["status"] == "ok"]
    assert len(ok) == 9 and all("timings_ms" not in p and "device" not in p for p in ok)
    # triples: every non-None pair of each post, fields of PairPrediction.to_dict(), model name + version
    want = []
    for p in ok:
        pred = fake_prediction(p["caption"], p["has_image"])
        want += [(p["id"], r.head.text, r.label, r.tail.text, round(r.probability, 6)) for r in pred.relations()]
    got = [(t["post_id"], t["head"]["text"], t["relation"], t["tail"]["text"], t["probability"]) for t in triples]
    assert got == want
    assert {t["model_version"] for t in triples} == {"v1"} and all(t["image_influence"] == 0.25 for t in triples)
    from mmre_demo.data.images import image_id

    # the app's id of the same picture (one image id everywhere)
    assert ok[0]["image_id"] == image_id(tmp_path / "imgs" / "i0.png") and ok[0]["has_image"]
    assert ok[1]["image_id"] is None
    # the graph is the one the app builds from the same predictions
    g = kg.new_graph()
    for p in ok:
        kg.add_prediction(g, fake_prediction(p["caption"], p["has_image"]), p["image_id"], None,
                          p["image"] and p["image"].split("/")[-1], post_id=p["key"])  # post ids: provenance
    assert (out / "graph.json").read_text() == kg.to_json(g, 0.5)
    assert (out / "graph.graphml").read_text() == kg.to_graphml(g, 0.5)
    assert (out / "triples.csv").read_text() == kg.to_csv(g, 0.5)
    assert summary == json.loads((out / "summary.json").read_text())
    assert (summary["posts"], summary["posts_ok"], summary["errors"], summary["triples"]) == (13, 9, 4, len(triples))
    assert summary["this_run"]["posts"] == 13 and summary["this_run"]["posts_per_s"] > 0
    # batches across posts: 3 records per batch, the failing ones never reach the model
    assert sum(fake.sizes) == 10 and max(fake.sizes) <= 3


def test_crash_then_resume_equals_an_uninterrupted_run(corpus, tmp_path):
    ref, out = tmp_path / "ref", tmp_path / "out"
    run_local(_job(corpus, ref), FakePredictor())
    with pytest.raises(RuntimeError, match="simulated crash"):
        run_local(_job(corpus, out), FakePredictor(fail_after=2))
    done = read_jsonl(out / "posts.jsonl")
    assert 0 < len(done) < 13 and not (out / "graph.json").exists()
    fake = FakePredictor()
    summary = run_local(_job(corpus, out, resume=True), fake)
    assert summary["this_run"]["resumed_after"] == len(done) and summary["this_run"]["posts"] == 13 - len(done)
    assert_same_outputs(ref, out)
    assert (ref / "posts.jsonl").read_bytes() == (out / "posts.jsonl").read_bytes()
    # resuming a finished folder adds nothing
    again = run_local(_job(corpus, out, resume=True), FakePredictor())
    assert again["this_run"]["posts"] == 0 and again["triples"] == summary["triples"]
    assert (ref / "triples.jsonl").read_bytes() == (out / "triples.jsonl").read_bytes()


def test_torn_lines_and_uncommitted_records_are_dropped_on_resume(corpus, tmp_path):
    ref, out = tmp_path / "ref", tmp_path / "out"
    run_local(_job(corpus, ref), FakePredictor())
    with pytest.raises(RuntimeError):
        run_local(_job(corpus, out), FakePredictor(fail_after=1))
    # a kill in the middle of the next commit: its triples and an error written, posts torn mid-line
    ref_triples = read_jsonl(ref / "triples.jsonl")
    done = {p["key"] for p in read_jsonl(out / "posts.jsonl")}
    orphan = next(t for t in ref_triples if t["post_id"] not in done)
    with (out / "triples.jsonl").open("a") as fh:
        fh.write(json.dumps(orphan) + "\n" + json.dumps(orphan)[:40])
    with (out / "errors.jsonl").open("a") as fh:
        fh.write(json.dumps({"key": "p99", "id": "p99", "line": 13, "stage": "image", "reason": "x"}) + "\n")
    with (out / "posts.jsonl").open("a") as fh:
        fh.write('{"key": "p3", "id": "p3", "li')
    run_local(_job(corpus, out, resume=True), FakePredictor())
    assert_same_outputs(ref, out)
    keys = [t["post_id"] + t["head"]["text"] + t["tail"]["text"] for t in read_jsonl(out / "triples.jsonl")]
    assert len(keys) == len(set(keys))  # never a duplicate triple


def test_resume_refuses_another_model_or_other_settings_and_keeps_the_files(corpus, tmp_path):
    out = tmp_path / "out"
    with pytest.raises(RuntimeError):
        run_local(_job(corpus, out), FakePredictor(fail_after=1))
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    with pytest.raises(InputError, match="version v1.*this run loads version v2.*new --out folder"):
        run_local(_job(corpus, out, resume=True), FakePredictor(version="v2"))
    other = FakePredictor()
    other.settings = output_settings(5, 3)
    with pytest.raises(InputError, match="max_pairs=30.*max_pairs=5"):
        run_local(_job(corpus, out, resume=True), other)
    with pytest.raises(InputError, match="already holds an extraction.*--resume"):
        run_local(_job(corpus, out), FakePredictor())
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_folder_with_results_but_no_manifest_is_refused(corpus, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "posts.jsonl").write_text('{"key": "x"}\n')
    with pytest.raises(InputError, match="no manifest.json"):
        run_local(_job(corpus, out, resume=True), FakePredictor())
    assert (out / "posts.jsonl").read_text() == '{"key": "x"}\n'


def test_unwritable_out_is_a_clear_message(corpus, tmp_path):
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    with pytest.raises(InputError, match="cannot create or write this folder"):
        run_local(_job(corpus, blocker / "out"), FakePredictor())


def test_every_file_of_the_folder_has_the_same_permissions(corpus, tmp_path):
    out = tmp_path / "out"
    run_local(_job(corpus, out), FakePredictor())
    modes = {f.name: f.stat().st_mode & 0o777 for f in out.iterdir() if f.is_file()}
    assert {"posts.jsonl", "errors.jsonl", "graph.json", "manifest.json", "summary.json"} <= set(modes)
    assert set(modes.values()) == {FILE_MODE}, modes


def test_commit_never_writes_a_record_twice(tmp_path):
    store = OutputStore.open(tmp_path / "o", ModelInfo("m", "1"), {})
    rec = Records("a", {"key": "a", "status": "ok"}, [{"post_id": "a", "relation": "r"}])
    assert store.commit([rec, rec]) == 1 and store.commit([rec]) == 0
    store.close()
    assert len(read_jsonl(tmp_path / "o" / "triples.jsonl")) == 1 and store.counts.posts == 1


def test_damaged_middle_line_is_refused_on_resume(corpus, tmp_path):
    out = tmp_path / "out"
    run_local(_job(corpus, out), FakePredictor())
    lines = (out / "posts.jsonl").read_text().splitlines(keepends=True)
    lines[2] = "garbage\n"
    (out / "posts.jsonl").write_text("".join(lines))
    with pytest.raises(InputError, match="line 3 is not valid JSON"):
        run_local(_job(corpus, out, resume=True), FakePredictor())


def test_cli_refuses_bad_setups_before_loading_the_model(corpus, tmp_path, capsys):
    f, imgs = corpus
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    assert main(["extract", str(f), "--out", str(blocker / "o"), "--no-progress"]) == 2
    assert "cannot create or write this folder" in capsys.readouterr().err
    csv_in = tmp_path / "in.csv"
    csv_in.write_text("id,text\n1,hi\n")
    assert main(["extract", str(csv_in), "--out", str(tmp_path / "o2"), "--no-progress"]) == 2
    assert "no 'caption' column" in capsys.readouterr().err
    out = tmp_path / "o3"
    OutputStore.open(out, ModelInfo("old model", "0000"), output_settings(30, 3)).close()
    assert main(["extract", str(f), "--out", str(out), "--resume", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "version 0000" in err and "new --out folder" in err and err.count("\n") == 1


class _Pipe:
    """A `Predictor` double: refuses captions with REFUSE in them, one by one."""

    threshold, labels, device = 0.5, ["None"], "cpu"

    def __init__(self):
        self.calls = []

    def predict_many(self, requests):
        self.calls.append(len(requests))
        return [InputError("refused") if "REFUSE" in r.caption else fake_prediction(r.caption) for r in requests]


def test_pipeline_adapter_sends_one_batch_and_isolates_refusals():
    batch = [PostInput(Post(str(i), i, c)) for i, c in enumerate(["Ann at Acme", "Eve REFUSE", "Bob in Rome"])]
    pipe = _Pipe()
    res = PipelinePredictor(pipe, ModelInfo("m", "1")).predict_batch(batch)
    assert pipe.calls == [3]
    assert [r.ok for r in res] == [True, False, True] and res[1].error == "refused"
    assert [r.prediction.caption for r in (res[0], res[2])] == ["Ann at Acme", "Bob in Rome"]


def test_resume_after_copying_keeps_working(corpus, tmp_path):
    """A folder moved elsewhere resumes (no absolute paths of the folder in the manifest are needed)."""
    out = tmp_path / "out"
    with pytest.raises(RuntimeError):
        run_local(_job(corpus, out), FakePredictor(fail_after=1))
    moved = tmp_path / "moved"
    shutil.copytree(out, moved)
    s = run_local(_job(corpus, moved, resume=True), FakePredictor())
    assert s["posts"] == 13


def test_ray_engine_without_ray_says_which_extra_to_install(monkeypatch, corpus, tmp_path, capsys):
    import sys

    from mmre_demo.extract.ray_engine import require_ray

    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError, as when it is not installed
    with pytest.raises(InputError, match=r'needs Ray Data.*pip install -e "\.\[distributed\]"'):
        require_ray()
    f, _ = corpus
    assert main(["extract", str(f), "--out", str(tmp_path / "o"), "--engine", "ray", "--no-progress"]) == 2
    assert "[distributed]" in capsys.readouterr().err and not (tmp_path / "o").exists()


def test_an_extracted_image_has_the_apps_image_id(tmp_path):
    from PIL import Image

    from mmre_demo.data.images import image_id
    from mmre_demo.extract.images import decode
    from mmre_demo.extract.posts import Post

    path = tmp_path / "photo.png"
    Image.new("RGB", (8, 8), "red").save(path)
    ready = decode(Post("1", 1, "a caption", "photo.png", str(path)), path.read_bytes())
    assert ready.image_id == image_id(path)  # the same picture is the same image node in both graphs


def test_the_corpus_graph_keeps_the_text_read_in_the_image():
    from mmre_demo import graph as kg
    from mmre_demo.data.schema import Entity
    from mmre_demo.extract.records import prediction_from_records
    from mmre_demo.grounding import Grounding

    spotify = Entity("Spotify", 0, 7, "ORG")
    read = Grounding(spotify, "SPOTIFY", "SPOTIFY", (1, 2, 3, 4), 0.99, 1.0, "exact")
    post = {"caption": "Spotify rises", "entities": [spotify.to_dict()], "has_image": True, "image_size": [10, 10],
            "groundings": [read.to_dict()]}
    pred = prediction_from_records(post, [])
    assert pred.groundings == [read]
    g = kg.new_graph()
    kg.add_prediction(g, pred, "abc.png")
    assert g.has_edge("image:abc.png", "ORG:Spotify", key="shows text of")
