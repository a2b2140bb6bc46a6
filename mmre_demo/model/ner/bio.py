"""BIO rules: tags -> entity spans (seqeval's convention), repair of stray I- tags, valid moves."""

from __future__ import annotations

import functools
from collections.abc import Sequence

import torch


def bio_spans(tags: Sequence[str]) -> list[tuple[int, int, str]]:
    """`[(first_word, end_word_exclusive, type)]` with the seqeval (non-strict) convention:
    an I- that does not continue an entity of its type starts a new one."""
    spans: list[tuple[int, int, str]] = []
    start, etype = None, None
    for i, tag in enumerate(list(tags) + ["O"]):
        prefix, _, t = tag.partition("-")
        continues = prefix == "I" and start is not None and t == etype
        if start is not None and not continues:
            spans.append((start, i, etype))
            start, etype = None, None
        if prefix in ("B", "I") and not continues:
            start, etype = i, t
    return spans


def repair_bio(tags: Sequence[str]) -> list[str]:
    """Rewrite an I- that starts an entity as B- (the entities stay those seqeval reads).

    About 4% of Twitter-2015 train tweets have such tags; a CRF that forbids O -> I- could not
    score them otherwise.
    """
    out, prev = [], "O"
    for tag in tags:
        if tag.startswith("I-") and prev not in (f"B-{tag[2:]}", tag):
            tag = f"B-{tag[2:]}"
        out.append(tag)
        prev = tag
    return out


def allowed_transitions(tags: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """(from, to) mask of valid BIO moves and a start mask (no I- first); cached per tag set."""
    trans, start = _allowed_transitions_cached(tuple(tags))
    return trans.clone(), start.clone()


@functools.lru_cache(maxsize=8)
def _allowed_transitions_cached(tags: tuple[str, ...]) -> tuple[torch.Tensor, torch.Tensor]:
    n = len(tags)
    trans = torch.ones(n, n, dtype=torch.bool)
    start = torch.ones(n, dtype=torch.bool)
    for j, to in enumerate(tags):
        if to.startswith("I-"):
            start[j] = False
            for i, frm in enumerate(tags):
                trans[i, j] = frm in (f"B-{to[2:]}", to)
    return trans, start
