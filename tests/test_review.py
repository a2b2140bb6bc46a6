"""The review queue: ordering by worth, claims (two annotators never hold one item), decisions only
from the claim's holder and stored once, skip, undo, progress kept across restarts; agreement."""

from __future__ import annotations

import threading
import time

import pytest

from mmre_demo.annotations import AnnotationStore
from mmre_demo.annotations.agreement import agreement, cohen_kappa
from mmre_demo.annotations.review import Reason, ReviewPost, ReviewQueues, review_items, worth
from mmre_demo.data.schema import Entity, InputError
from mmre_demo.prediction import PairPrediction, Prediction

THR = 0.4


def post(i: int, probs: list[float], reverse: tuple[str, float] | None = None) -> ReviewPost:
    """A post 'Ann{i} works for Org{i} in City{i}' whose pairs have the given probabilities."""
    cap = f"Ann{i} works for Org{i} in City{i} ."
    per = Entity(f"Ann{i}", 0, len(f"Ann{i}"), "PER")
    o = cap.index(f"Org{i}")
    org = Entity(f"Org{i}", o, o + len(f"Org{i}"), "ORG")
    c = cap.index(f"City{i}")
    loc = Entity(f"City{i}", c, c + len(f"City{i}"), "LOC")
    pairs = [PairPrediction(per, org, "/per/org/member_of", probs[0], [("/per/org/member_of", probs[0])],
                            reverse=reverse),
             PairPrediction(per, loc, "/per/loc/place_of_residence", probs[1],
                            [("/per/loc/place_of_residence", probs[1]), ("/per/loc/place_of_birth", 0.1)])]
    pred = Prediction(caption=cap, entities=[per, org, loc], pairs=pairs, concepts=[], has_image=False,
                      image_size=None, device="cpu", threshold=THR)
    return ReviewPost(f"p{i}", pred)


@pytest.fixture
def queues(tmp_path):
    return ReviewQueues(AnnotationStore(tmp_path / "a.sqlite3"))


def test_items_are_ordered_by_worth_uncertain_first_below_threshold_last():
    items = review_items([post(0, [0.95, 0.42]), post(1, [0.1, 0.6], reverse=("/org/loc/locate_at", 0.5))], THR)
    got = [(it.post_id, it.probability, it.reason) for it in items]
    assert got[0] == ("p0", 0.42, Reason.NEAR_THRESHOLD)
    assert got[1] == ("p1", 0.1, Reason.DIRECTIONS_DISAGREE)  # far below, but its two directions disagree
    assert [g[1] for g in got[2:]] == [0.6, 0.95]
    assert worth("/per/org/member_of", 0.39, THR, None) == pytest.approx((1 - 0.01 / 0.6 - 1.0, Reason.MISSED))


def test_relabel_offers_only_labels_that_fit_the_pair():
    item = review_items([post(0, [0.9, 0.9])], THR)[1]  # PER -> LOC
    assert item.relabel_choices()[0] == "/per/loc/place_of_birth"  # the model's alternative first
    assert all(lab.startswith("/per/loc/") for lab in item.relabel_choices())


def test_a_queue_walks_every_item_once_and_progress_survives_a_restart(queues, tmp_path):
    info = queues.create("corpus", review_items([post(i, [0.5, 0.3]) for i in range(3)], THR))
    seen = []
    for _ in range(3):
        c = queues.next(info.id, "ann")
        seen.append(c.position)
        queues.decide(info.id, c.position, "ann", "accept")
    again = ReviewQueues(AnnotationStore(tmp_path / "a.sqlite3"))  # the app restarts
    assert again.progress(info.id, "ann").text() == "3 of 6 reviewed"
    assert again.create("corpus", review_items([post(i, [0.5, 0.3]) for i in range(3)], THR)).id == info.id
    rest = []
    while (c := again.next(info.id, "ann")) is not None:
        rest.append(c.position)
        again.decide(info.id, c.position, "ann", "reject")
    assert sorted(seen + rest) == list(range(6))
    assert again.progress(info.id, "ann").reviewed == 6


def test_two_annotators_never_hold_the_same_item(queues):
    info = queues.create("c", review_items([post(i, [0.5, 0.3]) for i in range(10)], THR))
    held: dict[str, list[int]] = {"a": [], "b": []}
    errors = []

    def walk(who: str) -> None:
        try:
            while queues.undecided(info.id, who):
                c = queues.next(info.id, who)
                if c is None:  # the rest is in the other's hands right now
                    time.sleep(0.01)
                    continue
                held[who].append(c.position)
                queues.decide(info.id, c.position, who, "accept")
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=walk, args=(w,)) for w in held]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    # each walks the whole queue (both decide every item: agreement needs it), each decision stored once
    assert sorted(held["a"]) == sorted(held["b"]) == list(range(20))
    assert queues.store.count() == 40 and len(queues.store.current()) == 40


def test_an_item_held_by_one_annotator_is_not_handed_to_another(queues):
    info = queues.create("c", review_items([post(0, [0.5, 0.3])], THR))
    a = queues.next(info.id, "a")
    b = queues.next(info.id, "b")
    assert b.position != a.position
    assert queues.next(info.id, "c") is None  # both items held right now
    with pytest.raises(InputError, match="not yours"):
        queues.decide(info.id, a.position, "b", "accept")
    queues.decide(info.id, a.position, "a", "accept")
    with pytest.raises(InputError, match="not yours"):  # a double click stores nothing twice
        queues.decide(info.id, a.position, "a", "accept")
    assert queues.store.count() == 1


def test_skip_puts_the_item_last_and_undo_hands_it_back(queues):
    info = queues.create("c", review_items([post(i, [0.5, 0.3]) for i in range(2)], THR))
    first = queues.next(info.id, "a")
    queues.skip(info.id, first.position, "a")
    second = queues.next(info.id, "a")
    assert second.position != first.position
    queues.decide(info.id, second.position, "a", "relabel", "/per/loc/place_of_birth"
                  if second.item.tail.type == "LOC" else "/per/org/member_of")
    back = queues.undo(info.id, "a")
    assert back.position == second.position and back.progress.reviewed == 0
    assert queues.store.current("a") == [] and queues.store.count() == 1  # history kept, nothing stands
    positions = []
    while (c := queues.next(info.id, "a")) is not None:
        positions.append(c.position)
        queues.decide(info.id, c.position, "a", "reject")
    assert positions[-1] == first.position  # the skipped item comes last


def test_the_queue_needs_a_name_and_refuses_type_breaking_relabels(queues):
    info = queues.create("c", review_items([post(0, [0.5, 0.3])], THR))
    with pytest.raises(InputError, match="annotator name"):
        queues.next(info.id, "  ")
    c = queues.next(info.id, "a")
    with pytest.raises(InputError, match="needs a PER head and a MISC tail"):
        queues.decide(info.id, c.position, "a", "relabel", "/per/misc/nationality")
    with pytest.raises(InputError, match="choose it"):
        queues.decide(info.id, c.position, "a", "relabel", None)
    assert queues.store.count() == 0


def test_cohen_kappa_matches_a_hand_computed_value():
    a = ["x", "x", "y", "y", "x", "y"]
    b = ["x", "y", "y", "y", "x", "x"]
    ag = cohen_kappa(a, b)
    # p_o = 4/6; p_e = (3*3 + 3*3) / 36 = 0.5; kappa = (2/3 - 1/2) / (1/2) = 1/3
    assert ag.raw == pytest.approx(4 / 6) and ag.kappa == pytest.approx(1 / 3)
    assert cohen_kappa(["x", "x"], ["x", "x"]).kappa is None  # chance agreement is certain


def test_agreement_compares_the_pairs_two_annotators_decided(queues):
    info = queues.create("c", review_items([post(i, [0.5, 0.3]) for i in range(2)], THR))
    for who, decisions in (("a", ["accept", "accept", "reject", "reject"]), ("b", ["accept", "reject", "reject",
                                                                                  "reject"])):
        for d in decisions:
            c = queues.next(info.id, who)
            queues.decide(info.id, c.position, who, d)
    (pair,) = agreement(queues.store.current())
    assert (pair.first, pair.second, pair.overall.items) == ("a", "b", 4)
    assert pair.overall.raw == pytest.approx(0.75)
    assert set(pair.per_relation) >= {"None"}
