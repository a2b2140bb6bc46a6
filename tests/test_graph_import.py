"""Exported graphs read back (JSON and GraphML round trips, wrong files refused), the top-N view of a large
graph, and `mmre kge train --dataset graph:PATH` on an exported graph."""

from __future__ import annotations

import json

import networkx as nx
import pytest
import torch

from mmre_demo import graph as kg
from mmre_demo.cli import main
from mmre_demo.data.schema import Entity, InputError
from mmre_demo.kge import load_dataset
from mmre_demo.prediction import PairPrediction, Prediction

torch.set_num_threads(1)


def _pred(caption, ents, rels, has_image=True):
    pairs = [PairPrediction(ents[h], ents[t], lab, p, [(lab, p)]) for (h, t), (lab, p) in rels.items()]
    return Prediction(caption=caption, entities=ents, pairs=pairs, concepts=[], has_image=has_image,
                      image_size=(10, 10) if has_image else None, device="cpu")


def session_graph(n_people: int = 3) -> nx.MultiDiGraph:
    g = kg.new_graph()
    for i in range(n_people):
        cap = f"Person{i} of Org{i % 2} in Zürich | café"
        ents = [Entity(f"Person{i}", 0, 7, "PER"), Entity(f"Org{i % 2}", 11, 15, "ORG"),
                Entity("Zürich", 19, 25, "LOC")]
        kg.add_prediction(g, _pred(cap, ents, {(0, 1): ("/per/org/member_of", 0.9), (1, 2): ("/org/loc/locate_at", 0.6),
                                               (0, 2): ("/per/loc/place_of_residence", 0.2)}),
                          image_id=f"abc{i}_img{i}.jpg" if i % 2 == 0 else None, image_label=f"img{i}.jpg")
    kg.add_relation(g, "PER:Person0", "/per/per/peer", "PER:Person1", 1.0, "annotated")
    kg.add_relation(g, "PER:Person1", "/per/loc/place_of_birth", "LOC:Zürich", 0.7, "suggested")
    return g


@pytest.mark.parametrize("ext", ["json", "graphml"])
def test_export_read_back_is_the_same_graph(tmp_path, ext):
    g = session_graph()
    kg.write_all(g, tmp_path, threshold=0.0, stem="g")
    back = kg.read_graph(tmp_path / f"g.{ext}")
    if ext == "json":
        assert kg.to_json(back) == kg.to_json(g)
    else:  # GraphML joins lists with " | ": a caption that contains " | " comes back split
        a, b = kg.to_json_dict(back), kg.to_json_dict(g)
        assert a["triples"] == b["triples"] and len(a["edges"]) == len(b["edges"])
        assert sorted(n["id"] for n in a["nodes"]) == sorted(n["id"] for n in b["nodes"])
        assert kg.to_csv(back) == kg.to_csv(g)
    assert back.nodes["PER:Person0"]["kind"] == "entity" and back.nodes["image:abc0_img0.jpg"]["kind"] == "image"
    assert back.edges["PER:Person1", "LOC:Zürich", "/per/loc/place_of_birth"]["source"] == "suggested"
    assert back.edges["PER:Person0", "PER:Person1", "/per/per/peer"]["source"] == "annotated"
    # the contract holds: the graph can be extended like the session's own
    assert kg.add_relation(back, "PER:Person2", "/per/per/peer", "PER:Person0", 0.8)


def test_threshold_of_the_export_is_what_comes_back(tmp_path):
    kg.write_all(session_graph(), tmp_path, threshold=0.5, stem="g")
    back = kg.read_graph(tmp_path / "g.json")
    assert all(d["score"] >= 0.5 for *_, d in kg.relation_edges(back)) and kg.triples(back)


def test_old_json_exports_without_edge_heads_are_rebuilt_from_their_triples(tmp_path):
    d = kg.to_json_dict(session_graph())
    for e in d["edges"]:
        del e["head"], e["tail"]
    (tmp_path / "old.json").write_text(json.dumps(d), encoding="utf-8")
    back = kg.read_graph(tmp_path / "old.json")
    assert {(t["head_id"], t["relation"], t["tail_id"]) for t in kg.triples(back)} == {
        (t["head_id"], t["relation"], t["tail_id"]) for t in d["triples"]}


def test_wrong_files_are_refused_with_the_reason(tmp_path):
    cases = {
        "other.json": (json.dumps({"nodes": [], "edges": []}), "not an mmre_demo graph export"),
        "broken.json": ("{nope", "not valid JSON"),
        "list.json": ("[1, 2]", "not an mmre_demo graph export"),
        "broken.graphml": ("<graphml><oops", "not a GraphML file"),
        "plain.graphml": ("\n".join(nx.generate_graphml(nx.path_graph(3, create_using=nx.DiGraph))), "has kind None"),
        "undirected.graphml": ("\n".join(nx.generate_graphml(nx.path_graph(3))), "undirected"),
        "data.bin": ("\x00\x01binary", "unknown graph file type"),
    }
    for name, (text, pattern) in cases.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
        with pytest.raises(InputError, match=pattern):
            kg.read_graph(tmp_path / name)
    d = kg.to_json_dict(session_graph())
    d["edges"][0]["head"] = "PER:Nobody"
    (tmp_path / "dangling.json").write_text(json.dumps(d), encoding="utf-8")
    with pytest.raises(InputError, match="unknown node 'PER:Nobody'"):
        kg.read_graph(tmp_path / "dangling.json")
    with pytest.raises(InputError, match="no such graph file"):
        kg.read_graph(tmp_path / "missing.json")


def test_top_degree_view_of_a_large_graph():
    g = kg.new_graph()
    for i in range(400):
        kg.add_entity(g, f"E{i}", "PER")
    for i in range(1, 400):
        kg.add_relation(g, "PER:E0", "/per/per/peer", f"PER:E{i}", 0.9)
        if i % 10 == 0:
            kg.add_relation(g, f"PER:E{i}", "/per/per/peer", f"PER:E{i + 1}", 0.9)
    sub, note = kg.top_degree_view(g, top_n=50)
    assert sub.number_of_nodes() == 50 and "PER:E0" in sub
    assert "50 most connected of 400 nodes" in note and "hidden: 350 nodes, 365 edges" in note
    assert kg.top_degree_view(g, top_n=50)[0].nodes == sub.nodes  # stable
    small, none = kg.top_degree_view(session_graph(), top_n=500)
    assert none is None and small.number_of_nodes() == session_graph().number_of_nodes()
    ents, n2 = kg.top_degree_view(session_graph(), top_n=500, kinds=["entity"])
    assert all(d["kind"] == "entity" for _, d in ents.nodes(data=True)) and n2


def _corpus_graph(n: int = 30) -> nx.MultiDiGraph:
    g = kg.new_graph()
    for i in range(n):
        h, t = kg.add_entity(g, f"P{i}", "PER", f"P{i} at O{i % 5}"), kg.add_entity(g, f"O{i % 5}", "ORG")
        kg.add_relation(g, h, "/per/org/member_of", t, 0.9)
        kg.add_relation(g, h, "/per/per/peer", kg.add_entity(g, f"P{(i + 1) % n}", "PER"), 0.8)
    return g


def test_kge_dataset_and_cli_train_on_an_exported_graph(tmp_path, capsys):
    kg.write_all(_corpus_graph(), tmp_path, stem="graph")
    ds = load_dataset(f"graph:{tmp_path / 'graph.graphml'}")
    assert ds.training.num_triples + ds.validation.num_triples + ds.testing.num_triples == 60
    assert ds.entity_info["PER:P0"].captions == ["P0 at O0"]
    rc = main(["kge", "train", "--dataset", f"graph:{tmp_path / 'graph.json'}", "--model", "distmult",
               "--out", str(tmp_path / "run"), "--epochs", "3", "--json"])
    assert rc == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["dataset"].startswith("graph:") and summary["train_triples"] > 0 and "mrr" in summary["test"]
    assert main(["kge", "eval", "--run", str(tmp_path / "run"), "--json"]) == 0
    assert set(json.loads(capsys.readouterr().out.strip().splitlines()[-1])) == {"mrr", "hits@1", "hits@3", "hits@10"}


def test_kge_cli_refuses_bad_graph_datasets(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["kge", "train", "--dataset", "graph:", "--out", str(tmp_path / "r")])
    assert main(["kge", "train", "--dataset", f"graph:{tmp_path / 'none.json'}", "--out", str(tmp_path / "r")]) == 2
    assert "no such graph file" in capsys.readouterr().err
    kg.write_all(_corpus_graph(), tmp_path, stem="graph")
    assert main(["kge", "train", "--dataset", f"graph:{tmp_path / 'graph.json'}", "--features", "text+image",
                 "--out", str(tmp_path / "r")]) == 2
    assert "carries no image features" in capsys.readouterr().err
    g = kg.new_graph()
    kg.add_entity(g, "Lonely", "PER")
    kg.write_all(g, tmp_path, stem="empty")
    assert main(["kge", "train", "--dataset", f"graph:{tmp_path / 'empty.json'}", "--out", str(tmp_path / "r")]) == 2
    assert "no relation edges" in capsys.readouterr().err
