"""Training pairs shaped like the product's input: every ordered pair of a tweet's entities.

MNRE labels only some pairs of a tweet, in one direction each, but the product classifies both
directions of every pair of the entities it detects. A model trained on MNRE's lines alone has
never seen a reversed pair or an unannotated one, and labels them with confidence. So each caption
gets, besides its MNRE lines ("gold"):

- "reverse": the other direction of an annotated pair: the same label for a symmetric relation,
  `None` otherwise;
- "silver": pairs MNRE did not annotate (between its entities, and with the entities the tagger
  finds): `None`. Silver because some of them are true relations MNRE left out.

Names are compared normalised (`normalise_name`), as the end-to-end score compares them. A
detected entity overlapping an MNRE span, or repeating an MNRE name elsewhere, is left out: it is
the same entity, and its pairs would contradict the gold labels.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Literal, get_args

from mmre_demo.data.labels import NONE_LABEL, is_symmetric
from mmre_demo.data.mnre import MnreExample
from mmre_demo.data.names import normalise_name
from mmre_demo.data.schema import Entity

# MNRE's lines, their other direction, the pairs MNRE left out (with the tagger's entities)
PairSource = Literal["gold", "reverse", "silver"]
PAIR_SOURCES: tuple[PairSource, ...] = get_args(PairSource)


def _overlaps(a: Entity, b: Entity) -> bool:
    return a.start < b.end and b.start < a.end


def caption_entities(group: Sequence[MnreExample], detected: Iterable[Entity]) -> list[Entity]:
    """MNRE's spans of this caption plus the detected entities that are not one of them."""
    gold: dict[tuple[int, int], Entity] = {}
    for ex in group:
        for e in (ex.head, ex.tail):
            gold.setdefault((e.start, e.end), e)
    names = {normalise_name(e.text) for e in gold.values()}
    extra = [d for d in detected
             if normalise_name(d.text) and normalise_name(d.text) not in names
             and not any(_overlaps(d, g) for g in gold.values())]
    kept: list[Entity] = []
    for d in extra:  # the tagger never returns overlapping spans, but two mentions of one name can repeat
        if normalise_name(d.text) not in {normalise_name(k.text) for k in kept}:
            kept.append(Entity(d.text, d.start, d.end, ""))
    return list(gold.values()) + kept


def _pair_example(template: MnreExample, head: Entity, tail: Entity, relation: str) -> MnreExample:
    return MnreExample(template.caption, head, tail, relation, template.img_id, template.tokens, template.line_no)


def caption_pairs(group: Sequence[MnreExample], detected: Iterable[Entity],
                  sources: Iterable[str] = PAIR_SOURCES) -> list[tuple[str, MnreExample]]:
    """(source, example) for one caption's MNRE lines and the pairs `sources` asks for."""
    wanted = set(sources) | {"gold"}
    out: list[tuple[str, MnreExample]] = [("gold", ex) for ex in group]
    annotated: dict[tuple[str, str], str] = {}
    for ex in group:  # a pair annotated twice keeps its relation over a `None`
        key = (normalise_name(ex.head.text), normalise_name(ex.tail.text))
        if annotated.get(key, NONE_LABEL) == NONE_LABEL:
            annotated[key] = ex.relation
    covered = {((ex.head.start, ex.head.end), (ex.tail.start, ex.tail.end)) for ex in group}
    entities = caption_entities(group, detected) if "silver" in wanted else \
        caption_entities(group, [])
    for head in entities:
        for tail in entities:
            h, t = normalise_name(head.text), normalise_name(tail.text)
            spans = ((head.start, head.end), (tail.start, tail.end))
            if h == t or spans in covered or (h, t) in annotated:
                continue
            if (t, h) in annotated:
                source, rel = "reverse", annotated[(t, h)]
                label = rel if is_symmetric(rel) else NONE_LABEL
            else:
                source, label = "silver", NONE_LABEL
            if source in wanted:
                out.append((source, _pair_example(group[0], head, tail, label)))
                covered.add(spans)
    return out


def build_product_pairs(examples: Sequence[MnreExample], detected: dict[str, list[Entity]],
                        sources: Iterable[str] = PAIR_SOURCES) -> tuple[list[tuple[str, MnreExample]], dict[str, int]]:
    """Every caption's (source, pair): its MNRE lines, then the `sources` asked for; and a count per source."""
    unknown = set(sources) - set(PAIR_SOURCES)
    if unknown:
        raise ValueError(f"unknown pair sources {sorted(unknown)}; choose from {PAIR_SOURCES}")
    groups: dict[str, list[MnreExample]] = {}
    for ex in examples:
        groups.setdefault(ex.caption, []).append(ex)
    pairs: list[tuple[str, MnreExample]] = []
    counts: Counter[str] = Counter()
    for caption, group in groups.items():
        for source, ex in caption_pairs(group, detected.get(caption, []), sources):
            pairs.append((source, ex))
            counts[source] += 1
            counts[f"{source}_relation"] += ex.relation != NONE_LABEL
    return pairs, dict(counts)
