"""BIO rules: tags -> entity spans (seqeval's convention; `bio_spans` lives in the torch-free `data/conll.py`
and is re-exported here), repair of stray I- tags, valid moves."""

from __future__ import annotations

import functools
from collections.abc import Sequence

import torch

from mmre_demo.data.conll import bio_spans

__all__ = ["allowed_transitions", "bio_spans", "repair_bio"]  # bio_spans lives with the CoNLL reader (torch-free)


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
