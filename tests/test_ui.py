"""Every app callback as a plain function (no server, no browser), with the real model, and the bad
inputs of the issue: each gives a clear status message, never an exception."""

from __future__ import annotations

import copy
import struct
import zlib
from pathlib import Path

import networkx as nx
import numpy as np
import pytest
from PIL import Image

from mmre_demo import graph as kg
from mmre_demo.annotations import AnnotationStore
from mmre_demo.data.labels import fitting_relations
from mmre_demo.data.schema import Entity, InputError
from mmre_demo.ui import extract as extract_tab
from mmre_demo.ui import graph as graph_tab
from mmre_demo.ui import layout
from mmre_demo.ui import review as review_tab
from mmre_demo.ui.controller import Controller, PipelineLoader, examples
from mmre_demo.ui.outputs import (
    EVIDENCE,
    EXTRACTION,
    FROM_IMAGE,
    GRAPH_PANEL,
    GRAPH_TAB,
    PREVIEW,
    Choices,
    Output,
    Status,
    callback,
    hide_server_paths,
)
from mmre_demo.ui.render import entity_segments, word_segments
from mmre_demo.ui.state import TabState
from tests.conftest import app_controller

CAPTION = "Astronaut Eileen Collins of NASA poses at the Johnson Space Center in Houston."


@pytest.fixture(scope="module")
def ctl(pipeline, tmp_path_factory):
    d = tmp_path_factory.mktemp("ui")
    return app_controller(pipeline, d)


@pytest.fixture(scope="module")
def _first_run(ctl):
    ex = examples()[0]
    return extract_tab.run(ctl, ex["path"], ex["caption"], 0.5, False, None)


@pytest.fixture()
def first(_first_run):
    """The first example's outputs with a session of its own: a test may change it freely."""
    return {**_first_run, Output.TAB: copy.deepcopy(_first_run[Output.TAB])}


def ok(out):
    status = out.get(Output.STATUS)
    assert status is None or status.kind != "error", status
    assert status is None or not status.message.startswith("Unknown"), status
    return out


def warns(out, *words):
    assert set(out) == {Output.STATUS}, out.keys()  # nothing else on the page changes
    status = out[Output.STATUS]
    assert status.kind == "warn", status
    for w in words:
        assert w.lower() in status.message.lower(), status
    return out


# ----------------------------------------------------------------------------------- examples
def test_examples_are_complete():
    ex = examples()
    with_image = [e for e in ex if e["path"]]
    assert len(with_image) >= 6
    for e in with_image:
        Image.open(e["path"]).verify()
        assert e["license"] and len(e["caption"]) > 30


def test_run_fills_every_extraction_output(first):
    out = ok(first)
    # the graph and its search box wait for the Graph tab to open (test below)
    assert set(out) == set(EXTRACTION) - {Output.GRAPH, Output.NODE} and out[Output.STATUS].kind == "ok"
    assert isinstance(out[Output.TAB], TabState) and out[Output.TAB].prediction is not None
    assert any(t for _, t in out[Output.ENTITIES_HL])  # some highlighted entity
    assert out[Output.ENTITIES_DF] and out[Output.ENTITIES_DF][0][1] in ("PER", "ORG", "LOC", "MISC")
    assert out[Output.EVIDENCE_IMG] is not None and out[Output.EVIDENCE_IMG].size[0] > 300
    assert any(isinstance(w, float) for _, w in out[Output.WORDS])
    assert out[Output.CONCEPTS] and all(0 <= v <= 1 for v in out[Output.CONCEPTS].values())


def test_the_graph_is_drawn_while_its_tab_is_open(ctl):
    """Extracting with another tab open leaves the drawing alone; opening the Graph tab draws what the
    extraction added; while it is open each extraction redraws it; leaving it stops that again."""
    first, second = examples()[:2]
    s = ok(extract_tab.run(ctl, None, first["caption"], 0.5, False, None))[Output.TAB]
    opened = ok(graph_tab.show_graph(ctl, 0.5, s))
    drawn = {str(n) for tr in opened[Output.GRAPH].data for n in (tr.customdata if tr.customdata is not None else [])}
    assert drawn and drawn <= set(s.graph) and opened[Output.NODE].choices
    out = ok(extract_tab.run(ctl, second["path"], second["caption"], 0.5, False, s, read_text=False))
    assert out[Output.GRAPH].data and isinstance(out[Output.NODE], Choices)
    redrawn = {str(n) for tr in out[Output.GRAPH].data for n in (tr.customdata if tr.customdata is not None else [])}
    assert drawn < redrawn  # the second post's entities (and its image) joined the drawing
    ok(graph_tab.leave_graph(ctl, s))
    out = ok(extract_tab.run(ctl, None, first["caption"], 0.5, False, s))
    assert Output.GRAPH not in out and Output.NODE not in out


def test_relation_rows_are_numbered_by_pair_and_match_the_pair_choices(first):
    rows, pairs = first[Output.RELATIONS_DF], first[Output.TAB].prediction.pairs
    assert rows, "the astronaut example has relations above 0.5"
    for number, head, label, tail, probability, _alternatives, influence in rows:
        pair = pairs[number - 1]  # the # column is the pair's 1-based number
        assert (label, round(pair.probability, 3)) == (pair.label, probability)
        assert head.startswith(pair.head.text) and tail.startswith(pair.tail.text)
        assert 0.5 <= probability <= 1 and label != "None"
        assert -1 <= float(influence) <= 1  # an image was given: its measured influence
    assert [str(r[0]) for r in rows] == [value for _, value in first[Output.PAIR].choices]
    assert first[Output.PAIR].value == str(rows[0][0])  # the first shown pair is explained


def test_run_adds_the_image_with_its_feature_to_the_graph(first):
    s = first[Output.TAB]
    assert isinstance(s.graph, nx.MultiDiGraph)
    images = [(n, d) for n, d in s.graph.nodes(data=True) if d["kind"] == "image"]
    assert len(images) == 1 and images[0][0] == f"image:{s.image_id}"
    # the image's pooled vision feature rides on the graph, for the text+image KG embedding
    feature = images[0][1].get("image_feature")
    assert feature is not None and feature.shape == (s.prediction.image_feature.shape[0],) and np.abs(feature).sum() > 0
    from mmre_demo.kge.datasets import dataset_from_graph

    ds = dataset_from_graph(s.graph)
    assert any(info.image_feature is not None for info in ds.entity_info.values())


def test_graph_and_annotation_store_name_an_upload_alike(ctl, first):
    s = first[Output.TAB]
    assert ctl.annotations.store_image(s.image_path) == s.image_id


def test_every_example_runs(ctl):
    s = None
    for e in examples():
        out = ok(extract_tab.run(ctl, e["path"], e["caption"], 0.5, False, s))
        s = out[Output.TAB]
        if e["path"] is None:
            assert "caption alone" in out[Output.STATUS].message
    assert s.requests == len(examples())
    # accumulation: the graph holds the entities of every submission
    images = [n for n, d in s.graph.nodes(data=True) if d["kind"] == "image"]
    assert len(images) == sum(1 for e in examples() if e["path"])


def test_toggle_none_and_threshold(ctl, first):
    s = first[Output.TAB]
    hidden = ok(extract_tab.refilter(ctl, 0.5, False, s))
    shown = ok(extract_tab.refilter(ctl, 0.5, True, s))
    assert len(shown[Output.RELATIONS_DF]) > len(hidden[Output.RELATIONS_DF])
    assert any(r[2] == "None" for r in shown[Output.RELATIONS_DF])
    strict = ok(extract_tab.refilter(ctl, 0.99, False, s))
    assert len(strict[Output.RELATIONS_DF]) <= len(hidden[Output.RELATIONS_DF])
    assert all(r[4] >= 0.99 for r in strict[Output.RELATIONS_DF])


def test_explain_pair(ctl, first):
    s = first[Output.TAB]
    out = ok(extract_tab.explain(ctl, "2", s))
    assert out[Output.EVIDENCE_IMG] is not None and "probability" in out[Output.EVIDENCE_MD]
    assert s.pair_index == 1
    assert set(out) == {Output.TAB, Output.EVIDENCE_IMG, Output.EVIDENCE_MD, Output.WORDS, Output.NEW_LABEL}


@pytest.mark.parametrize("pair, words", [("999", ["#999 does not exist"]), ("abc", ["unknown pair"]),
                                         ("#", ["unknown pair"])])
def test_explain_refuses_unknown_pairs(ctl, first, pair, words):
    warns(extract_tab.explain(ctl, pair, first[Output.TAB]), *words)


@pytest.mark.parametrize("pair, words", [("999", ["#999 does not exist"]), ("abc", ["unknown pair"])])
def test_annotate_refuses_unknown_pairs_like_explain(ctl, first, pair, words):
    warns(extract_tab.annotate(ctl, pair, "accept", None, "bob", 0.5, first[Output.TAB]), *words)


def test_rerun_with_edited_entities(ctl):
    cap = "Barack Obama met Angela Merkel in Berlin."
    rows = [["Barack Obama", "PER", 0, 12], ["Angela Merkel", "per", "", ""], ["Berlin", "LOC", None, None],
            ["", "ORG", None, None]]  # empty text = removed row
    out = ok(extract_tab.rerun(ctl, None, cap, rows, 0.0, True, None))
    assert [r[0] for r in out[Output.ENTITIES_DF]] == ["Barack Obama", "Angela Merkel", "Berlin"]
    assert out[Output.ENTITIES_DF][1][1] == "PER" and out[Output.ENTITIES_DF][1][2] == 17
    assert len(out[Output.RELATIONS_DF]) == 3  # one row per entity pair
    # retype: Berlin as an ORG
    rows2 = [r[:] for r in out[Output.ENTITIES_DF]]
    rows2[2][1] = "ORG"
    out2 = ok(extract_tab.rerun(ctl, None, cap, rows2, 0.0, True, out[Output.TAB]))
    assert "ORG:Berlin" in out2[Output.TAB].graph


@pytest.mark.parametrize("rows,words", [
    ([["Obama", "PER", 0, 500]], ["outside the caption"]),
    ([["Barack Obama", "PER", 0, 12], ["Obama", "PER", 7, 12]], ["overlap"]),
    ([["Barack", "PER", 0, 12]], ["reads"]),
    ([["Putin", "PER", None, None]], ["does not occur"]),
    ([["Berlin", "CITY", None, None]], ["not one of"]),
    ([["Berlin", "LOC", "x", "y"]], ["whole numbers"]),
])
def test_bad_entity_spans(ctl, rows, words):
    warns(extract_tab.rerun(ctl, None, "Barack Obama met Angela Merkel in Berlin.", rows, 0.5, False, None), *words)


def test_parse_entity_rows_accepts_dataframes():
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame([["Berlin", "LOC", np.nan, np.nan]], columns=["text", "type", "start", "end"])
    assert extract_tab.parse_entity_rows("in Berlin", df) == [Entity("Berlin", 3, 9, "LOC")]


@pytest.mark.parametrize("text, index", [("2", 1), ("#2", 1), ("#2 Eileen → NASA: member_of (0.90)", 1), (3, 2)])
def test_pair_number_reads_the_number_of_the_hash_column(text, index):
    assert extract_tab.pair_number(text, 3) == index


# ----------------------------------------------------------------------------------- bad input
def _png_with_size(path: Path, w: int, h: int) -> Path:
    """A tiny PNG whose header claims w x h pixels (a decompression-bomb stand-in)."""
    def chunk(tag, data):
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 4)) +
                     chunk(b"IEND", b""))
    return path


def test_a_non_image_upload_is_refused_by_run_and_preview(ctl, tmp_path):
    txt = tmp_path / "notes.txt"
    txt.write_text("not an image")
    warns(extract_tab.run(ctl, str(txt), CAPTION, 0.5, False, None), "not an image")
    warns(extract_tab.preview(ctl, str(txt)), "not an image")


def test_a_truncated_jpeg_is_refused_as_truncated(ctl, tmp_path):
    good = Path(examples()[0]["path"]).read_bytes()
    trunc = tmp_path / "trunc.jpg"
    trunc.write_bytes(good[: len(good) // 3])
    warns(extract_tab.run(ctl, str(trunc), CAPTION, 0.5, False, None), "trunc.jpg", "corrupt or truncated")


def test_a_decompression_bomb_is_refused_before_decoding(ctl, tmp_path):
    huge = _png_with_size(tmp_path / "huge.png", 20000, 20000)
    warns(extract_tab.run(ctl, str(huge), CAPTION, 0.5, False, None), "huge.png", "too large", "limit")
    warns(extract_tab.preview(ctl, str(huge)), "limit")


@pytest.mark.parametrize("mode", ["L", "RGBA", "CMYK", "P", "I;16", "1"])
def test_odd_image_modes(ctl, tmp_path, mode):
    img = Image.open(examples()[0]["path"]).convert("RGB").resize((120, 90))
    img = img.convert(mode) if mode not in ("I;16",) else Image.fromarray(
        (np.asarray(img.convert("L"), dtype=np.uint16) * 250), mode="I;16")
    path = tmp_path / f"img_{mode.replace(';', '')}.{'jpg' if mode == 'CMYK' else 'tiff' if mode == 'I;16' else 'png'}"
    img.save(path)
    out = ok(extract_tab.run(ctl, str(path), CAPTION, 0.5, False, None))
    assert out[Output.EVIDENCE_IMG] is not None
    assert ok(extract_tab.preview(ctl, str(path)))[Output.PREVIEW].mode == "RGB"


def test_animated_gif(ctl, tmp_path):
    frames = [Image.new("RGB", (64, 48), c) for c in ("red", "green", "blue")]
    path = tmp_path / "anim.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100, loop=0)
    ok(extract_tab.run(ctl, str(path), CAPTION, 0.5, False, None))


@pytest.mark.parametrize("caption, words", [("", ["empty"]), ("   \n ", ["empty"]),
                                            ("Paris " * 834, ["5004 characters", "limit"])])
def test_empty_and_over_long_captions_are_refused(ctl, caption, words):
    warns(extract_tab.run(ctl, None, caption, 0.5, False, None), *words)


def test_a_caption_without_entities_says_how_to_add_them(ctl):
    out = ok(extract_tab.run(ctl, None, "the weather is nice today and nothing happened", 0.5, False, None))
    assert out[Output.RELATIONS_DF] == [] and out[Output.STATUS].kind == "warn"
    assert "add them in the entity table" in out[Output.STATUS].message


def test_unicode_captions(ctl):
    for cap in ("🚀 Elon Musk of SpaceX launched from Florida 🎉🔥",
                "Владимир Путин встретился с Ангелой Меркель в Москве.",
                "التقى محمد بن سلمان مع دونالد ترامب في الرياض",
                "東京で安倍晋三がトヨタの社長と会った。"):
        ok(extract_tab.run(ctl, None, cap, 0.5, False, None))
    cap = "🚀 Elon Musk of SpaceX 🎉"
    rows = [["Elon Musk", "PER", None, None], ["SpaceX", "ORG", None, None]]
    out = ok(extract_tab.rerun(ctl, None, cap, rows, 0.0, True, None))
    assert len(out[Output.RELATIONS_DF]) == 1  # one row per entity pair
    rtl = "التقى محمد مع دونالد ترامب"
    rows = [["محمد", "PER", None, None], ["دونالد ترامب", "PER", None, None]]
    out = ok(extract_tab.rerun(ctl, None, rtl, rows, 0.0, True, None))
    assert "".join(t for t, _ in out[Output.ENTITIES_HL]) == rtl


def test_thirty_entities_are_capped(ctl):
    names = [f"Person{chr(65 + i // 26)}{chr(65 + i % 26)}" for i in range(30)]
    cap = " and ".join(names) + " met."
    rows = [[n, "PER", None, None] for n in names]
    out = ok(extract_tab.rerun(ctl, None, cap, rows, 0.0, True, None))
    assert "435 entity pairs" in out[Output.STATUS].message and "15 pairs" in out[Output.STATUS].message
    assert len(out[Output.TAB].prediction.pairs) == 15


def test_entity_segments_cover_the_caption_in_order():
    segs = entity_segments("Eileen of NASA", [Entity("NASA", 10, 14, "ORG"), Entity("Eileen", 0, 6, "PER")])
    assert segs == [("Eileen", "PER"), (" of ", None), ("NASA", "ORG")]


def test_word_segments_without_weights_are_the_plain_caption():
    assert word_segments("x", []) == [("x", None)]


# ----------------------------------------------------------------------------------- graph, export
def test_graph_accumulates_clears_and_exports(ctl, tmp_path):
    ex = examples()
    out = ok(extract_tab.run(ctl, ex[0]["path"], ex[0]["caption"], 0.5, False, None))
    s = out[Output.TAB]
    n1 = s.graph.number_of_nodes()
    out = ok(extract_tab.run(ctl, ex[0]["path"], ex[0]["caption"], 0.5, False, s))
    assert s.graph.number_of_nodes() == n1  # same entity text + type = same node
    out = ok(extract_tab.run(ctl, ex[1]["path"], ex[1]["caption"], 0.5, False, s))
    assert s.graph.number_of_nodes() > n1
    files = ok(graph_tab.export_graph(ctl, 0.5, s))[Output.FILES]
    assert sorted(Path(f).suffix for f in files) == [".csv", ".graphml", ".json", ".ttl", ".zip"]
    assert all(Path(f).stat().st_size > 0 for f in files)
    out = ok(graph_tab.clear_graph(ctl, 0.5, s))
    assert s.graph.number_of_nodes() == 0 and out[Output.NODE].choices == []


def test_annotate_updates_graph_and_store(ctl, first):
    s = first[Output.TAB]
    threshold = s.prediction.threshold  # the slider's start: the relation the annotator saw
    i = next(i for i, p in enumerate(s.prediction.pairs)  # a shown relation that another relation could replace
             if p.is_shown(threshold) and len(fitting_relations(p.head.type, p.tail.type)) > 1)
    p = s.prediction.pairs[i]
    other = next(lab for lab in fitting_relations(p.head.type, p.tail.type) if lab != p.label)
    out = ok(extract_tab.annotate(ctl, str(i + 1), "relabel", other, "bob", threshold, s))
    h, t = f"{p.head.type}:{p.head.text}", f"{p.tail.type}:{p.tail.text}"
    assert s.graph.edges[h, t, other]["source"] == "annotated"
    assert not s.graph.has_edge(h, t, key=p.label)
    assert out[Output.DECISIONS_DF][0][6] == "relabel"


@pytest.mark.parametrize("pair, decision, new_label, words", [
    ("1", "relabel", None, ["relabel needs"]),
    (None, "accept", None, ["choose a pair"]),
    ("1", "approve", None, ["accept, reject or relabel"]),
])
def test_annotate_refuses_incomplete_decisions(ctl, first, pair, decision, new_label, words):
    warns(extract_tab.annotate(ctl, pair, decision, new_label, "bob", 0.5, first[Output.TAB]), *words)


def test_export_annotations_writes_mnre_lines(ctl, first):
    ok(extract_tab.annotate(ctl, "1", "accept", None, "bob", 0.5, first[Output.TAB]))
    out = ok(review_tab.export_annotations(ctl))
    assert Path(out[Output.ANNOTATIONS_FILE]).read_text().strip()


def test_suggestions_say_they_are_not_available_without_the_kge(ctl, first):
    s = first[Output.TAB]
    node = next(n for n, d in s.graph.nodes(data=True) if d["kind"] == "entity")
    out = ok(graph_tab.suggest(ctl, node, 5, 0.5, s))
    assert "not available" in out[Output.STATUS].message and out[Output.SUGGESTIONS_DF] == []
    warns(graph_tab.refresh_embedding(ctl, s), "not available")


def test_suggestion_callbacks_refuse_missing_choices(ctl, first):
    s = first[Output.TAB]
    warns(graph_tab.suggest(ctl, None, 5, 0.5, s), "choose a node")
    warns(graph_tab.add_suggestion(ctl, "1", 0.5, s), "no suggestions")


def test_suggested_links_with_the_kge(pipeline, tmp_path):
    suggest = pytest.importorskip("mmre_demo.kge.suggest", reason="mmre_demo.kge not installed")
    ctl = Controller(pipeline=pipeline, annotations=AnnotationStore(tmp_path / "a.sqlite3"), export_dir=tmp_path,
                     suggester_factory=lambda: suggest.LinkSuggester(features="none", time_budget_s=5, max_epochs=30))
    s = None
    for e in examples()[:4]:
        s = ok(extract_tab.run(ctl, e["path"], e["caption"], 0.0, False, s))[Output.TAB]
    node = next(n for n in s.graph if n.startswith("PER:"))
    ok(graph_tab.refresh_embedding(ctl, s))
    assert ctl.suggester(s).wait(120)
    out = ok(graph_tab.suggest(ctl, node, 3, 0.0, s))
    assert out[Output.SUGGESTIONS_DF], out[Output.STATUS]
    assert any(tr.name == "suggested link" for tr in out[Output.GRAPH].data)
    before = len([1 for *_, d in s.graph.edges(data=True) if d.get("source") == "suggested"])
    ok(graph_tab.add_suggestion(ctl, "1", 0.0, s))
    after = len([1 for *_, d in s.graph.edges(data=True) if d.get("source") == "suggested"])
    assert after == before + 1


def test_unexpected_errors_become_messages(ctl):
    class Broken:
        device, threshold, labels = "cpu", 0.5, ["None"]

        def predict_many(self, requests):
            raise RuntimeError("boom")

    c = Controller(pipeline=Broken(), annotations=ctl.annotations, export_dir=ctl.export_dir, suggester_factory=None)
    out = extract_tab.run(c, None, CAPTION, 0.5, False, None)
    assert set(out) == {Output.STATUS} and out[Output.STATUS].kind == "error"
    assert "still running" in out[Output.STATUS].message and "Traceback" not in out[Output.STATUS].message


def test_a_callback_cannot_return_an_output_it_does_not_declare(ctl):
    @callback((Output.STATUS,))
    def sloppy(ctl):
        return {Output.STATUS: Status("ok", "done"), Output.GRAPH: None}

    with pytest.raises(TypeError, match="does not declare"):
        sloppy(ctl)


@pytest.mark.parametrize("name, group", [
    ("preview", PREVIEW), ("run", EXTRACTION), ("rerun", EXTRACTION), ("refilter", EXTRACTION),
    ("explain", EVIDENCE), ("clear_graph", GRAPH_TAB), ("export_graph", GRAPH_TAB), ("suggest", GRAPH_TAB),
    ("add_suggestion", GRAPH_TAB), ("refresh_embedding", GRAPH_TAB), ("annotate", GRAPH_PANEL),
    ("export_annotations", GRAPH_PANEL), ("load_graph", GRAPH_TAB), ("add_from_image", FROM_IMAGE),
])
def test_every_callback_declares_its_output_group(name, group):
    assert next(getattr(m, name) for m in (extract_tab, graph_tab, review_tab) if hasattr(m, name)).outputs == group


def test_status_renders_one_icon_per_line():
    assert Status.of("warn", ["a", "", "b"]).markdown() == "⚠️ a\n⚠️ b"
    assert Status("error", "x").is_problem and not Status("info", "x").is_problem


def test_choices_become_dropdown_options(first):
    assert isinstance(first[Output.PAIR], Choices)


def test_device_is_shown(ctl, monkeypatch):
    monkeypatch.delenv("MMRE_DEVICE", raising=False)
    assert "`cpu`" in layout.device_text(ctl) and "**engine:** `onnxruntime`" in layout.device_text(ctl)
    monkeypatch.setenv("MMRE_DEVICE", "cpu")
    assert "MMRE_DEVICE=cpu" in layout.device_text(ctl)


def test_input_error_from_loader():
    def fail():
        raise OSError("weights missing")
    loader = PipelineLoader(fail)
    with pytest.raises(InputError, match="could not be loaded"):
        loader.get(10)


# ---- text in the image (issue 16) ------------------------------------------------------------------
SPOTIFY_CAPTION = "Spotify shares jump as Daniel Ek rings the bell"


@pytest.fixture(scope="module")
def text_png(tmp_path_factory):
    """An image that shows a caption entity's name ("SPOTIFY") and a name the caption lacks."""
    pytest.importorskip("rapidocr_onnxruntime", reason="RapidOCR is not installed: no text in the image")
    from PIL import ImageDraw, ImageFont

    from tests.test_ocr import FONT

    img = Image.new("RGB", (640, 400), (235, 240, 250))
    d = ImageDraw.Draw(img)
    d.text((40, 60), "SPOTIFY", fill="black", font=ImageFont.truetype(str(FONT), 64))
    d.text((40, 220), "New York Stock Exchange", fill="navy", font=ImageFont.truetype(str(FONT), 36))
    path = tmp_path_factory.mktemp("ocr") / "spotify.png"
    img.save(path)
    return str(path)


@pytest.fixture(scope="module")
def _spotify_run(ctl, text_png):
    return extract_tab.run(ctl, text_png, SPOTIFY_CAPTION, None, False, None)


@pytest.fixture()
def spotify(_spotify_run):
    return {**_spotify_run, Output.TAB: copy.deepcopy(_spotify_run[Output.TAB])}


def test_text_in_the_image_is_listed_boxed_and_grounds_the_caption_entity(spotify):
    out = ok(spotify)
    assert "“SPOTIFY”" in out[Output.IMAGE_TEXT_MD] and "**Spotify** read as" in out[Output.IMAGE_TEXT_MD]
    assert isinstance(out[Output.IMAGE_TEXT_IMG], Image.Image)
    assert "text in the image: 2 lines" in out[Output.STATUS].message
    g = out[Output.TAB].graph
    shows = [(u, v) for u, v, k in g.edges(keys=True) if k == "shows text of"]
    assert shows == [(next(n for n in g if n.startswith("image:")), "ORG:Spotify")]


def test_a_pair_with_a_grounded_entity_shows_its_box_labelled_read_in_the_image(ctl, spotify):
    s = spotify[Output.TAB]
    idx = next(i for i, p in enumerate(s.prediction.pairs) if "Spotify" in (p.head.text, p.tail.text))
    out = ok(extract_tab.explain(ctl, str(idx + 1), s))
    assert "**Read in the image** (grounded evidence" in out[Output.EVIDENCE_MD]
    assert "Attention heatmaps" in out[Output.EVIDENCE_MD]  # the attention is labelled for what it is
    # four panels: the box read in the image, then the three attention maps
    assert out[Output.EVIDENCE_IMG].size[0] > 4 * 300


def test_reading_the_text_can_be_switched_off(ctl, text_png):
    out = ok(extract_tab.run(ctl, text_png, SPOTIFY_CAPTION, None, False, None, read_text=False))
    assert out[Output.IMAGE_TEXT_MD] == "Reading the text in the image is switched off."
    assert out[Output.IMAGE_TEXT_IMG] is None and out[Output.ALSO_IN_IMAGE].choices == []
    assert not any(k == "shows text of" for *_, k in out[Output.TAB].graph.edges(keys=True))


def test_a_name_only_in_the_image_is_added_with_one_click_and_classified(ctl, spotify, text_png):
    names = spotify[Output.ALSO_IN_IMAGE].choices
    assert names == [("New York Stock Exchange (ORG)", "0")]
    out = ok(extract_tab.add_from_image(ctl, ["0"], text_png, None, False, spotify[Output.TAB]))
    assert out[Output.CAPTION] == SPOTIFY_CAPTION + " [in the image: New York Stock Exchange]"
    pred = out[Output.TAB].prediction
    assert [e.text for e in pred.entities] == ["Spotify", "Daniel Ek", "New York Stock Exchange"]
    assert any("New York Stock Exchange" in (p.head.text, p.tail.text) for p in pred.pairs)
    assert out[Output.ALSO_IN_IMAGE].choices == []  # now a caption entity, grounded like the others
    assert "New York Stock Exchange" in {g.entity.text for g in pred.groundings}


@pytest.mark.parametrize("chosen, words", [([], ["tick"]), (["7"], ["unknown choice"])])
def test_adding_names_from_the_image_refuses_empty_or_unknown_choices(ctl, spotify, text_png, chosen, words):
    warns(extract_tab.add_from_image(ctl, chosen, text_png, None, False, spotify[Output.TAB]), *words)


def test_adding_names_from_the_image_needs_some(ctl, first):
    warns(extract_tab.add_from_image(ctl, ["0"], None, 0.5, False, first[Output.TAB]), "no names")


# ---- load graph (issue 15) -------------------------------------------------------------------------
def test_an_exported_graph_loads_into_a_new_session(ctl, first, tmp_path):
    files = ok(graph_tab.export_graph(ctl, 0.0, first[Output.TAB]))[Output.FILES]
    for f in files:
        if f.endswith((".json", ".graphml")):
            out = ok(graph_tab.load_graph(ctl, f, 0.0, None))
            s = out[Output.TAB]
            assert "Loaded" in out[Output.STATUS].message
            assert sorted(kg.triples(s.graph), key=str) == sorted(kg.triples(first[Output.TAB].graph), key=str)
            assert sorted(v for _, v in out[Output.NODE].choices) == kg.entity_nodes(s.graph)  # the search box


def test_a_large_graph_is_drawn_as_its_most_connected_nodes_with_a_note(ctl, tmp_path):
    g = kg.new_graph()
    for i in range(400):
        kg.add_relation(g, kg.add_entity(g, f"Person {i}", "PER"), "/per/org/member_of",
                        kg.add_entity(g, f"Club {i % 40}", "ORG"), 0.9, kg.PREDICTED)
    path = kg.write_all(g, tmp_path, 0.0)
    out = ok(graph_tab.load_graph(ctl, next(p for p in path if p.endswith(".json")), 0.0, None))
    assert "most connected" in out[Output.STATUS].message
    assert "most connected" in out[Output.GRAPH].layout.title.text
    assert len(out[Output.NODE].choices) == 440  # every entity can be searched, drawn or not
    assert len({n for tr in out[Output.GRAPH].data for n in (tr.customdata or [])}) == graph_tab.MAX_NODES_DRAWN
    assert out[Output.TAB].graph.number_of_nodes() == 440  # the session keeps the whole graph


@pytest.mark.parametrize("content, words", [(None, ["choose a graph"]), ("not json", ["not valid json"]),
                                            ('{"format": "other"}', ["not an mmre_demo graph"])])
def test_load_graph_refuses_bad_files(ctl, tmp_path, content, words):
    path = None
    if content is not None:
        path = tmp_path / "graph.json"
        path.write_text(content)
    out = warns(graph_tab.load_graph(ctl, str(path) if path else None, 0.0, None), *words)
    assert str(tmp_path) not in out[Output.STATUS].message  # never the server's paths


def test_status_messages_never_show_server_paths(ctl, first, tmp_path):
    bad = tmp_path / "upload" / "notes.txt"
    bad.parent.mkdir()
    bad.write_text("x")
    msg = warns(graph_tab.load_graph(ctl, str(bad), 0.0, None), "notes.txt")[Output.STATUS].message
    assert str(bad.parent) not in msg
    pair = first[Output.PAIR].choices[0][1]
    p = first[Output.TAB].prediction.pairs[int(pair) - 1]
    label = fitting_relations(p.head.type, p.tail.type)[0]
    saved = ok(extract_tab.annotate(ctl, pair, "relabel", label, "ann", 0.0, first[Output.TAB]))
    msg = saved[Output.STATUS].message
    assert label in msg and str(ctl.annotations.path.parent) not in msg
    assert hide_server_paths(f"{tmp_path}/a.png and /per/loc/place_of_birth") == "a.png and /per/loc/place_of_birth"


def test_a_caption_with_zero_width_characters_runs_and_reruns_with_its_table(ctl):
    cap = "President Tr\u200bump met Kim Jong\u200b Un in Singapore"
    out = ok(extract_tab.run(ctl, None, cap, 0.0, False, None))
    rows = out[Output.ENTITIES_DF]
    assert {r[0] for r in rows} >= {"Trump", "Kim Jong Un"}
    assert "".join(t for t, _ in out[Output.ENTITIES_HL]) == cap  # highlights cover the typed caption
    again = ok(extract_tab.rerun(ctl, None, cap, rows, 0.0, False, out[Output.TAB]))
    assert again[Output.ENTITIES_DF] == rows
    typed_only = [["Trump", "PER", None, None], ["Kim Jong Un", "PER", None, None]]  # no offsets: found in the text
    found = ok(extract_tab.rerun(ctl, None, cap, typed_only, 0.0, False, None))
    assert [r[0] for r in found[Output.ENTITIES_DF]] == ["Trump", "Kim Jong Un"]
    warns(extract_tab.run(ctl, None, "\u200b\u200e\u2066", 0.5, False, None), "no visible text")
