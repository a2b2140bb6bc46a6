"""Entity-name substitution: context over names ("Learning from Context or Names?", Peng et al., EMNLP 2020).

Most MNRE test captions hold entities never seen in training, so a model that remembers names ("Nadal" is a
member of something) does not carry over. During training, each typed entity of a caption is replaced, with
probability `rate`, by another training name of the same type (PER / ORG / LOC / MISC), the same name
everywhere in that caption, so every pair of the caption still reads one text. Labels and the teachers'
targets stay those of the original caption: the relation is in the context, not in the name.

Types come from the entity itself (the tagger's or the transfer set's) or, for MNRE's untyped lines, from the
relation label (`/per/org/member_of`: head PER, tail ORG); an entity of unknown type keeps its name.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import replace

from mmre_demo.data.mnre import MnreExample
from mmre_demo.data.schema import Entity

TYPES = {"per": "PER", "org": "ORG", "loc": "LOC", "misc": "MISC"}


def label_types(relation: str) -> tuple[str, str]:
    """(head type, tail type) read from an MNRE label; ("", "") for None."""
    parts = relation.strip("/").split("/")
    if len(parts) != 3:
        return "", ""
    return TYPES.get(parts[0], ""), TYPES.get(parts[1], "")


def _type_of(ent: Entity, from_label: str) -> str:
    """The entity's own type when it has one, else the one its relation label implies ("" when neither)."""
    return ent.type.upper() if ent.type.upper() in TYPES.values() else from_label


def _entity_types(group: Sequence[MnreExample]) -> dict[tuple[int, int], str]:
    """Each entity span of a caption's examples -> its type ("" when nothing says)."""
    types: dict[tuple[int, int], str] = {}
    for ex in group:
        from_label = label_types(ex.relation)
        for ent, guess in zip((ex.head, ex.tail), from_label):
            span = (ent.start, ent.end)
            typed = _type_of(ent, guess)
            if typed or span not in types:
                types[span] = typed or types.get(span, "")
    return types


def name_pool(examples: Sequence[MnreExample]) -> dict[str, list[str]]:
    """Distinct entity names by type over the training examples (sorted, so a seed gives one draw)."""
    pool: dict[str, set[str]] = defaultdict(set)
    for ex in examples:
        for ent, guess in zip((ex.head, ex.tail), label_types(ex.relation)):
            typed = _type_of(ent, guess)
            if typed and ent.text.strip():
                pool[typed].add(ent.text)
    return {t: sorted(names) for t, names in pool.items()}


def _swap_caption(group: Sequence[MnreExample], pool: dict[str, list[str]], rate: float,
                  rng: random.Random) -> list[MnreExample]:
    """The caption's examples with some entities renamed (see the module docstring)."""
    types = _entity_types(group)
    spans = sorted(types)
    chosen: dict[tuple[int, int], str] = {}
    for span in spans:  # a span that overlaps another keeps its name (the other would be cut)
        if any(o != span and o[0] < span[1] and span[0] < o[1] for o in spans):
            continue
        names = pool.get(types[span], [])
        if names and rng.random() < rate:
            new = rng.choice(names)
            if new != group[0].caption[span[0]:span[1]]:
                chosen[span] = new
    if not chosen:
        return list(group)
    caption, moved, shift, pos = [], {}, 0, 0
    text = group[0].caption
    for (a, b), new in sorted(chosen.items()):
        caption.append(text[pos:a] + new)
        moved[(a, b)] = (a + shift, a + shift + len(new))
        shift += len(new) - (b - a)
        pos = b
    caption.append(text[pos:])
    new_caption = "".join(caption)

    def moved_entity(ent: Entity) -> Entity:
        if (ent.start, ent.end) in moved:
            s, e = moved[(ent.start, ent.end)]
        else:  # an unchanged entity: shifted by the renamed ones before it
            before = sum(len(chosen[sp]) - (sp[1] - sp[0]) for sp in chosen if sp[1] <= ent.start)
            s, e = ent.start + before, ent.end + before
        return replace(ent, text=new_caption[s:e], start=s, end=e)

    return [replace(ex, caption=new_caption, head=moved_entity(ex.head), tail=moved_entity(ex.tail),
                    tokens=tuple(new_caption.split(" "))) for ex in group]


def swap_names(examples: Sequence[MnreExample], pool: dict[str, list[str]], rate: float,
               rng: random.Random) -> list[MnreExample]:
    """The examples (same order, same labels) with entity names substituted caption by caption."""
    if rate <= 0:
        return list(examples)
    groups: dict[tuple[str, str | None], list[int]] = defaultdict(list)
    for i, ex in enumerate(examples):
        groups[(ex.caption, ex.img_id)].append(i)
    out: list[MnreExample | None] = [None] * len(examples)
    for members in groups.values():
        for i, swapped in zip(members, _swap_caption([examples[i] for i in members], pool, rate, rng)):
            out[i] = swapped
    return [ex for ex in out if ex is not None]
