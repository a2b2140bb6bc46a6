"""Entity-name substitution (train/name_swap.py): renamed consistently per caption, spans and labels kept."""

from __future__ import annotations

import random

import pytest

from mmre_demo.data.mnre import MnreExample
from mmre_demo.data.schema import Entity
from mmre_demo.train.name_swap import label_types, name_pool, swap_names


def _example(caption: str, head: str, tail: str, relation: str, head_type: str = "", tail_type: str = "",
             img_id: str | None = None) -> MnreExample:
    h, t = caption.index(head), caption.index(tail)
    return MnreExample(caption, Entity(head, h, h + len(head), head_type), Entity(tail, t, t + len(tail), tail_type),
                       relation, img_id, tuple(caption.split(" ")))


CAPTION = "Rafael Nadal wins in Paris with Toni Nadal watching"
GROUP = [_example(CAPTION, "Rafael Nadal", "Paris", "/per/loc/place_of_residence"),
         _example(CAPTION, "Toni Nadal", "Rafael Nadal", "/per/per/peer"),
         _example(CAPTION, "Paris", "Toni Nadal", "None")]
POOL = {"PER": ["Serena Williams", "Li Na"], "LOC": ["Kyiv", "Rio de Janeiro"]}


def test_label_types() -> None:
    assert label_types("/per/org/member_of") == ("PER", "ORG")
    assert label_types("/misc/loc/held_on") == ("MISC", "LOC")
    assert label_types("None") == ("", "")


def test_every_entity_renamed_consistently_and_spans_point_at_the_new_names() -> None:
    out = swap_names(GROUP, POOL, rate=1.0, rng=random.Random(0))
    assert len({ex.caption for ex in out}) == 1  # one text for all pairs of the caption
    caption = out[0].caption
    assert "Rafael Nadal" not in caption and "Toni Nadal" not in caption and "Paris" not in caption
    for old, new in zip(GROUP, out):
        assert new.relation == old.relation and new.img_id == old.img_id
        for ent in (new.head, new.tail):
            assert caption[ent.start:ent.end] == ent.text
    assert out[0].head.text == out[1].tail.text  # the same entity, the same new name in every pair
    assert out[0].tail.text in POOL["LOC"] and out[1].head.text in POOL["PER"]
    assert caption.endswith(" watching") and " wins in " in caption


def test_rate_zero_and_unknown_types_keep_the_names() -> None:
    assert swap_names(GROUP, POOL, rate=0.0, rng=random.Random(0)) == GROUP
    untyped = [_example("Foo met Bar today", "Foo", "Bar", "None")]
    assert swap_names(untyped, POOL, rate=1.0, rng=random.Random(0)) == untyped


def test_overlapping_spans_are_left_alone() -> None:
    caption = "New York Knicks beat Boston"
    group = [_example(caption, "New York Knicks", "Boston", "/org/loc/locate_at"),
             _example(caption, "New York", "Boston", "/loc/loc/contain")]
    out = swap_names(group, {"ORG": ["Lakers"], "LOC": ["Oslo"]}, rate=1.0, rng=random.Random(0))
    assert out[0].head.text == "New York Knicks" and out[1].head.text == "New York"
    assert out[0].tail.text == "Oslo" and out[0].caption == "New York Knicks beat Oslo"


def test_name_pool_types_from_entities_and_labels() -> None:
    pool = name_pool(GROUP + [_example("Kyiv and NATO", "Kyiv", "NATO", "None", "LOC", "ORG")])
    assert pool == {"PER": ["Rafael Nadal", "Toni Nadal"], "LOC": ["Kyiv", "Paris"], "ORG": ["NATO"]}


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_one_seed_one_draw(seed: int) -> None:
    a = swap_names(GROUP, POOL, rate=0.5, rng=random.Random(seed))
    b = swap_names(GROUP, POOL, rate=0.5, rng=random.Random(seed))
    assert a == b
