"""Training pairs shaped like the product's input: reverse and silver labels."""

from __future__ import annotations

from mmre_demo.data.mnre import MnreExample
from mmre_demo.data.product_pairs import build_product_pairs
from mmre_demo.data.schema import Entity

CAP = "RT @Titans : Marcus Mariota and Derrick Henry beat Houston"


def ent(text: str) -> Entity:
    i = CAP.index(text)
    return Entity(text, i, i + len(text))


def line(h: str, t: str, rel: str) -> MnreExample:
    return MnreExample(CAP, ent(h), ent(t), rel, "x.jpg", tuple(CAP.split()), 1)


GOLD = [line("Marcus Mariota", "@Titans", "/per/org/member_of"),
        line("Marcus Mariota", "Derrick Henry", "/per/per/peer"),
        line("Derrick Henry", "Houston", "None")]
DETECTED = {CAP: [ent("Titans"), ent("Mariota"), ent("Derrick Henry"), ent("RT")]}


def labels(pairs: list[tuple[str, MnreExample]]) -> dict[tuple[str, str], str]:
    return {(p.head.text, p.tail.text): p.relation for _, p in pairs}


def test_gold_lines_come_first_and_unchanged():
    pairs, counts = build_product_pairs(GOLD, DETECTED, ["gold"])
    assert pairs == [("gold", g) for g in GOLD] and counts == {"gold": 3, "gold_relation": 2}


def test_reverse_of_asymmetric_is_none_and_of_symmetric_is_the_same_label():
    pairs, counts = build_product_pairs(GOLD, DETECTED, ["gold", "reverse"])
    got = labels(pairs[3:])
    assert {src for src, _ in pairs[3:]} == {"reverse"}
    assert got == {("@Titans", "Marcus Mariota"): "None", ("Derrick Henry", "Marcus Mariota"): "/per/per/peer",
                   ("Houston", "Derrick Henry"): "None"}
    assert counts["reverse"] == 3 and counts["reverse_relation"] == 1


def test_silver_pairs_are_none_and_use_detected_entities_that_are_not_gold_spans():
    pairs, counts = build_product_pairs(GOLD, DETECTED, ["gold", "silver"])
    got = labels(pairs[3:])
    # "Titans" overlaps the gold "@Titans", "Mariota" overlaps "Marcus Mariota", "Derrick Henry" is a gold
    # span: only "RT" is a new entity. Pairs between gold spans that MNRE left out are silver too.
    assert ("RT", "Houston") in got and ("Houston", "RT") in got
    assert ("@Titans", "Houston") in got and ("@Titans", "Derrick Henry") in got
    assert all(v == "None" for v in got.values())
    assert not any("Titans" == h or "Mariota" == h for h, _ in got)
    assert counts["silver_relation"] == 0
    # no pair is repeated, and no annotated pair (either direction) is labelled silver
    keys = [(p.head.start, p.tail.start) for _, p in pairs]
    assert len(keys) == len(set(keys))
    assert ("Marcus Mariota", "@Titans") not in got and ("@Titans", "Marcus Mariota") not in got


def test_all_sources_together_cover_every_ordered_pair_once():
    pairs, counts = build_product_pairs(GOLD, DETECTED, ["gold", "reverse", "silver"])
    n_entities = 5  # @Titans, Marcus Mariota, Derrick Henry, Houston, RT
    assert len(pairs) == n_entities * (n_entities - 1)
    assert counts["gold"] + counts["reverse"] + counts["silver"] == len(pairs)


def test_sources_are_reported_per_pair_across_captions():
    other = "Obama visits Paris"
    line2 = MnreExample(other, Entity("Obama", 0, 5), Entity("Paris", 13, 18), "/per/loc/place_of_residence",
                        None, tuple(other.split()), 2)
    pairs, _ = build_product_pairs(GOLD + [line2], DETECTED, ["gold", "reverse"])
    gold = [p for src, p in pairs if src == "gold"]
    assert gold == GOLD + [line2]  # every MNRE line is marked gold, wherever it sits in the list
