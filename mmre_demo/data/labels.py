"""The 23 MNRE relation labels and what their names say about entity types."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

# The order of ../shared/data/mnre/rel2id.json (the order the published MNRE code bases use).
RELATIONS: tuple[str, ...] = (
    "None",
    "/per/per/parent",
    "/per/per/siblings",
    "/per/per/couple",
    "/per/per/neighbor",
    "/per/per/peer",
    "/per/per/charges",
    "/per/per/alumi",
    "/per/per/alternate_names",
    "/per/org/member_of",
    "/per/loc/place_of_residence",
    "/per/loc/place_of_birth",
    "/org/org/alternate_names",
    "/org/org/subsidiary",
    "/org/loc/locate_at",
    "/loc/loc/contain",
    "/per/misc/present_in",
    "/per/misc/awarded",
    "/per/misc/race",
    "/per/misc/religion",
    "/per/misc/nationality",
    "/misc/misc/part_of",
    "/misc/loc/held_on",
)
NONE_LABEL = "None"
LABEL_TO_ID: dict[str, int] = {label: i for i, label in enumerate(RELATIONS)}
ENTITY_TYPES: tuple[str, ...] = ("PER", "ORG", "LOC", "MISC")
# Relations that hold both ways ("A peer B" is "B peer A"): either direction is the same fact.
SYMMETRIC_RELATIONS: frozenset[str] = frozenset({
    "/per/per/couple", "/per/per/siblings", "/per/per/peer", "/per/per/neighbor", "/per/per/alumi",
    "/per/per/alternate_names", "/org/org/alternate_names",
})


def relation_types(label: str) -> tuple[str, str] | None:
    """Head and tail entity types a relation name implies (`/per/org/member_of` -> PER, ORG)."""
    if label == NONE_LABEL:
        return None
    _, head, tail, _ = label.split("/", 3)
    return head.upper(), tail.upper()


def is_symmetric(label: str) -> bool:
    return label in SYMMETRIC_RELATIONS


def short_name(label: str) -> str:
    """`/per/org/member_of` -> `member_of`; used for graph edges and tables."""
    return label.rsplit("/", 1)[-1] if label != NONE_LABEL else NONE_LABEL


def type_mask(labels: Sequence[str], head_type: str, tail_type: str) -> np.ndarray:
    """1 for labels whose implied (head, tail) types match the pair's types (None always allowed)."""
    pair = (head_type.upper(), tail_type.upper())
    return np.array([1.0 if relation_types(lab) in (None, pair) else 0.0 for lab in labels], dtype=np.float32)


def constrain_to_types(probs: np.ndarray, labels: Sequence[str], head_type: str, tail_type: str) -> np.ndarray:
    """Zero the relations whose implied types contradict the pair's known types; renormalise.

    Unknown types ("" or anything outside PER/ORG/LOC/MISC) constrain nothing.
    """
    if head_type.upper() not in ENTITY_TYPES or tail_type.upper() not in ENTITY_TYPES:
        return probs
    masked = probs * type_mask(labels, head_type, tail_type)
    total = masked.sum()
    return masked / total if total > 0 else probs


def relation_fits(label: str, head_type: str, tail_type: str) -> bool:
    """Whether `label` may hold from a `head_type` entity to a `tail_type` one: None always may; an
    unknown type ("" or outside PER/ORG/LOC/MISC) constrains nothing on its side."""
    implied = relation_types(label)
    if implied is None:
        return True
    return all(t.upper() not in ENTITY_TYPES or t.upper() == want
               for t, want in ((head_type, implied[0]), (tail_type, implied[1])))


def fitting_relations(head_type: str, tail_type: str, labels: Sequence[str] = RELATIONS) -> list[str]:
    """The relation names (None left out) whose type rule fits a (head, tail) pair, in label order."""
    return [lab for lab in labels if lab != NONE_LABEL and relation_fits(lab, head_type, tail_type)]
