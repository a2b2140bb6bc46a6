"""The knowledge-graph tab's callbacks (issue 23) as plain functions: one threshold, search / focus /
filters, provenance, link suggestions that appear by themselves and respect types, bad graph files."""

from __future__ import annotations

import html as html_lib
import json
import re
from pathlib import Path

import pytest

from mmre_demo import graph as kg
from mmre_demo.annotations import AnnotationStore, Candidate, Decision
from mmre_demo.data.schema import Entity
from mmre_demo.extract.exports import write_exports
from mmre_demo.graph.explore import edge_key
from mmre_demo.graph.synthetic import synthetic_extract
from mmre_demo.kge.predict import Suggestion, fits_types
from mmre_demo.kge.suggest import SuggesterStatus
from mmre_demo.ui import extract as extract_tab
from mmre_demo.ui import graph as graph_tab
from mmre_demo.ui.controller import Controller, examples
from mmre_demo.ui.outputs import GRAPH_TAB, Output
from mmre_demo.ui.state import TabState
from tests.conftest import app_controller


class StubPipeline:
    """Loading, exploring and tracing graphs never runs the model."""

    device, threshold = "cpu", 0.4


def ok(out):
    status = out.get(Output.STATUS)
    assert status is None or not status.is_problem, status
    return out


def warns(out, *words):
    assert set(out) == {Output.STATUS}, out.keys()
    assert out[Output.STATUS].kind == "warn", out[Output.STATUS]
    for w in words:
        assert w.lower() in out[Output.STATUS].message.lower(), out[Output.STATUS]
    return out


def title(out) -> str:
    """The graph's title as read: its lines (wrapped with <br>) joined by spaces."""
    return " ".join(re.sub(r"<[^>]+>", " ", out[Output.GRAPH].layout.title.text).split())


def drawn_nodes(out) -> set[str]:
    return {n for tr in out[Output.GRAPH].data if tr.customdata is not None for n in tr.customdata}


@pytest.fixture()
def stub_ctl(tmp_path):
    return Controller(pipeline=StubPipeline(), annotations=AnnotationStore(tmp_path / "a.sqlite3"),
                      export_dir=tmp_path / "exp", suggester_factory=None)


@pytest.fixture(scope="module")
def corpus_json(tmp_path_factory) -> Path:
    """graph.json of a 400-post extract folder, written by `mmre extract`'s own export code."""
    folder = synthetic_extract(tmp_path_factory.mktemp("corpus") / "extract", 400)
    write_exports(folder, threshold=0.0)
    return folder / "graph.json"


@pytest.fixture()
def corpus(stub_ctl, corpus_json):
    return ok(graph_tab.load_graph(stub_ctl, str(corpus_json), 0.0, None))[Output.TAB]


# ---- one threshold ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def model_ctl(pipeline, tmp_path_factory):
    d = tmp_path_factory.mktemp("model")
    return app_controller(pipeline, d)


@pytest.fixture(scope="module")
def extracted(model_ctl):
    ex = examples()[0]
    s = ok(extract_tab.run(model_ctl, ex["path"], ex["caption"], 0.0, False, None))[Output.TAB]
    return ok(graph_tab.show_graph(model_ctl, 0.0, s))[Output.TAB]  # the threshold is then moved with the graph open


@pytest.mark.parametrize("thresholds", [(0.8, 0.45), (0.45, 0.9), (0.0, 0.6, 0.3)])
def test_one_threshold_filters_the_table_the_graph_the_status_and_the_export_alike(model_ctl, extracted, thresholds):
    """The issue's sequence (drag to 0.8, type 0.45 back; 0.9): every output follows the last value."""
    s = extracted
    for thr in thresholds:
        out = ok(extract_tab.refilter(model_ctl, thr, False, s))
    n_pairs = sum(1 for p in s.prediction.pairs if p.is_shown(thr))
    n_graph = len(kg.triples(s.graph, thr))
    assert len(out[Output.RELATIONS_DF]) == n_pairs and all(r[4] >= thr for r in out[Output.RELATIONS_DF])
    assert n_graph == n_pairs  # one caption: the table's relations are the graph's, at any threshold
    assert f"{n_graph} relation" in title(out) and f"threshold {thr:.2f}" in title(out)
    status = out[Output.STATUS].message
    assert f"{n_pairs} relation" in status and f"at ≥ {thr:.2f}" in status
    assert f"the graph: {n_graph} relation" in status
    export = ok(graph_tab.export_graph(model_ctl, thr, s))[Output.STATUS].message
    assert f"Exported {n_graph} triples (threshold {thr:.2f})" in export
    data = json.loads(Path(next(f for f in ok(graph_tab.export_graph(model_ctl, thr, s))[Output.FILES]
                                if f.endswith(".json"))).read_text())
    assert len(data["triples"]) == n_graph


def test_the_threshold_refilters_on_every_change_not_only_on_release(stub_ctl):
    """Typing in the number box, Enter and Tab change the value without a release: `.change` is bound."""
    from mmre_demo.ui.layout import build

    demo = build(stub_ctl)
    threshold = next(c for c in demo.blocks.values() if getattr(c, "elem_id", None) == "threshold")
    triggers = {(t[0], t[1]) for dep in demo.fns.values() for t in dep.targets if dep.api_name == "filter"}
    assert (threshold._id, "change") in triggers


def test_the_title_counts_relations_and_suggestions_apart(stub_ctl):
    s = TabState(graph_open=True)
    a, b, c = (kg.add_entity(s.graph, n, "PER") for n in ("A", "B", "C"))
    kg.add_relation(s.graph, a, "/per/per/peer", b, 0.9)
    kg.add_relation(s.graph, b, "/per/per/peer", c, 0.8, kg.SUGGESTED)
    s.suggestions = [Suggestion(head=a, relation="/per/per/couple", tail=c, score=0.99, rank=1)]
    out = ok(extract_tab.refilter(stub_ctl, 0.5, False, s))
    assert "1 relations, 2 suggested links" in title(out)
    assert "the graph: 1 relation at ≥ 0.50 and 2 suggested links" in out[Output.STATUS].message


# ---- search, focus, filters -------------------------------------------------------------------------
def test_a_corpus_graph_opens_as_an_overview_and_the_session_keeps_all_of_it(stub_ctl, corpus_json):
    out = ok(graph_tab.load_graph(stub_ctl, str(corpus_json), 0.0, None))
    s = out[Output.TAB]
    full = kg.read_graph(corpus_json)
    assert s.graph.number_of_nodes() == full.number_of_nodes() > graph_tab.MAX_NODES_DRAWN
    assert len(drawn_nodes(out)) == graph_tab.MAX_NODES_DRAWN
    hidden = re.search(r"hidden: ([\d,]+) nodes", title(out))
    assert hidden and int(hidden.group(1).replace(",", "")) == full.number_of_nodes() - graph_tab.MAX_NODES_DRAWN
    assert "400 posts" in out[Output.STATUS].message


def test_search_by_name_focuses_on_one_or_two_hops(stub_ctl, corpus):
    hub = max(kg.entity_nodes(corpus.graph), key=lambda n: corpus.graph.degree(n))
    name = corpus.graph.nodes[hub]["name"]
    one = ok(graph_tab.explore_graph(stub_ctl, name.upper(), "1 hop", [], [], [], 0.0, corpus))  # typed, any case
    assert corpus.selected_node == hub and corpus.view.focus == hub
    near = set(corpus.graph.successors(hub)) | set(corpus.graph.predecessors(hub)) | {hub}
    assert drawn_nodes(one) == near
    two = ok(graph_tab.explore_graph(stub_ctl, hub, "2 hops", [], [], [], 0.0, corpus))
    assert drawn_nodes(two) > drawn_nodes(one)
    assert "2-hop neighbourhood" in title(two) and name in one[Output.PROVENANCE]
    back = ok(graph_tab.whole_graph(stub_ctl, 0.0, corpus))
    assert corpus.view.is_whole and len(drawn_nodes(back)) == graph_tab.MAX_NODES_DRAWN
    assert back[Output.HOPS] == "whole graph" and back[Output.RELATION_FILTER] == []


def test_filters_by_relation_type_and_source(stub_ctl, corpus):
    rel = "/per/org/member_of"
    out = ok(graph_tab.explore_graph(stub_ctl, None, "whole graph", [rel], [], [], 0.0, corpus))
    edges = [json.loads(v) for _, v in out[Output.EDGE].choices]
    assert edges and {r for _, r, _ in edges} == {rel}
    out = ok(graph_tab.explore_graph(stub_ctl, None, "whole graph", [], ["LOC", "MISC"], [], 0.0, corpus))
    assert drawn_nodes(out) and all(corpus.graph.nodes[n]["type"] in ("LOC", "MISC") for n in drawn_nodes(out))
    out = ok(graph_tab.explore_graph(stub_ctl, None, "whole graph", [], [], ["annotated"], 0.0, corpus))
    assert drawn_nodes(out) == set() and out[Output.EDGE].choices == []  # nothing annotated in a fresh corpus


def test_the_probability_filter_is_the_threshold(stub_ctl, corpus):
    low = ok(graph_tab.explore_graph(stub_ctl, None, "whole graph", ["/per/per/peer"], [], [], 0.0, corpus))
    high = ok(graph_tab.explore_graph(stub_ctl, None, "whole graph", ["/per/per/peer"], [], [], 0.9, corpus))
    scores = [float(re.search(r"\((0\.\d+),", label).group(1)) for label, _ in high[Output.EDGE].choices]
    assert scores and min(scores) >= 0.9 and len(high[Output.EDGE].choices) < len(low[Output.EDGE].choices)


@pytest.mark.parametrize("args, words", [
    (("Nobody At All", "1 hop", [], [], []), ["no node is called"]),
    ((None, "1 hop", [], [], []), ["search a node first"]),
    ((None, "whole graph", ["/per/per/best_friend"], [], []), ["unknown relation"]),
    ((None, "whole graph", [], ["ALIEN"], []), ["unknown entity type"]),
    ((None, "3 hops", [], [], []), ["1 or 2 hops"]),
])
def test_explore_refuses_unknown_choices(stub_ctl, corpus, args, words):
    warns(graph_tab.explore_graph(stub_ctl, *args, 0.0, corpus), *words)


# ---- provenance -------------------------------------------------------------------------------------
def test_an_edge_of_a_loaded_extract_graph_is_traced_to_its_posts(stub_ctl, corpus, corpus_json):
    out = ok(graph_tab.explore_graph(stub_ctl, None, "whole graph", [], [], [], 0.0, corpus))
    label, key = out[Output.EDGE].choices[0]
    html = ok(graph_tab.trace(stub_ctl, key, corpus))[Output.PROVENANCE]
    u, rel, v = json.loads(key)
    posts = corpus.graph.edges[u, v, rel]["posts"]
    table = json.loads(corpus_json.read_text())["posts"]
    assert posts and all(f"post {p}" in html for p in posts[:3])
    caption = table[posts[0]]["caption"]
    head = corpus.graph.nodes[u]["name"]
    text = html_lib.unescape(re.sub(r"<sup>.*?</sup>|<[^>]+>", "", html))
    assert f"{head}<sup>" in html and caption in text  # the whole caption, its entities marked
    assert "probability" in html and "predicted by the model" in html


def test_provenance_of_the_session_graph_has_the_caption_and_thumbnail(model_ctl, extracted):
    s = extracted
    listed = ok(graph_tab.show_graph(model_ctl, 0.0, s))[Output.EDGE].choices  # opening the tab lists the edges
    assert len(listed) == len(kg.relation_edges(s.graph, 0.0))
    u, v, d = next((u, v, d) for u, v, d in kg.relation_edges(s.graph, 0.0))
    html = ok(graph_tab.trace(model_ctl, edge_key(u, d["relation"], v), s))[Output.PROVENANCE]
    assert "post submission 1" in html and "data:image/jpeg;base64," in html
    assert f"probability {d['post_scores'][0]:.2f}" in html
    assert s.prediction.caption.split()[0] in html


def stub_decision(annotator: str, head: str, tail: str, predicted: str, decision: str, relation: str,
                  created: float) -> Decision:
    caption = f"{head} and {tail}."
    return Decision(Candidate(caption, None, Entity(head, 0, len(head), "PER"),
                              Entity(tail, len(head) + 5, len(caption) - 1, "ORG"), predicted),
                    annotator, decision, relation, created)


class StubDecisions:
    """The annotation store's standing decisions (oldest first, as `AnnotationStore.current` gives them)."""

    def current(self):
        return [stub_decision("cy", "Ann", "Bob", "/per/per/peer", "accept", "/per/per/peer", 1_780_000_000.0),
                stub_decision("bo", "Ann", "Acme", "/per/org/member_of", "accept", "/per/org/member_of",
                              1_780_003_600.0),
                stub_decision("ana", "Ann", "Acme", "/per/org/member_of", "reject", "None", 1_780_007_200.0)]


def test_provenance_shows_the_annotators_decisions_on_the_pair(stub_ctl):
    stub_ctl.annotations = StubDecisions()
    s = TabState()
    a, b = kg.add_entity(s.graph, "Ann", "PER"), kg.add_entity(s.graph, "Acme", "ORG")
    kg.add_relation(s.graph, a, "/per/org/member_of", b, 1.0, kg.ANNOTATED, "Ann joined Acme.")
    html = ok(graph_tab.trace(stub_ctl, edge_key(a, "/per/org/member_of", b), s))[Output.PROVENANCE]
    assert "reject by ana" in html and "accept by bo" in html and "by cy" not in html  # that one is Ann → Bob
    assert "an annotator&#x27;s decision" in html or "an annotator's decision" in html
    assert "Ann joined Acme." in re.sub(r"<[^>]+>", "", html)  # an edge without post ids: its caption


def test_tracing_refuses_what_is_not_there(stub_ctl, corpus):
    warns(graph_tab.trace(stub_ctl, None, corpus), "pick an edge")
    warns(graph_tab.trace(stub_ctl, json.dumps(["PER:A", "/per/per/peer", "PER:B"]), corpus), "no longer in the graph")
    warns(graph_tab.trace(stub_ctl, "Nobody At All", corpus), "no node is called")


# ---- link suggestions ---------------------------------------------------------------------------------
class ControlledSuggester:
    """A suggester whose training ends when the test says so."""

    def __init__(self):
        self.state = "empty"

    def refresh(self, graph):
        self.state = "training"
        return True

    def status(self):
        return SuggesterStatus(state=self.state, ready=self.state == "ready", elapsed_s=3.0, budget_s=20.0,
                               relations=7, message="")

    def suggest_with_message(self, node, k):
        return [Suggestion(head=node, relation="/per/per/peer", tail="PER:B", score=0.998, rank=1)], ""

    def quality_text(self):
        return "held-out MRR 0.41 · Hits@10 0.70 (2 relations held out)"


def test_suggestions_appear_by_themselves_when_the_embedding_is_ready(tmp_path):
    sug = ControlledSuggester()
    ctl = Controller(pipeline=StubPipeline(), annotations=AnnotationStore(tmp_path / "a.sqlite3"),
                     export_dir=tmp_path, suggester_factory=lambda: sug)
    s = TabState()
    a, b = kg.add_entity(s.graph, "A", "PER"), kg.add_entity(s.graph, "B", "PER")
    kg.add_relation(s.graph, a, "/per/per/couple", b, 0.9)
    first = ok(graph_tab.suggest(ctl, "A", 5, 0.5, s))  # a name typed in the search box
    assert first[Output.POLL] is True and first[Output.SUGGESTIONS_DF] == []
    assert "Embedding the graph (7 relations): 3 s of at most 20 s" in first[Output.STATUS].message
    assert ok(graph_tab.poll_suggestions(ctl, 0.5, s))[Output.POLL] is True  # still training: keep polling
    sug.state = "ready"
    done = ok(graph_tab.poll_suggestions(ctl, 0.5, s))
    assert done[Output.POLL] is False
    assert done[Output.SUGGESTIONS_DF] == [[1, "PER:A", "/per/per/peer", "PER:B", sug.quality_text()]]
    assert "0.998" not in str(done[Output.SUGGESTIONS_DF]) and "#1 PER:A" in done[Output.SUGGESTION].choices[0][0]
    assert "1 suggested link" in title(done) and "held-out MRR 0.41" in done[Output.STATUS].message
    assert ok(graph_tab.poll_suggestions(ctl, 0.5, TabState()))[Output.POLL] is False  # nothing asked: the timer stops


def test_the_apps_suggestions_respect_the_relation_types(tmp_path):
    from mmre_demo.kge.suggest import LinkSuggester
    from tests.test_kge import typed_graph

    path = next(p for p in kg.write_all(typed_graph(), tmp_path, 0.0) if p.endswith(".json"))
    sug = LinkSuggester(features="none", max_epochs=15, time_budget_s=30)
    ctl = Controller(pipeline=StubPipeline(), annotations=AnnotationStore(tmp_path / "a.sqlite3"),
                     export_dir=tmp_path, suggester_factory=lambda: sug)
    s = ok(graph_tab.load_graph(ctl, path, 0.0, None))[Output.TAB]
    out = ok(graph_tab.suggest(ctl, "PER:Person 0", 10, 0.0, s))
    if out[Output.POLL]:
        assert sug.wait(120)
    rows = []
    for node in ("PER:Person 0", "ORG:Club 1", "LOC:City 2", "MISC:Cup 0"):
        out = ok(graph_tab.suggest(ctl, node, 10, 0.0, s))
        assert out[Output.POLL] is False
        rows += out[Output.SUGGESTIONS_DF]
    assert len(rows) == 40 and [r[0] for r in rows[:10]] == list(range(1, 11))
    assert not [r for r in rows if not fits_types(r[1], r[2], r[3])]
    assert all(r[4].startswith("held-out MRR") for r in rows)
    added = ok(graph_tab.add_suggestion(ctl, "1", 0.0, s))
    assert "suggested (dashed) edge" in added[Output.STATUS].message


def test_a_graph_too_small_to_embed_says_so(tmp_path):
    from mmre_demo.kge.suggest import LinkSuggester

    ctl = Controller(pipeline=StubPipeline(), annotations=AnnotationStore(tmp_path / "a.sqlite3"),
                     export_dir=tmp_path, suggester_factory=lambda: LinkSuggester(features="none"))
    s = TabState()
    kg.add_relation(s.graph, kg.add_entity(s.graph, "A", "PER"), "/per/per/peer", kg.add_entity(s.graph, "B", "PER"),
                    0.9)
    out = ok(graph_tab.suggest(ctl, "PER:A", 5, 0.0, s))
    assert out[Output.POLL] is False and "too small to embed" in out[Output.STATUS].message


# ---- bad graph files ----------------------------------------------------------------------------------
def _big_json(path: Path, n_edges: int) -> Path:
    edge = '{"head": "PER:A", "tail": "PER:B", "relation": "/per/per/peer", "score": 0.9}'
    nodes = ('[{"id": "PER:A", "kind": "entity", "name": "A", "type": "PER"}, '
             '{"id": "PER:B", "kind": "entity", "name": "B", "type": "PER"}]')
    path.write_text('{"format": "mmre_demo.graph/1", "nodes": ' + nodes + ', "edges": ['
                    + ", ".join([edge] * n_edges) + "]}", encoding="utf-8")
    return path


def _big_graphml(path: Path, n_edges: int) -> Path:
    path.write_text('<?xml version="1.0"?><graphml><graph edgedefault="directed"><node id="a"/><node id="b"/>'
                    + '<edge source="a" target="b"/>' * n_edges + "</graph></graphml>", encoding="utf-8")
    return path


@pytest.mark.parametrize("make, words", [
    (lambda p: (p / "photo.json").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(64)) and p / "photo.json",
     ["not valid json"]),
    (lambda p: (p / "notes.txt").write_text("a b c") and p / "notes.txt", ["unknown graph file type"]),
    (lambda p: (p / "g.graphml").write_text("<graphml><graph><node id='a'/") and p / "g.graphml",
     ["not a graphml file"]),
    (lambda p: (p / "dangling.json").write_text(json.dumps({
        "format": "mmre_demo.graph/1", "nodes": [{"id": "PER:A", "kind": "entity"}],
        "edges": [{"head": "PER:A", "tail": "PER:Ghost", "relation": "/per/per/peer"}]})) and p / "dangling.json",
     ["unknown node 'PER:Ghost'"]),
    (lambda p: _big_json(p / "million.json", 1_000_000), ["1,000,000 edges", "at most 500,000"]),
    (lambda p: _big_graphml(p / "million.graphml", 1_000_000), ["1,000,000 edges", "at most 500,000"]),
])
def test_a_bad_graph_file_is_refused_clearly_and_the_session_keeps_its_graph(stub_ctl, tmp_path, make, words):
    s = TabState()
    kg.add_relation(s.graph, kg.add_entity(s.graph, "Keep", "PER"), "/per/per/peer",
                    kg.add_entity(s.graph, "Me", "PER"), 0.9)
    before, graph = kg.triples(s.graph), s.graph
    upload = tmp_path / "gradio" / "upload"
    upload.mkdir(parents=True)
    out = warns(graph_tab.load_graph(stub_ctl, str(make(upload)), 0.0, s), *words)
    assert str(tmp_path) not in out[Output.STATUS].message and "/gradio/" not in out[Output.STATUS].message
    assert s.graph is graph and kg.triples(s.graph) == before


@pytest.mark.parametrize("name", ["explore_graph", "whole_graph", "trace", "poll_suggestions", "show_graph"])
def test_the_new_graph_callbacks_declare_the_graph_tab(name):
    assert getattr(graph_tab, name).outputs == GRAPH_TAB
