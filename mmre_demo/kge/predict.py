"""Top-k predictions from a trained run: tails, heads, relations, and "suggested links" for an entity.

Scores are in [0, 1]: sigmoid of the logit for BCE-trained models, the softmax over candidate
entities for cross-entropy-trained ones (TransE). They order candidates; they are not probabilities
(a model trained on a few dozen triples gives 0.99 to nonsense), so the app shows ranks and the
run's held-out MRR / Hits@10 instead. Triples the run knows (any split) are left out.

Type rule: a relation named `/head_type/tail_type/name` (`data/labels.py`) only links a head and a
tail of those types; an entity's type is the prefix of its node id (`PER:Bill Cosby`, graph/store.py).
An entity whose type is unknown (no such prefix) takes part only in relations without a type rule:
a suggestion that cannot be checked against the rule is not made. Relations not named that way
(UMLS, hand-made graphs) constrain nothing.
"""

from __future__ import annotations

import difflib
import re
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import torch

from mmre_demo.data.labels import ENTITY_TYPES
from mmre_demo.data.schema import InputError
from mmre_demo.graph.store import node_type
from mmre_demo.kge.io import KgeRun

_TYPED_RELATION = re.compile(r"^/([a-z]+)/([a-z]+)/[^/]+$")


@dataclass(frozen=True)
class Suggestion:
    """A scored triple: a suggested link (`suggest_links`, with its `rank`, 1 = best) or a tail / head /
    relation query's answer (`predict_*`; tails and heads say whether the run already `known` it).
    `score` orders the candidates, it is no probability (module docstring)."""

    head: str
    relation: str
    tail: str
    score: float
    rank: int | None = None
    known: bool | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON row (`mmre kge suggest --json`): rank first when there is one, known last."""
        out: dict[str, Any] = {} if self.rank is None else {"rank": self.rank}
        out.update(head=self.head, relation=self.relation, tail=self.tail, score=self.score)
        if self.known is not None:
            out["known"] = self.known
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Suggestion:
        return cls(head=d["head"], relation=d["relation"], tail=d["tail"], score=float(d["score"]),
                   rank=d.get("rank"), known=d.get("known"))


def relation_rule(label: str) -> tuple[str, str] | None:
    """(head type, tail type) a relation name demands, or None when its name states no rule."""
    m = _TYPED_RELATION.match(label)
    if m is None or m.group(1).upper() not in ENTITY_TYPES or m.group(2).upper() not in ENTITY_TYPES:
        return None
    return m.group(1).upper(), m.group(2).upper()


def fits_types(head: str, relation: str, tail: str) -> bool:
    """Whether the triple obeys the relation's type rule (see the module docstring for unknown types)."""
    rule = relation_rule(relation)
    return rule is None or (node_type(head), node_type(tail)) == rule


class KgePredictor:
    """Wraps a `KgeRun` for fast label-level queries (all relations scored in one batch)."""

    def __init__(self, run: KgeRun, respect_types: bool = True):
        self.run, self.respect_types = run, respect_types
        self.model = run.model.eval()
        self.e2id, self.r2id = run.entity_to_id, run.relation_to_id
        self.softmax = run.train_config.get("loss") == "crossentropy"
        self.kind = run.model_config.model
        self.known: set[tuple[int, int, int]] = set()
        self.out_edges: dict[int, set[tuple[int, int]]] = defaultdict(set)
        for split in run.triples.values():  # held-out triples are in the graph too: never suggested
            for h, r, t in split.tolist():
                self.known.add((h, r, t))
                self.out_edges[h].add((r, t))
                self.out_edges[t].add((r, h))
        self._head_ok, self._tail_ok = self._type_masks()

    def _type_masks(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(R, n) booleans: entity e may be the head (tail) of relation r under the type rule."""
        n, rels = len(self.run.entity_labels), self.run.relation_labels
        head_ok, tail_ok = torch.ones(len(rels), n, dtype=torch.bool), torch.ones(len(rels), n, dtype=torch.bool)
        if not self.respect_types:
            return head_ok, tail_ok
        types = [node_type(e) for e in self.run.entity_labels]
        for r, label in enumerate(rels):
            rule = relation_rule(label)
            if rule is not None:
                head_ok[r] = torch.tensor([t == rule[0] for t in types], dtype=torch.bool)
                tail_ok[r] = torch.tensor([t == rule[1] for t in types], dtype=torch.bool)
        return head_ok, tail_ok

    # ------------------------------------------------------------------ lookups
    def entity_index(self, label: str) -> int:
        if label not in self.e2id:
            close = difflib.get_close_matches(label, list(self.e2id), n=3)
            hint = f"; did you mean {', '.join(map(repr, close))}?" if close else ""
            raise InputError(f"unknown entity {label!r}: it is not in the trained graph{hint}")
        return self.e2id[label]

    def relation_index(self, label: str) -> int:
        if label not in self.r2id:
            raise InputError(f"unknown relation {label!r}; known: {', '.join(sorted(self.r2id)[:10])}"
                             f"{' ...' if len(self.r2id) > 10 else ''}")
        return self.r2id[label]

    def _norm(self, scores: torch.Tensor) -> torch.Tensor:
        return scores.softmax(dim=-1) if self.softmax else scores.sigmoid()

    @torch.inference_mode()
    def _cache(self) -> tuple[torch.Tensor, torch.Tensor]:
        """All entity and relation vectors, computed once (the model is frozen after training)."""
        if not hasattr(self, "_ent"):
            self._ent = self.model.entity_representations[0](indices=None)
            self._rel = self.model.relation_representations[0](indices=None)  # row 2r: r, row 2r+1: inverse
        return self._ent, self._rel

    @torch.inference_mode()
    def _scores_against_all(self, anchor: int, rel_rows: torch.Tensor) -> torch.Tensor:
        """(len(rel_rows), n) raw scores of (anchor, rel, every entity) as one matmul (PyKEEN's
        broadcasting is ~10x slower on 20k entities). Equal to `model.predict_t` / `predict_h` (tested)."""
        ent, rel = self._cache()
        q = ent[anchor].unsqueeze(0) * rel[rel_rows] if self.kind != "transe" else None
        if self.kind == "complex":
            return q.real @ ent.real.T + q.imag @ ent.imag.T
        if self.kind == "distmult":
            return q @ ent.T
        p = getattr(self.model.interaction, "p", 1)
        return -torch.cdist(ent[anchor].unsqueeze(0) + rel[rel_rows], ent, p=p)

    def _tail_scores(self, h: int) -> torch.Tensor:
        """(R, n): score of (h, r, every tail) for every relation."""
        return self._norm(self._scores_against_all(h, 2 * torch.arange(len(self.r2id))))

    def _head_scores(self, t: int) -> torch.Tensor:
        """(R, n): score of (every head, r, t) for every relation (via the inverse relations)."""
        return self._norm(self._scores_against_all(t, 2 * torch.arange(len(self.r2id)) + 1))

    # ------------------------------------------------------------------ public queries
    def predict_tails(self, head: str, relation: str, k: int = 10) -> list[Suggestion]:
        h, r = self.entity_index(head), self.relation_index(relation)
        s = self._tail_scores(h)[r].clone()
        s[~self._tail_ok[r] | ~self._head_ok[r, h]] = -1.0
        return self._top_entities(s, k, lambda e: (h, r, e))

    def predict_heads(self, relation: str, tail: str, k: int = 10) -> list[Suggestion]:
        t, r = self.entity_index(tail), self.relation_index(relation)
        s = self._head_scores(t)[r].clone()
        s[~self._head_ok[r] | ~self._tail_ok[r, t]] = -1.0
        return self._top_entities(s, k, lambda e: (e, r, t))

    def predict_relations(self, head: str, tail: str, k: int = 5) -> list[Suggestion]:
        h, t = self.entity_index(head), self.entity_index(tail)
        s = self._tail_scores(h)[:, t].clone()
        s[~(self._head_ok[:, h] & self._tail_ok[:, t])] = -1.0
        top = s.topk(min(k, int((s >= 0).sum())))
        return [self._triple(h, int(r), t, float(v)) for v, r in zip(top.values, top.indices)]

    def suggest_links(self, entity: str, k: int = 5) -> list[Suggestion]:
        """Best new triples with `entity` as head or tail that obey the type rule (known triples and
        self-loops excluded), best first, each with its `rank`."""
        e = self.entity_index(entity)
        n = len(self.e2id)
        both = torch.cat([self._tail_scores(e), self._head_scores(e)], dim=0)  # (2R, n)
        R = len(self.r2id)
        as_head = self._head_ok[:, e].unsqueeze(1) & self._tail_ok  # (e, r, other)
        as_tail = self._tail_ok[:, e].unsqueeze(1) & self._head_ok  # (other, r, e)
        both[~torch.cat([as_head, as_tail], dim=0)] = -1.0
        both[:, e] = -1.0
        for r, o in self.out_edges.get(e, ()):  # mask what the graph already says
            if (e, r, o) in self.known:
                both[r, o] = -1.0
            if (o, r, e) in self.known:
                both[R + r, o] = -1.0
        flat = both.flatten()
        top = flat.topk(min(k, int((flat >= 0).sum())))
        out = []
        for v, idx in zip(top.values.tolist(), top.indices.tolist()):
            row, other = divmod(idx, n)
            h, r, t = (e, row, other) if row < R else (other, row - R, e)
            out.append(self._triple(h, r, t, v, rank=len(out) + 1))
        return out

    # ------------------------------------------------------------------ helpers
    def _top_entities(self, scores: torch.Tensor, k: int, make) -> list[Suggestion]:
        top = scores.topk(min(k, int((scores >= 0).sum())))
        res = []
        for v, i in zip(top.values.tolist(), top.indices.tolist()):
            h, r, t = make(i)
            res.append(self._triple(h, r, t, v, known=(h, r, t) in self.known))
        return res

    def _triple(self, h: int, r: int, t: int, score: float, *, rank: int | None = None,
                known: bool | None = None) -> Suggestion:
        return Suggestion(head=self.run.entity_labels[h], relation=self.run.relation_labels[r],
                          tail=self.run.entity_labels[t], score=round(float(score), 4), rank=rank, known=known)
