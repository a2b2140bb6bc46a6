"""TabState graph: accumulation, threshold, contract, exports, layout for 1..200 nodes (no model, no torch)."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys

import networkx as nx
import numpy as np

from mmre_demo import graph as kg
from mmre_demo.data.schema import Entity
from mmre_demo.prediction import PairPrediction, Prediction


def _pred(caption, ents, rels, has_image=True):
    pairs = []
    for (h, t), (label, p) in rels.items():
        pairs.append(PairPrediction(ents[h], ents[t], label, p, [(label, p)]))
    return Prediction(caption=caption, entities=list(ents), pairs=pairs, concepts=[], has_image=has_image,
                      image_size=(10, 10) if has_image else None, device="cpu")


def _example(score=0.9):
    cap = "Eileen Collins of NASA in Houston"
    e = [Entity("Eileen Collins", 0, 14, "PER"), Entity("NASA", 18, 22, "ORG"), Entity("Houston", 26, 33, "LOC")]
    return _pred(cap, e, {(0, 1): ("/per/org/member_of", score), (1, 2): ("/org/loc/locate_at", 0.3),
                          (1, 0): ("None", 0.99)})


def test_graph_module_does_not_import_torch_or_the_model():
    code = ("import sys, mmre_demo.graph, mmre_demo.annotations, mmre_demo.explain.overlay; "
            "bad = [m for m in ('torch', 'gradio', 'mmre_demo.pipeline') if m in sys.modules]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_contract_and_accumulation():
    g = kg.new_graph()
    assert isinstance(g, nx.MultiDiGraph)
    kg.add_prediction(g, _example(0.8), image_id="abc_astronaut.jpg", image_feature=np.ones(1280))
    kg.add_prediction(g, _example(0.95), image_id="def_other.jpg")
    n = g.nodes["PER:Eileen Collins"]
    assert n["kind"] == "entity" and n["type"] == "PER" and n["name"] == "Eileen Collins"
    assert n["captions"] == ["Eileen Collins of NASA in Houston"] and n["image_feature"].shape == (1280,)
    assert g.nodes["image:abc_astronaut.jpg"]["kind"] == "image"
    assert g.has_edge("image:abc_astronaut.jpg", "ORG:NASA", key="depicts")
    e = g.edges["PER:Eileen Collins", "ORG:NASA", "/per/org/member_of"]
    assert e["relation"] == "/per/org/member_of" and e["source"] == "predicted"
    assert e["score"] == 0.95 and e["count"] == 2  # same triple: one edge, best score
    assert not g.has_edge("ORG:NASA", "PER:Eileen Collins")  # None is never an edge
    assert len([n for n in g if n.startswith(("PER", "ORG", "LOC"))]) == 3  # same text + type = same node


def test_threshold_and_triples():
    g = kg.new_graph()
    kg.add_prediction(g, _example())  # the prediction's threshold (0.5) decides what enters the graph
    assert {t["relation"] for t in kg.triples(g, 0.0)} == {"/per/org/member_of"}
    g = kg.new_graph()
    kg.add_prediction(g, _example(), min_score=0.0)
    assert {t["relation"] for t in kg.triples(g, 0.5)} == {"/per/org/member_of"}
    assert len(kg.triples(g, 0.0)) == 2
    kg.add_relation(g, "ORG:NASA", "/org/loc/locate_at", "LOC:Houston", 1.0, "annotated")
    assert len(kg.triples(g, 0.99)) == 1 and kg.triples(g, 0.99)[0]["source"] == "annotated"


def test_exports_round_trip(tmp_path):
    g = kg.new_graph()
    kg.add_prediction(g, _example(), image_id="x.jpg", image_feature=np.zeros(4), min_score=0.0)
    kg.add_relation(g, "PER:Eileen Collins", "/per/loc/place_of_residence", "LOC:Houston", 0.7, "suggested")
    d = json.loads(kg.to_json(g, 0.5))
    assert d["triples"][0]["head"] == "Eileen Collins" and any(e["source"] == "suggested" for e in d["edges"])
    rows = list(csv.DictReader(io.StringIO(kg.to_csv(g, 0.0))))
    assert {r["relation"] for r in rows} == {"/per/org/member_of", "/org/loc/locate_at"}
    back = nx.read_graphml(io.BytesIO(kg.to_graphml(g, 0.0).encode()))
    assert back.has_node("PER:Eileen Collins") and back.number_of_edges() == g.number_of_edges()
    paths = kg.write_all(g, tmp_path, 0.5)
    assert [p.rsplit(".", 1)[1] for p in paths] == ["json", "csv", "graphml", "ttl", "zip"]


def test_figure_empty_small_and_200_nodes():
    from mmre_demo.kge.predict import Suggestion  # what the app draws dashed

    fig, pos = kg.figure(kg.new_graph())
    assert pos == {} and "empty" in fig.layout.annotations[0].text
    g = kg.new_graph()
    kg.add_entity(g, "Solo", "PER")
    fig, pos = kg.figure(g)
    assert len(pos) == 1
    rng = np.random.default_rng(0)
    g = kg.new_graph()
    types = ["PER", "ORG", "LOC", "MISC"]
    for i in range(200):
        kg.add_entity(g, f"e{i}", types[i % 4])
    for _ in range(300):
        a, b = rng.integers(0, 200, 2)
        kg.add_relation(g, f"{types[a % 4]}:e{a}", "/per/org/member_of", f"{types[b % 4]}:e{b}", float(rng.random()))
    fig, pos = kg.figure(g, 0.5, suggestions=[Suggestion(head="PER:e0", relation="/per/per/peer", tail="PER:e4",
                                                         score=0.4)])
    arr = np.array(list(pos.values()))
    assert arr.shape == (200, 2) and np.abs(arr).max() <= 1.25  # inside the axes
    # nodes are spread out: the median nearest-neighbour distance is not tiny
    d = np.sqrt(((arr[:, None] - arr[None]) ** 2).sum(-1)) + np.eye(200) * 9
    assert np.median(d.min(1)) > 0.02
    names = {tr.name for tr in fig.data}
    assert {"PER", "ORG", "LOC", "MISC", "suggested link"} <= names
    dashed = [tr for tr in fig.data if tr.name == "suggested link"][0]
    assert dashed.line.dash == "dash"
    # positions are reused: a second draw keeps nodes close to where they were
    fig2, pos2 = kg.figure(g, 0.5, positions=pos)
    assert set(pos2) == set(pos)


def test_add_prediction_counts_what_it_added():
    g = kg.new_graph()
    pred = _example(0.8)
    pred.threshold = 0.5
    first = kg.add_prediction(g, pred, image_id="abc.jpg")
    # 3 entities + the image; member_of (0.8) passes, locate_at (0.3) does not; 3 `depicts` edges
    assert first == {"nodes_added": 4, "edges_added": 4, "relations": 1}
    assert g.number_of_edges() == 4
    again = kg.add_prediction(g, pred, image_id="abc.jpg")  # the same post: nothing new, the relation seen again
    assert again == {"nodes_added": 0, "edges_added": 0, "relations": 1}


# ---- readable at corpus scale (issue 23) ------------------------------------------------------------
def _corpus_view(n_posts: int = 2000, top: int = 150):
    import tempfile
    from pathlib import Path

    from mmre_demo.extract.exports import build_graph
    from mmre_demo.graph.synthetic import synthetic_extract

    g = build_graph(synthetic_extract(Path(tempfile.mkdtemp()) / "x", n_posts))
    return kg.top_degree_view(g, top, 0.0, kinds=("entity",))[0]


def test_printed_labels_never_overlap_and_the_hubs_are_named():
    from mmre_demo.graph.placement import Canvas, _label_box, fitting_labels, label_text, node_size

    h = _corpus_view()
    pos = kg.layout(h)
    deg = dict(h.degree())
    names = {n: h.nodes[n]["name"] for n in h}
    spots = fitting_labels(pos, names, deg)
    canvas = Canvas()
    boxes = [_label_box(canvas.to_px(pos[n]), label_text(names[n]), node_size(deg[n]) / 2, spot)
             for n, spot in spots.items()]
    for i, a in enumerate(boxes):
        for b in boxes[i + 1:]:
            assert not (a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]), (a, b)
    hubs = sorted(h, key=lambda n: (-deg[n], n))[:10]
    assert set(hubs) <= set(spots) and len(spots) >= 60


def test_node_size_grows_with_degree_and_colour_follows_type():
    from mmre_demo.graph.figure import TYPE_COLOURS
    from mmre_demo.graph.placement import node_size

    assert node_size(0) < node_size(3) < node_size(20) <= 34
    h = _corpus_view(400, 40)
    fig, _ = kg.figure(h)
    per = next(tr for tr in fig.data if tr.name == "PER")
    assert per.marker.color == TYPE_COLOURS["PER"]
    sizes = dict(zip(per.customdata, per.marker.size))
    assert sizes[max(sizes, key=h.degree)] == max(sizes.values())


def test_posts_and_their_scores_survive_the_exports(tmp_path):
    g = kg.new_graph()
    a, b = kg.add_entity(g, "Ann", "PER"), kg.add_entity(g, "Acme", "ORG")
    kg.add_post(g, "p1", "Ann joins Acme", [])
    kg.add_post(g, "p2", "Acme hires Ann", [])
    kg.add_relation(g, a, "/per/org/member_of", b, 0.7, post_id="p1")
    kg.add_relation(g, a, "/per/org/member_of", b, 0.9, post_id="p2")
    for path in kg.write_all(g, tmp_path, 0.0):
        if path.endswith((".json", ".graphml")):
            back = kg.read_graph(path)
            d = back.edges[a, b, "/per/org/member_of"]
            assert d["posts"] == ["p1", "p2"] and d["post_scores"] == [0.7, 0.9] and d["score"] == 0.9
    assert kg.posts_table(kg.read_graph(tmp_path / "mmre_graph.json"))["p2"]["caption"] == "Acme hires Ann"


def test_drawn_counts_say_what_the_figure_title_says():
    from mmre_demo.kge.predict import Suggestion

    g = kg.new_graph()
    a, b, c = kg.add_entity(g, "Ann", "PER"), kg.add_entity(g, "Acme", "ORG"), kg.add_entity(g, "Bob", "PER")
    kg.add_relation(g, a, "/per/org/member_of", b, 0.9)
    kg.add_relation(g, c, "/per/org/member_of", b, 0.2)  # below the threshold
    sug = [Suggestion(head=a, relation="/per/per/peer", tail=c, score=0.4)] * 2  # one link, listed twice
    fig, _ = kg.figure(g, 0.5, suggestions=sug)
    counts = kg.drawn_counts(g, 0.5, sug)
    assert counts == "3 entities, 1 relations, 1 suggested link (threshold 0.50)"
    assert fig.layout.title.text == f"Knowledge graph — {counts}"


def _decided(relation: str, decision: str, replaces=None):
    from mmre_demo.annotations import Candidate, Decision

    caption = "Ann joined Acme."
    cand = Candidate(caption, None, Entity("Ann", 0, 3, "PER"), Entity("Acme", 11, 15, "ORG"), "/per/org/member_of",
                     0.8)
    return Decision(cand, "ana", decision, relation, replaces=replaces)


def test_a_decision_replaces_what_stood_on_the_pair_and_its_undo_brings_it_back():
    from mmre_demo.annotations import Undo

    g = kg.new_graph()
    a, b = kg.add_entity(g, "Ann", "PER"), kg.add_entity(g, "Acme", "ORG")
    kg.add_relation(g, a, "/per/org/member_of", b, 0.8)
    kg.add_relation(g, a, "/org/org/subsidiary", b, 0.1)  # the model's other relation for the pair
    first = _decided("/per/loc/place_of_residence", "relabel")
    kg.apply_decision(g, first)
    assert {(k, d["source"]) for _, _, k, d in g.edges(keys=True, data=True)} == {
        ("/per/loc/place_of_residence", kg.ANNOTATED)}
    second = _decided("None", "reject", replaces=first)
    kg.apply_decision(g, second)  # the earlier decision goes with it
    assert g.number_of_edges() == 0
    kg.take_back_decision(g, Undo(second, first))  # the earlier decision stands again
    assert [k for *_, k in g.edges(keys=True)] == ["/per/loc/place_of_residence"]
    kg.take_back_decision(g, Undo(first, None))  # nothing decided: the prediction stands again
    assert {(k, d["source"]) for _, _, k, d in g.edges(keys=True, data=True)} == {
        ("/per/org/member_of", kg.PREDICTED)}


def test_an_added_suggestion_keeps_its_rank_and_gives_way_to_a_prediction():
    g = kg.new_graph()
    a, b = kg.add_entity(g, "Ann", "PER"), kg.add_entity(g, "Acme", "ORG")
    kg.add_suggested_link(g, a, "/per/org/member_of", b, 0.4, rank=2)
    d = g.edges[a, b, "/per/org/member_of"]
    assert (d["source"], d["rank"]) == (kg.SUGGESTED, 2)
    kg.add_relation(g, a, "/per/org/member_of", b, 0.9, kg.PREDICTED)
    assert g.edges[a, b, "/per/org/member_of"]["source"] == kg.PREDICTED
