"""Every app callback as a plain function (no server, no browser), with the real model, and the bad
inputs of the issue: each gives a clear status message, never an exception."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import networkx as nx
import numpy as np
import pytest
from PIL import Image

from mmre_demo.annotations import AnnotationStore
from mmre_demo.data.schema import Entity, InputError
from mmre_demo.ui.callbacks import (Controller, Session, entity_segments, examples, parse_entity_rows,
                                    word_segments)

CAPTION = "Astronaut Eileen Collins of NASA poses at the Johnson Space Center in Houston."


@pytest.fixture(scope="module")
def ctl(pipeline, tmp_path_factory):
    d = tmp_path_factory.mktemp("ui")
    return Controller(pipeline=pipeline, annotations=AnnotationStore(d / "ann.sqlite3"), export_dir=d / "export",
                      suggester_factory=None)


@pytest.fixture(scope="module")
def first(ctl):
    ex = examples()[0]
    return ctl.run(ex["path"], ex["caption"], 0.5, False, None)


def ok(out):
    assert "❌" not in out.get("status", ""), out["status"]
    assert not out.get("status", "").startswith("⚠️ Unknown"), out["status"]
    return out


def warns(out, *words):
    assert set(out) == {"status"}, out.keys()  # nothing else on the page changes
    assert out["status"].startswith("⚠️"), out["status"]
    for w in words:
        assert w.lower() in out["status"].lower(), out["status"]
    return out


# ----------------------------------------------------------------------------------- examples
def test_examples_are_complete():
    ex = examples()
    with_image = [e for e in ex if e["path"]]
    assert len(with_image) >= 6
    for e in with_image:
        Image.open(e["path"]).verify()
        assert e["license"] and len(e["caption"]) > 30


def test_run_fills_every_output(first):
    out = ok(first)
    s = out["session"]
    assert isinstance(s, Session) and s.prediction is not None
    assert any(t for _, t in out["entities_hl"])  # some highlighted entity
    assert out["entities_df"] and out["entities_df"][0][1] in ("PER", "ORG", "LOC", "MISC")
    assert out["relations_df"], "the astronaut example has relations above 0.5"
    row = out["relations_df"][0]
    assert row[0] == 1
    assert 0.5 <= row[4] <= 1 and "None" not in row[2]
    assert row[6] == "no image" or -1 <= float(row[6]) <= 1  # the image's measured influence
    assert out["pair"]["choices"] and out["pair"]["value"] is not None
    assert out["evidence_img"] is not None and out["evidence_img"].size[0] > 300
    assert any(isinstance(w, float) for _, w in out["words"])
    assert out["concepts"] and all(0 <= v <= 1 for v in out["concepts"].values())
    assert out["graph"].data and out["node"]["choices"]
    assert isinstance(s.graph, nx.MultiDiGraph) and any(n.startswith("image:") for n in s.graph)
    # the image's pooled vision feature rides on the graph, for the text+image KG embedding
    images = [d for n, d in s.graph.nodes(data=True) if d["kind"] == "image"]
    feature = images[0].get("image_feature")
    assert feature is not None and feature.shape == (s.prediction.image_feature.shape[0],) and np.abs(feature).sum() > 0
    from mmre_demo.kge.datasets import dataset_from_graph

    ds = dataset_from_graph(s.graph)
    assert any(info.image_feature is not None for info in ds.entity_info.values())


def test_every_example_runs(ctl):
    s = None
    for e in examples():
        out = ok(ctl.run(e["path"], e["caption"], 0.5, False, s))
        s = out["session"]
        if e["path"] is None:
            assert "caption alone" in out["status"]
    assert s.requests == len(examples())
    # accumulation: the graph holds the entities of every submission
    assert len([n for n, d in s.graph.nodes(data=True) if d["kind"] == "image"]) == sum(1 for e in examples() if e["path"])


def test_toggle_none_and_threshold(ctl, first):
    s = first["session"]
    hidden = ok(ctl.refilter(0.5, False, s))
    shown = ok(ctl.refilter(0.5, True, s))
    assert len(shown["relations_df"]) > len(hidden["relations_df"])
    assert any(r[2] == "None" for r in shown["relations_df"])
    strict = ok(ctl.refilter(0.99, False, s))
    assert len(strict["relations_df"]) <= len(hidden["relations_df"])
    assert all(r[4] >= 0.99 for r in strict["relations_df"])


def test_explain_pair(ctl, first):
    s = first["session"]
    out = ok(ctl.explain("2", s))
    assert out["evidence_img"] is not None and "probability" in out["evidence_md"]
    assert s.pair_index == 1
    warns(ctl.explain("999", s), "does not exist")
    warns(ctl.explain("abc", s), "unknown pair")


def test_rerun_with_edited_entities(ctl):
    cap = "Barack Obama met Angela Merkel in Berlin."
    rows = [["Barack Obama", "PER", 0, 12], ["Angela Merkel", "per", "", ""], ["Berlin", "LOC", None, None],
            ["", "ORG", None, None]]  # empty text = removed row
    out = ok(ctl.rerun(None, cap, rows, 0.0, True, None))
    assert [r[0] for r in out["entities_df"]] == ["Barack Obama", "Angela Merkel", "Berlin"]
    assert out["entities_df"][1][1] == "PER" and out["entities_df"][1][2] == 17
    assert len(out["relations_df"]) == 3  # one row per entity pair
    # retype: Berlin as an ORG
    rows2 = [r[:] for r in out["entities_df"]]
    rows2[2][1] = "ORG"
    out2 = ok(ctl.rerun(None, cap, rows2, 0.0, True, out["session"]))
    assert "ORG:Berlin" in out2["session"].graph


@pytest.mark.parametrize("rows,words", [
    ([["Obama", "PER", 0, 500]], ["outside the caption"]),
    ([["Barack Obama", "PER", 0, 12], ["Obama", "PER", 7, 12]], ["overlap"]),
    ([["Barack", "PER", 0, 12]], ["reads"]),
    ([["Putin", "PER", None, None]], ["does not occur"]),
    ([["Berlin", "CITY", None, None]], ["not one of"]),
    ([["Berlin", "LOC", "x", "y"]], ["whole numbers"]),
])
def test_bad_entity_spans(ctl, rows, words):
    warns(ctl.rerun(None, "Barack Obama met Angela Merkel in Berlin.", rows, 0.5, False, None), *words)


def test_parse_entity_rows_accepts_dataframes():
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame([["Berlin", "LOC", np.nan, np.nan]], columns=["text", "type", "start", "end"])
    assert parse_entity_rows("in Berlin", df) == [Entity("Berlin", 3, 9, "LOC")]


# ----------------------------------------------------------------------------------- bad input
def _png_with_size(path: Path, w: int, h: int) -> Path:
    """A tiny PNG whose header claims w x h pixels (a decompression-bomb stand-in)."""
    def chunk(tag, data):
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 4)) +
                     chunk(b"IEND", b""))
    return path


def test_bad_images(ctl, tmp_path):
    txt = tmp_path / "notes.txt"
    txt.write_text("not an image")
    warns(ctl.run(str(txt), CAPTION, 0.5, False, None), "not an image")
    warns(ctl.preview(str(txt)), "not an image")
    good = Path(examples()[0]["path"]).read_bytes()
    trunc = tmp_path / "trunc.jpg"
    trunc.write_bytes(good[: len(good) // 3])
    out = ctl.run(str(trunc), CAPTION, 0.5, False, None)
    assert "❌" not in out["status"]  # either read (PIL fills the rest) or refused with a message
    huge = _png_with_size(tmp_path / "huge.png", 20000, 20000)
    warns(ctl.run(str(huge), CAPTION, 0.5, False, None), "huge.png", "too large", "limit")
    warns(ctl.preview(str(huge)), "limit")


@pytest.mark.parametrize("mode", ["L", "RGBA", "CMYK", "P", "I;16", "1"])
def test_odd_image_modes(ctl, tmp_path, mode):
    img = Image.open(examples()[0]["path"]).convert("RGB").resize((120, 90))
    img = img.convert(mode) if mode not in ("I;16",) else Image.fromarray(
        (np.asarray(img.convert("L"), dtype=np.uint16) * 250), mode="I;16")
    path = tmp_path / f"img_{mode.replace(';', '')}.{'jpg' if mode == 'CMYK' else 'tiff' if mode == 'I;16' else 'png'}"
    img.save(path)
    out = ok(ctl.run(str(path), CAPTION, 0.5, False, None))
    assert out["evidence_img"] is not None
    assert ok(ctl.preview(str(path)))["preview"].mode == "RGB"


def test_animated_gif(ctl, tmp_path):
    frames = [Image.new("RGB", (64, 48), c) for c in ("red", "green", "blue")]
    path = tmp_path / "anim.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100, loop=0)
    ok(ctl.run(str(path), CAPTION, 0.5, False, None))


def test_captions(ctl):
    warns(ctl.run(None, "", 0.5, False, None), "empty")
    warns(ctl.run(None, "   \n ", 0.5, False, None), "empty")
    warns(ctl.run(None, "Paris " * 834, 0.5, False, None), "5004 characters", "limit")
    out = ok(ctl.run(None, "the weather is nice today and nothing happened", 0.5, False, None))
    assert out["relations_df"] == [] and "add them in the entity table" in out["status"]


def test_unicode_captions(ctl):
    for cap in ("🚀 Elon Musk of SpaceX launched from Florida 🎉🔥",
                "Владимир Путин встретился с Ангелой Меркель в Москве.",
                "التقى محمد بن سلمان مع دونالد ترامب في الرياض",
                "東京で安倍晋三がトヨタの社長と会った。"):
        ok(ctl.run(None, cap, 0.5, False, None))
    cap = "🚀 Elon Musk of SpaceX 🎉"
    out = ok(ctl.rerun(None, cap, [["Elon Musk", "PER", None, None], ["SpaceX", "ORG", None, None]], 0.0, True, None))
    assert len(out["relations_df"]) == 1  # one row per entity pair
    rtl = "التقى محمد مع دونالد ترامب"
    out = ok(ctl.rerun(None, rtl, [["محمد", "PER", None, None], ["دونالد ترامب", "PER", None, None]], 0.0, True, None))
    assert "".join(t for t, _ in out["entities_hl"]) == rtl


def test_thirty_entities_are_capped(ctl):
    names = [f"Person{chr(65 + i // 26)}{chr(65 + i % 26)}" for i in range(30)]
    cap = " and ".join(names) + " met."
    rows = [[n, "PER", None, None] for n in names]
    out = ok(ctl.rerun(None, cap, rows, 0.0, True, None))
    assert "435 entity pairs" in out["status"] and "15 pairs" in out["status"]
    assert len(out["session"].prediction.pairs) == 15


def test_rendering_helpers():
    segs = entity_segments("Eileen of NASA", [Entity("NASA", 10, 14, "ORG"), Entity("Eileen", 0, 6, "PER")])
    assert segs == [("Eileen", "PER"), (" of ", None), ("NASA", "ORG")]
    assert word_segments("x", []) == [("x", None)]


# ----------------------------------------------------------------------------------- graph, export
def test_graph_accumulates_clears_and_exports(ctl, tmp_path):
    ex = examples()
    out = ok(ctl.run(ex[0]["path"], ex[0]["caption"], 0.5, False, None))
    s = out["session"]
    n1 = s.graph.number_of_nodes()
    out = ok(ctl.run(ex[0]["path"], ex[0]["caption"], 0.5, False, s))
    assert s.graph.number_of_nodes() == n1  # same entity text + type = same node
    out = ok(ctl.run(ex[1]["path"], ex[1]["caption"], 0.5, False, s))
    assert s.graph.number_of_nodes() > n1
    files = ok(ctl.export_graph(0.5, s))["files"]
    assert sorted(Path(f).suffix for f in files) == [".csv", ".graphml", ".json"]
    assert all(Path(f).stat().st_size > 0 for f in files)
    out = ok(ctl.clear_graph(0.5, s))
    assert s.graph.number_of_nodes() == 0 and out["node"]["choices"] == []


def test_annotate_updates_graph_and_store(ctl, first):
    s = first["session"]
    rel_pairs = [i for i, p in enumerate(s.prediction.pairs) if p.is_relation]
    i = rel_pairs[0]
    p = s.prediction.pairs[i]
    out = ok(ctl.annotate(str(i + 1), "relabel", "/per/misc/present_in", "bob", 0.5, s))
    h, t = f"{p.head.type}:{p.head.text}", f"{p.tail.type}:{p.tail.text}"
    assert s.graph.edges[h, t, "/per/misc/present_in"]["source"] == "annotated"
    assert not s.graph.has_edge(h, t, key=p.label)
    assert out["decisions_df"][0][6] == "relabel"
    warns(ctl.annotate(str(i + 1), "relabel", None, "bob", 0.5, s), "relabel needs")
    warns(ctl.annotate(None, "accept", None, "bob", 0.5, s), "choose a pair")
    warns(ctl.annotate("1", "approve", None, "bob", 0.5, s), "accept, reject or relabel")
    assert Path(ok(ctl.export_annotations())["annotations_file"]).read_text().strip()


def test_suggestions_guarded_when_kge_missing(ctl, first):
    s = first["session"]
    node = next(n for n, d in s.graph.nodes(data=True) if d["kind"] == "entity")
    out = ok(ctl.suggest(node, 5, 0.5, s))
    assert "not available" in out["status"] and out["suggestions_df"] == []
    warns(ctl.refresh_embedding(s), "not available")
    warns(ctl.suggest(None, 5, 0.5, s), "choose a node")
    warns(ctl.add_suggestion("1", 0.5, s), "no suggestions")


def test_suggested_links_with_the_kge(pipeline, tmp_path):
    suggest = pytest.importorskip("mmre_demo.kge.suggest", reason="mmre_demo.kge not installed")
    ctl = Controller(pipeline=pipeline, annotations=AnnotationStore(tmp_path / "a.sqlite3"), export_dir=tmp_path,
                     suggester_factory=lambda: suggest.LinkSuggester(features="none", time_budget_s=5, max_epochs=30))
    s = None
    for e in examples()[:4]:
        s = ok(ctl.run(e["path"], e["caption"], 0.0, False, s))["session"]
    node = next(n for n in s.graph if n.startswith("PER:"))
    ok(ctl.refresh_embedding(s))
    assert ctl.suggester(s).wait(120)
    out = ok(ctl.suggest(node, 3, 0.0, s))
    assert out["suggestions_df"], out["status"]
    assert any(tr.name == "suggested link" for tr in out["graph"].data)
    before = len([1 for *_, d in s.graph.edges(data=True) if d.get("source") == "suggested"])
    ok(ctl.add_suggestion("1", 0.0, s))
    after = len([1 for *_, d in s.graph.edges(data=True) if d.get("source") == "suggested"])
    assert after == before + 1


def test_unexpected_errors_become_messages(ctl):
    class Broken:
        device = "cpu"

        def detect_entities(self, caption):
            raise RuntimeError("boom")

    c = Controller(pipeline=Broken(), annotations=ctl.annotations, export_dir=ctl.export_dir, suggester_factory=None)
    out = c.run(None, CAPTION, 0.5, False, None)
    assert set(out) == {"status"} and out["status"].startswith("❌") and "still running" in out["status"]
    assert "Traceback" not in out["status"]


def test_device_is_shown(ctl, monkeypatch):
    assert "`cpu`" in ctl.device_text()
    monkeypatch.setenv("MMRE_DEVICE", "cpu")
    assert "MMRE_DEVICE=cpu" in ctl.device_text()


def test_input_error_from_loader():
    from mmre_demo.ui.callbacks import PipelineLoader

    def fail():
        raise OSError("weights missing")
    loader = PipelineLoader(fail)
    with pytest.raises(InputError, match="could not be loaded"):
        loader.get(10)


def test_requirements_match_pyproject():
    import re
    import tomllib

    root = Path(__file__).resolve().parents[1]
    deps = tomllib.loads((root / "pyproject.toml").read_text())["project"]["dependencies"]
    reqs = [ln.strip() for ln in (root / "requirements.txt").read_text().splitlines()
            if ln.strip() and not ln.startswith("#")]
    norm = lambda s: re.sub(r"[-_.]+", "-", s.lower())  # noqa: E731
    assert sorted(map(norm, reqs)) == sorted(map(norm, deps))


def test_app_launch_settings(monkeypatch):
    """app.py honours GRADIO_SERVER_NAME / GRADIO_SERVER_PORT and defaults to 127.0.0.1:7860, offline."""
    src = (Path(__file__).resolve().parents[1] / "app.py").read_text()
    assert 'os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1")' in src
    assert 'os.environ.get("GRADIO_SERVER_PORT", "7860")' in src
    assert 'setdefault("GRADIO_ANALYTICS_ENABLED", "False")' in src and 'setdefault("HF_HUB_OFFLINE", "1")' in src
