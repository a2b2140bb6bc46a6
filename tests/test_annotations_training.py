"""Decisions back into training: one example per pair (majority, ties to the latest), decisions simulated
from gold labels, and `mmre train --annotations DB` fine-tuning the shipped model the decided way."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest

from mmre_demo.annotations import AnnotationStore, Candidate
from mmre_demo.annotations.training import decision_examples, simulate_decision
from mmre_demo.cli import main
from mmre_demo.data.mnre import parse_mnre_line
from mmre_demo.data.schema import Entity

CAP = "Astronaut Eileen Collins of NASA poses in Houston, Texas."
PER = Entity("Eileen Collins", 10, 24, "PER")
ORG = Entity("NASA", 28, 32, "ORG")


def test_one_example_per_pair_majority_then_latest(tmp_path):
    st = AnnotationStore(tmp_path / "a.sqlite3")
    c = Candidate(CAP, None, PER, ORG, "/per/org/member_of", 0.9)
    st.add(c, "accept", annotator="a")
    st.add(c, "reject", annotator="b")
    assert [e.relation for e in decision_examples(st.current())] == ["None"]  # 1:1, the latest wins
    st.add(c, "accept", annotator="c")
    examples = decision_examples(st.current())
    assert [(e.head.text, e.tail.text, e.relation) for e in examples] == [("Eileen Collins", "NASA",
                                                                           "/per/org/member_of")]


def test_simulated_annotator_accepts_rejects_and_relabels_against_gold():
    line = ("{'token': ['Bob', 'lives', 'in', 'Paris'], 'h': {'name': 'Bob', 'pos': [0, 1]}, "
            "'t': {'name': 'Paris', 'pos': [3, 4]}, 'img_id': 'x.jpg', 'relation': '/per/loc/place_of_residence'}")
    ex = parse_mnre_line(line)
    right = simulate_decision(ex, "/per/loc/place_of_residence")
    wrong = simulate_decision(ex, "/per/loc/place_of_birth")
    assert (right.decision, wrong.decision, wrong.new_label) == ("accept", "relabel", "/per/loc/place_of_residence")
    assert (wrong.candidate.head.type, wrong.candidate.tail.type) == ("PER", "LOC")
    gold_none = parse_mnre_line(line.replace("/per/loc/place_of_residence", "None"))
    none = simulate_decision(gold_none, "/per/loc/place_of_birth")
    assert none.decision == "reject" and none.candidate.decide(none.decision, none.new_label) == "None"


FIRST = ["Anna", "Tom", "Maria", "Ken", "Sara", "Omar", "Lena", "Ivan", "Rosa", "Paul"]
LAST = ["Berg", "Lee", "Costa", "Ito", "Novak", "Haddad", "Weber", "Petrov", "Silva", "Moreau"]
PLACES = ["Oslo", "Lima", "Cairo", "Perth", "Quito", "Hanoi", "Dakar", "Turin", "Bergen", "Austin"]


def synthetic_decisions(n_captions: int, seed: int) -> list[tuple[Candidate, str, str | None, str]]:
    """Captions "P was born in L , says Q": P -> L relabelled to place_of_birth, Q -> L rejected (the model
    had said residence), P -> Q relabelled to siblings: what one annotator decided on 3 pairs each."""
    rng = random.Random(seed)
    out = []
    for _ in range(n_captions):
        p, q = (f"{rng.choice(FIRST)} {rng.choice(LAST)}" for _ in range(2))
        if p == q:
            continue
        place = rng.choice(PLACES)
        cap = f"{p} was born in {place} , says {q}"
        ep = Entity(p, 0, len(p), "PER")
        el = Entity(place, cap.index(place), cap.index(place) + len(place), "LOC")
        eq = Entity(q, len(cap) - len(q), len(cap), "PER")
        out += [(Candidate(cap, None, ep, el, "/per/loc/place_of_residence", 0.6), "relabel",
                 "/per/loc/place_of_birth", "synthetic"),
                (Candidate(cap, None, eq, el, "/per/loc/place_of_residence", 0.5), "reject", None, "synthetic"),
                (Candidate(cap, None, ep, eq, "None", 0.3), "relabel", "/per/per/siblings", "synthetic")]
    return out


def _decided_probability(weights: Path, examples) -> tuple[float, float]:
    """Mean calibrated probability of the decided relation, and the share of pairs whose top relation it is."""
    import torch

    from mmre_demo.model.batching import predict_logits, prepare_items
    from mmre_demo.model.relation import RelationModel

    model = RelationModel.from_pretrained(weights, device="cpu")
    probs = model.probabilities(torch.from_numpy(predict_logits(model, prepare_items(model, examples, None), None)))
    want = np.array([model.config.labels.index(e.relation) for e in examples])
    probs = probs.numpy()
    return float(probs[np.arange(len(want)), want].mean()), float((probs.argmax(1) == want).mean())


@pytest.mark.slow
def test_fine_tuning_on_decisions_moves_the_shipped_model_the_decided_way(tmp_path, shipped_relation_dir):
    db = tmp_path / "decisions.sqlite3"
    store = AnnotationStore(db)
    assert store.add_many(synthetic_decisions(100, seed=3), source="test") >= 290
    val = tmp_path / "val.txt"  # selection and calibration see the decided pairs, as no other labels exist here
    store.export_mnre(val)
    out = tmp_path / "tuned"
    assert main(["train", "--annotations", str(db), "--val", str(val), "--out", str(out), "--epochs", "2",
                 "--batch-size", "8", "--lr", "4e-4", "--head-lr", "1e-3", "--select-on", "gold",
                 "--device", "cpu"]) == 0
    examples = decision_examples(store.current())
    before_p, before_top = _decided_probability(shipped_relation_dir, examples)
    after_p, after_top = _decided_probability(out / "best", examples)
    assert after_p > before_p + 0.2, (before_p, after_p)
    assert after_top > before_top, (before_top, after_top)


def test_annotations_never_train_into_the_shipped_weights(tmp_path, capsys, shipped_relation_dir):
    db = tmp_path / "d.sqlite3"
    store = AnnotationStore(db)
    store.add_many(synthetic_decisions(2, seed=1), source="test")
    val = store.export_mnre(tmp_path / "val.txt")
    assert val
    code = main(["train", "--annotations", str(db), "--val", str(tmp_path / "val.txt"),
                 "--out", str(shipped_relation_dir / "run")])
    assert code == 2 and "inside the shipped weights" in capsys.readouterr().err
    assert not (shipped_relation_dir / "run").exists()


def test_an_empty_or_missing_store_is_refused(tmp_path, capsys):
    empty = tmp_path / "empty.sqlite3"
    AnnotationStore(empty)
    val = tmp_path / "v.txt"
    val.write_text("")
    for db, why in ((empty, "no standing decisions"), (tmp_path / "typo.sqlite3", "no such annotation store")):
        assert main(["train", "--annotations", str(db), "--val", str(val), "--out", str(tmp_path / "o")]) == 2
        assert why in capsys.readouterr().err
    assert main(["train", "--val", str(val), "--out", str(tmp_path / "o")]) == 2
    assert "--train FILE" in capsys.readouterr().err
