"""KGE: datasets, training quality, save/load, features, the suggester, the CLI and bad input."""

from __future__ import annotations

import json
import zlib

import networkx as nx
import pytest
import torch

from mmre_demo.data.schema import InputError
from mmre_demo.kge import KgePredictor, evaluate_run, fit, load_dataset, load_run, save_run
from mmre_demo.kge.datasets import dataset_from_graph, dataset_from_triples, mnre_triples, split_triples
from mmre_demo.kge.predict import Suggestion
from mmre_demo.kge.suggest import LinkSuggester, SuggesterStatus
from mmre_demo.kge.training import default_train_config

torch.set_num_threads(1)


def fake_encoder(texts: list[str]) -> torch.Tensor:
    """Deterministic stand-in for MiniLM: a unit vector seeded by the text."""
    rows = [torch.randn(16, generator=torch.Generator().manual_seed(zlib.crc32(t.encode()))) for t in texts]
    return torch.nn.functional.normalize(torch.stack(rows) if rows else torch.zeros(0, 16), dim=-1)


def small_graph() -> nx.MultiDiGraph:
    g = nx.MultiDiGraph()
    people = [f"Person {i}" for i in range(8)]
    orgs = ["Acme Corp", "Zürich Verein", "Globex"]
    for p in people:
        g.add_node(f"PER:{p}", kind="entity", name=p, type="PER", captions=[f"{p} at work"])
    for o in orgs:
        g.add_node(f"ORG:{o}", kind="entity", name=o, type="ORG")
    for i, p in enumerate(people):
        g.add_edge(f"PER:{p}", f"ORG:{orgs[i % 3]}", relation="member of (ünïcode)", score=0.9, source="predicted")
        g.add_edge(f"PER:{p}", f"PER:{people[(i + 1) % 8]}", relation="/per/per/peer", score=0.8, source="annotated")
    g.add_edge("PER:Person 0", "ORG:Globex", relation="bogus", score=0.5, source="suggested")  # must be ignored
    g.add_node("img:1", kind="image", image_feature=[0.5] * 8)
    g.add_edge("img:1", "PER:Person 0", relation="depicts")
    return g


# ------------------------------------------------------------------ datasets

def test_builtin_datasets_load_offline():
    ds = load_dataset("nations")
    assert (ds.training.num_triples, ds.validation.num_triples, ds.testing.num_triples) == (1592, 199, 201)
    assert ds.training.create_inverse_triples


def test_split_is_seeded_and_has_no_inverse_leakage():
    triples = [(f"e{i}", "r", f"e{i + 1}") for i in range(200)] + [(f"e{i + 1}", "r_inv", f"e{i}") for i in range(200)]
    a = split_triples(triples, seed=3)
    assert a == split_triples(triples, seed=3)
    train, val, test, moved = a
    assert moved == 400 and len(train) + len(val) + len(test) == len(triples)
    assert len(test) == 40 and len(val) == 40
    train_pairs = {frozenset((h, t)) for h, _, t in train}
    assert not any(frozenset((h, t)) in train_pairs for h, _, t in val + test)
    val_pairs = {frozenset((h, t)) for h, _, t in val}
    assert not any(frozenset((h, t)) in val_pairs for h, _, t in test)


def test_mnre_file_gold_triples_and_types(tmp_path):
    lines = [
        "{'token': ['Bill', 'Cosby', 'at', 'Hollywood'], 'h': {'name': 'Bill Cosby', 'pos': [0, 2]}, "
        "'t': {'name': 'Hollywood', 'pos': [3, 4]}, 'img_id': 'a.jpg', 'relation': '/per/misc/present_in'}",
        "{'token': ['Bill', 'and', 'Ann'], 'h': {'name': 'Bill', 'pos': [0, 1]}, "
        "'t': {'name': 'Ann', 'pos': [2, 3]}, 'img_id': 'b.jpg', 'relation': 'None'}",
    ]
    f = tmp_path / "m.txt"
    f.write_text("\n".join(lines), encoding="utf-8")
    triples, info, records = mnre_triples(f)
    assert triples == [("PER:Bill Cosby", "/per/misc/present_in", "MISC:Hollywood")]
    assert info["MISC:Hollywood"].type == "MISC" and len(records) == 1


def test_graph_triples_skip_suggested_and_keep_unicode_relations():
    ds = dataset_from_graph(small_graph())
    assert "bogus" not in ds.relation_to_id
    assert "member of (ünïcode)" in ds.relation_to_id
    assert ds.training.num_triples == 16
    assert ds.entity_info["PER:Person 0"].image_feature is not None  # from the depicting image node


# ------------------------------------------------------------------ training quality (a known result)

@pytest.fixture(scope="module")
def nations_run():
    return fit(load_dataset("nations"), "complex")


def test_complex_on_nations_is_well_trained(nations_run):
    m = evaluate_run(nations_run, "test")
    # 14 entities: a random ranking gives MRR ~0.23; PyKEEN-pipeline ComplEx with the same settings ~0.8
    assert m["mrr"] > 0.6, m
    assert m["hits@10"] > 0.95, m
    assert nations_run.info["train"]["stopped_by"] == "early stopping"


def test_save_load_round_trip_without_pickle(nations_run, tmp_path):
    save_run(nations_run, tmp_path / "run")
    names = sorted(p.name for p in (tmp_path / "run").iterdir())
    assert names == ["model.safetensors", "run.json", "triples.safetensors"]
    loaded = load_run(tmp_path / "run")
    assert evaluate_run(loaded)["mrr"] == pytest.approx(evaluate_run(nations_run)["mrr"], abs=1e-6)
    p = KgePredictor(loaded)
    head = loaded.entity_labels[0]
    tails = p.predict_tails(head, loaded.relation_labels[0], k=3)
    assert len(tails) == 3 and tails[0].score >= tails[1].score and tails[0].known is not None
    assert len(p.predict_heads(loaded.relation_labels[0], head, k=2)) == 2
    assert len(p.predict_relations(head, loaded.entity_labels[1], k=4)) == 4


def test_load_refuses_a_non_run_folder(tmp_path):
    with pytest.raises(InputError, match="not a KGE run folder"):
        load_run(tmp_path)


# ------------------------------------------------------------------ multimodal features

def test_text_and_image_features_train_save_and_load(tmp_path):
    ds = dataset_from_graph(small_graph())
    cfg = default_train_config("distmult", max_epochs=5)
    run = fit(ds, "distmult", "text+image", train_config=cfg, text_encoder=fake_encoder)
    assert run.model_config.feature_dim == 16 + 8 + 1
    loaded = load_run(save_run(run, tmp_path / "mm"))
    a = KgePredictor(run).suggest_links("PER:Person 0", k=3)
    b = KgePredictor(loaded).suggest_links("PER:Person 0", k=3)
    assert a == b and len(a) == 3


def test_unseen_entity_is_placed_by_its_features_only():
    from mmre_demo.kge.datasets import _factory
    from mmre_demo.kge.models import ModelConfig, build_model

    triples = [("PER:a", "r", "ORG:x"), ("PER:b", "r", "ORG:x")]
    e2id = {"ORG:x": 0, "PER:a": 1, "PER:b": 2, "PER:z": 3}  # z is held out: never in training
    tf = _factory(triples, e2id, {"r": 0})
    feats = fake_encoder(list(e2id))
    model = build_model(ModelConfig(model="complex", embedding_dim=4, features="text"), tf, feats, random_seed=0)
    rep = model.entity_representations[0]
    assert rep.seen.flatten().tolist() == [1.0, 1.0, 1.0, 0.0]
    torch.nn.init.normal_(rep.projection.weight)
    z = rep(torch.tensor([3]))
    expected = torch.view_as_complex(rep.projection(feats[3:4] * rep.feature_scale).view(1, 4, 2))
    assert torch.allclose(z, expected)  # no random structural part for the unseen entity


# ------------------------------------------------------------------ bad input

def test_empty_graph_and_empty_triples_are_refused_clearly():
    g = nx.MultiDiGraph()
    g.add_node("PER:a", kind="entity", name="a", type="PER")
    with pytest.raises(InputError, match="no relation edges"):
        dataset_from_graph(g)
    with pytest.raises(InputError, match="empty"):
        dataset_from_triples("x", [])
    with pytest.raises(InputError, match="three non-empty strings"):
        dataset_from_triples("x", [("a", "", "b")])


def test_single_triple_trains_and_unknown_entity_is_explained():
    ds = dataset_from_triples("one", [("PER:Ann Lee", "knows", "PER:Bo")], holdout=False)
    run = fit(ds, "transe", train_config=default_train_config("transe", max_epochs=3))
    p = KgePredictor(run)
    rows = p.suggest_links("PER:Ann Lee", k=5)  # known triple and self-loops excluded: only the reverse is left
    assert [(r.head, r.relation, r.tail) for r in rows] == [("PER:Bo", "knows", "PER:Ann Lee")]
    with pytest.raises(InputError, match="did you mean 'PER:Ann Lee'"):
        p.suggest_links("PER:Ann Le")
    with pytest.raises(InputError, match="no 'test' triples"):
        evaluate_run(run, "test")


# ------------------------------------------------------------------ the app's suggester

def test_suggester_before_and_with_an_empty_graph():
    s = LinkSuggester(text_encoder=fake_encoder)
    rows, msg = s.suggest_with_message("PER:x")
    assert rows == [] and "No suggestions" in msg
    assert s.refresh(nx.MultiDiGraph()) is False
    assert s.status().state == "empty" and s.suggest("PER:x") == []


def test_suggester_trains_in_background_and_answers_fast():
    g = small_graph()
    s = LinkSuggester(text_encoder=fake_encoder, max_epochs=20)  # the app's default: text+image features
    assert s.refresh(g) is True
    assert s.status().state == "training"  # returned before training ended (timings: benchmarks/bench_kge.py)
    assert s.refresh(g) is False  # same graph: nothing to do
    assert s.wait(timeout=120)
    st = s.status()
    assert st.state == "ready" and st.features == "text+image", st
    rows, msg = s.suggest_with_message("PER:Person 0", k=5)
    assert msg == "" and len(rows) == 5
    assert set(rows[0].to_dict()) == {"rank", "head", "relation", "tail", "score"}
    existing = {(u, d["relation"], v) for u, v, d in g.edges(data=True) if d.get("source") != "suggested"}
    assert not any((r.head, r.relation, r.tail) in existing for r in rows)
    assert all("PER:Person 0" in (r.head, r.tail) for r in rows)
    rows, msg = s.suggest_with_message("PER:Nobody")
    assert rows == [] and "not in the embedded graph" in msg


# ------------------------------------------------------------------ CLI

def test_cli_train_eval_suggest(tmp_path, capsys):
    from mmre_demo.cli import main

    out = tmp_path / "nations"
    assert main(["kge", "train", "--dataset", "nations", "--model", "distmult", "--epochs", "10",
                 "--out", str(out)]) == 0
    capsys.readouterr()
    assert main(["kge", "eval", "--run", str(out), "--json"]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    m = json.loads(last)
    assert set(m) == {"mrr", "hits@1", "hits@3", "hits@10"} and 0 < m["mrr"] <= 1
    assert main(["kge", "suggest", "--run", str(out), "--entity", "usa", "-k", "2", "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out.strip().splitlines()[-1])) == 2
    assert main(["kge", "suggest", "--run", str(out), "--entity", "atlantis"]) == 2
    assert "unknown entity 'atlantis'" in capsys.readouterr().err
    assert main(["kge", "train", "--dataset", "umls", "--features", "text", "--out", str(tmp_path / "x")]) == 2


def test_mnre_dataset_from_shared_data(shared_data):
    ds = load_dataset("mnre", mnre_train=shared_data / "mnre" / "mnre_val.txt")
    train = {tuple(t) for t in ds.training.triples.tolist()}
    test = ds.testing.triples.tolist()
    pairs = {frozenset((h, t)) for h, _, t in train}
    assert test and not any(frozenset((h, t)) in pairs for h, _, t in test)


def test_time_budget_stops_mid_epoch():
    ds = load_dataset("nations")
    ds.validation = None
    cfg = default_train_config("complex", batch_size=8, max_epochs=50, time_budget_s=0.0)
    run = fit(ds, "complex", train_config=cfg)
    assert run.info["train"]["stopped_by"].startswith("time budget (mid-epoch")
    assert len(KgePredictor(run).suggest_links("usa", k=3)) == 3  # a partly trained model still answers


@pytest.mark.parametrize("model", ["complex", "distmult", "transe"])
def test_fast_scoring_matches_pykeen(model):
    ds = load_dataset("nations")
    run = fit(ds, model, train_config=default_train_config(model, max_epochs=2))
    p = KgePredictor(run)
    R = len(run.relation_labels)
    hr = torch.stack([torch.full((R,), 3), torch.arange(R)], dim=1)
    rt = torch.stack([torch.arange(R), torch.full((R,), 5)], dim=1)
    with torch.inference_mode():
        # predict_t / predict_h map relation r to its internal row (2r, inverse 2r+1) as evaluation does
        assert torch.allclose(p._tail_scores(3), p._norm(run.model.predict_t(hr)), atol=1e-5)
        assert torch.allclose(p._head_scores(5), p._norm(run.model.predict_h(rt)), atol=1e-5)


def test_feature_projection_starts_at_zero_even_after_pykeen_resets_parameters():
    """PyKEEN re-initialises every submodule when training starts; W must stay zero (training starts
    from the plain model), while the structural embeddings do get a fresh init."""
    from mmre_demo.kge.models import ModelConfig, build_model

    ds = load_dataset("nations")
    feats = torch.randn(ds.training.num_entities, 16)
    net = build_model(ModelConfig(model="complex", embedding_dim=8, features="text"), ds.training, feats, random_seed=0)
    rep = net.entity_representations[0]
    before = rep.base._embeddings.weight.detach().clone()
    net.reset_parameters_()
    assert torch.count_nonzero(rep.projection.weight) == 0
    assert not torch.equal(before, rep.base._embeddings.weight)


def test_batched_lcwa_instances_match_pykeens_rows():
    """The batch-at-a-time fetch must give PyKEEN's own (pair, dense target) rows, in the loader's order."""
    from pykeen.triples import LCWAInstances
    from torch.utils.data import DataLoader

    from mmre_demo.kge.training import BatchedLCWATrainingLoop

    ds = load_dataset("nations")
    model = fit(ds, "distmult", train_config=default_train_config("distmult", max_epochs=1, eval_every=0)).model
    loop = BatchedLCWATrainingLoop(model=model, triples_factory=ds.training)
    ours = loop._create_training_data_loader(ds.training, None, batch_size=64, shuffle=False, drop_last=False)
    plain = DataLoader(LCWAInstances.from_triples_factory(ds.training), batch_size=64, shuffle=False)
    n = 0
    for a, b in zip(ours, plain):
        assert torch.equal(a["pairs"], b["pairs"]) and torch.equal(a["target"], b["target"])
        n += a["pairs"].shape[0]
    assert n == len(plain.dataset) and n > 64


# ------------------------------------------------------------------ type rule (issue 23)

def typed_graph() -> nx.MultiDiGraph:
    """People in clubs in cities, events held in cities, and one entity of unknown type."""
    from mmre_demo import graph as kg

    g = kg.new_graph()
    people = [kg.add_entity(g, f"Person {i}", "PER", f"Person {i} plays") for i in range(12)]
    clubs = [kg.add_entity(g, f"Club {i}", "ORG") for i in range(4)]
    cities = [kg.add_entity(g, f"City {i}", "LOC") for i in range(3)]
    events = [kg.add_entity(g, f"Cup {i}", "MISC") for i in range(3)]
    for i, p in enumerate(people):
        kg.add_relation(g, p, "/per/org/member_of", clubs[i % 4], 0.9)
        kg.add_relation(g, p, "/per/per/peer", people[(i + 1) % 12], 0.8)
        kg.add_relation(g, p, "/per/loc/place_of_residence", cities[i % 3], 0.7)
    for i, c in enumerate(clubs):
        kg.add_relation(g, c, "/org/loc/locate_at", cities[i % 3], 0.9)
    for i, e in enumerate(events):
        kg.add_relation(g, e, "/misc/loc/held_on", cities[i], 0.9)
    g.add_node("Thing", kind="entity", name="Thing", type="", captions=[])  # no type in its id
    g.add_edge("Thing", people[0], key="/per/per/peer", relation="/per/per/peer", score=0.6, source="predicted",
               count=1, captions=[])
    g.add_edge("Thing", clubs[0], key="related", relation="related", score=0.6, source="predicted", count=1,
               captions=[])
    return g


@pytest.fixture(scope="module")
def typed_run():
    from mmre_demo.kge.datasets import dataset_from_graph

    ds = dataset_from_graph(typed_graph())
    return fit(ds, "complex", train_config=default_train_config("complex", sparse=True, max_epochs=15))


def test_suggested_links_obey_the_relation_type_rule(typed_run):
    from mmre_demo.kge.predict import fits_types

    strict, loose = KgePredictor(typed_run), KgePredictor(typed_run, respect_types=False)
    rows = [r for e in typed_run.entity_labels for r in strict.suggest_links(e, k=40)]
    assert len(rows) > 100 and not [r for r in rows if not fits_types(r.head, r.relation, r.tail)]
    assert [r.rank for r in strict.suggest_links("PER:Person 0", k=3)] == [1, 2, 3]
    # without the rule the same model suggests type-breaking triples: the check above can fail
    loose_rows = [r for e in typed_run.entity_labels for r in loose.suggest_links(e, k=40)]
    assert any(not fits_types(r.head, r.relation, r.tail) for r in loose_rows)


def test_tail_head_and_relation_queries_obey_the_type_rule_too(typed_run):
    from mmre_demo.kge.predict import fits_types

    p = KgePredictor(typed_run)
    tails = p.predict_tails("PER:Person 0", "/per/org/member_of", k=30)
    assert tails and all(r.tail.startswith("ORG:") for r in tails)
    heads = p.predict_heads("/org/loc/locate_at", "LOC:City 0", k=30)
    assert heads and all(r.head.startswith("ORG:") for r in heads)
    assert all(fits_types(r.head, r.relation, r.tail) for r in p.predict_relations("PER:Person 0",
                                                                                             "LOC:City 1", k=20))
    assert p.predict_tails("LOC:City 0", "/per/org/member_of") == []  # a city is no member of anything


def test_an_entity_of_unknown_type_only_takes_untyped_relations(typed_run):
    p = KgePredictor(typed_run)
    for e in typed_run.entity_labels:
        for r in p.suggest_links(e, k=40):
            if "Thing" in (r.head, r.tail):
                assert r.relation == "related", r


def test_cli_suggest_on_a_corpus_graph_breaks_no_type_rule(tmp_path, capsys):
    from mmre_demo import graph as kg
    from mmre_demo.cli import main
    from mmre_demo.kge.predict import fits_types

    path = next(p for p in kg.write_all(typed_graph(), tmp_path, 0.0) if p.endswith(".json"))
    out = tmp_path / "run"
    assert main(["kge", "train", "--dataset", f"graph:{path}", "--epochs", "10", "--out", str(out)]) == 0
    capsys.readouterr()
    bad = []
    for e in ("PER:Person 0", "ORG:Club 1", "LOC:City 2", "MISC:Cup 0"):
        assert main(["kge", "suggest", "--run", str(out), "--entity", e, "-k", "10", "--json"]) == 0
        rows = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
        assert len(rows) == 10
        assert [Suggestion.from_dict(r).to_dict() for r in rows] == rows and set(rows[0]) == {
            "rank", "head", "relation", "tail", "score"}
        bad += [r for r in rows if not fits_types(r["head"], r["relation"], r["tail"])]
    assert bad == []
    assert main(["kge", "suggest", "--run", str(out), "--entity", "PER:Person 0", "-k", "2"]) == 0
    text = capsys.readouterr().out
    assert "held-out quality of this run: MRR" in text and "#1  " in text and "not a probability" in text


def test_suggester_says_a_graph_is_too_small_to_embed():
    from mmre_demo import graph as kg

    g = kg.new_graph()
    kg.add_relation(g, kg.add_entity(g, "A", "PER"), "/per/per/peer", kg.add_entity(g, "B", "PER"), 0.9)
    s = LinkSuggester(text_encoder=fake_encoder)
    assert s.refresh(g) is False
    st = s.status()
    assert st.state == "small" and "too small to embed" in st.message and "1 relation " in st.message


def test_suggester_reports_held_out_quality_and_ranks():
    s = LinkSuggester(features="none", max_epochs=15, time_budget_s=30)
    assert s.refresh(typed_graph()) is True
    st = s.status()
    assert st.state == "training" and st.budget_s == 30 and st.elapsed_s >= 0
    assert s.wait(120)
    st = s.status()
    assert st.state == "ready" and 0 < st.mrr <= 1 and 0 <= st.hits_at_10 <= 1 and st.held_out >= 1
    assert "held-out MRR" in s.quality_text()
    assert st.to_dict()["hits@10"] == st.hits_at_10 and SuggesterStatus.from_dict(st.to_dict()) == st
    rows, msg = s.suggest_with_message("PER:Person 3", k=5)
    assert msg == "" and [r.rank for r in rows] == [1, 2, 3, 4, 5]
