"""Knowledge-graph datasets: PyKEEN's bundled ones, MNRE files, and the app's graph.

Everything ends as a `KgDataset`: labelled triples split into training / validation / testing
`TriplesFactory`s sharing one entity and relation id map (with inverse triples, which the 1-vs-all
training needs), plus the per-entity side information the multimodal features are built from.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from pykeen.triples import TriplesFactory

from mmre_demo.data.labels import NONE_LABEL
from mmre_demo.data.schema import InputError
from mmre_demo.graph.store import DEFAULT_TYPE, DEPICTS, ENTITY_KIND, IMAGE_KIND, SUGGESTED, node_id

BUILTIN_DATASETS = ("umls", "kinships", "nations")
Triple = tuple[str, str, str]


@dataclass
class EntityInfo:
    """Side information for one entity: its name, type, captions and (optional) image feature."""

    name: str
    type: str = DEFAULT_TYPE
    captions: list[str] = field(default_factory=list)
    image_feature: np.ndarray | None = None


@dataclass
class KgDataset:
    """Split triples sharing one id map. `validation`/`testing` may be None (train-on-everything)."""

    name: str
    training: TriplesFactory
    validation: TriplesFactory | None = None
    testing: TriplesFactory | None = None
    entity_info: dict[str, EntityInfo] = field(default_factory=dict)
    notes: dict[str, Any] = field(default_factory=dict)

    @property
    def entity_to_id(self) -> dict[str, int]:
        return self.training.entity_to_id

    @property
    def relation_to_id(self) -> dict[str, int]:
        return self.training.relation_to_id

    def split(self, name: str) -> TriplesFactory:
        tf = {"train": self.training, "training": self.training, "validation": self.validation,
              "valid": self.validation, "test": self.testing, "testing": self.testing}.get(name)
        if tf is None:
            raise InputError(f"dataset {self.name!r} has no {name!r} split")
        return tf


# --------------------------------------------------------------------------- builtin (PyKEEN)

def load_builtin(name: str) -> KgDataset:
    """UMLS / Kinships / Nations from the pykeen wheel (offline), with inverse triples."""
    from pykeen.datasets import UMLS, Kinships, Nations

    classes = {"umls": UMLS, "kinships": Kinships, "nations": Nations}
    if name not in classes:
        raise InputError(f"unknown dataset {name!r}; choose one of {sorted(classes)} or 'mnre'")
    ds = classes[name](create_inverse_triples=True)
    return KgDataset(name, ds.training, ds.validation, ds.testing)


# --------------------------------------------------------------------------- labelled triples

def check_triples(triples: Iterable[Triple]) -> list[Triple]:
    """Deduplicate (keeping order) and refuse empty input or empty labels with a clear message."""
    seen: dict[Triple, None] = {}
    for t in triples:
        if len(t) != 3 or not all(isinstance(x, str) and x.strip() for x in t):
            raise InputError(f"a triple needs three non-empty strings (head, relation, tail), got {t!r}")
        seen.setdefault(tuple(t), None)  # type: ignore[arg-type]
    if not seen:
        raise InputError("the knowledge graph is empty: it needs at least one (head, relation, tail) "
                         "triple between two entities")
    return list(seen)


def _factory(triples: list[Triple], entity_to_id: dict[str, int], relation_to_id: dict[str, int]) -> TriplesFactory:
    arr = np.asarray(triples, dtype=str).reshape(-1, 3)
    return TriplesFactory.from_labeled_triples(
        arr, create_inverse_triples=True, entity_to_id=entity_to_id, relation_to_id=relation_to_id,
        filter_out_candidate_inverse_relations=False,
    )


def id_maps(triples: list[Triple]) -> tuple[dict[str, int], dict[str, int]]:
    """Sorted label -> id maps over *all* triples (held-out entities keep an id: features can place them)."""
    ents = sorted({t[0] for t in triples} | {t[2] for t in triples})
    rels = sorted({t[1] for t in triples})
    return {e: i for i, e in enumerate(ents)}, {r: i for i, r in enumerate(rels)}


def split_triples(triples: list[Triple], ratios: tuple[float, float, float] = (0.8, 0.1, 0.1),
                  seed: int = 0) -> tuple[list[Triple], list[Triple], list[Triple], int]:
    """Deterministic seeded split with no leakage of inverse duplicates.

    Triples are grouped by their unordered entity pair and whole groups are assigned to one split:
    otherwise `(a, r, b)` in test is answered by `(b, r', a)` or `(a, r'', b)` in train.
    Returns (train, validation, test, number of triples that share a pair with another triple).
    """
    groups: dict[frozenset, list[Triple]] = defaultdict(list)
    for tr in triples:
        groups[frozenset((tr[0], tr[2]))].append(tr)
    keys = sorted(groups, key=lambda k: sorted(k))
    random.Random(seed).shuffle(keys)
    n = len(triples)
    want_test, want_val = int(round(n * ratios[2])), int(round(n * ratios[1]))
    train: list[Triple] = []
    val: list[Triple] = []
    test: list[Triple] = []
    for k in keys:
        g = groups[k]
        if len(test) + len(g) <= want_test:
            test.extend(g)
        elif len(val) + len(g) <= want_val:
            val.extend(g)
        else:
            train.extend(g)
    shared = sum(len(g) for g in groups.values() if len(g) > 1)
    return train, val, test, shared


def dataset_from_triples(name: str, triples: Iterable[Triple], entity_info: dict[str, EntityInfo] | None = None,
                         holdout: bool = True, seed: int = 0) -> KgDataset:
    """Build a KgDataset; `holdout=False` trains on everything (the app's graph)."""
    triples = check_triples(triples)
    e2id, r2id = id_maps(triples)
    info = entity_info or {}
    notes: dict[str, Any] = {"num_triples": len(triples)}
    if not holdout or len(triples) < 10:
        return KgDataset(name, _factory(triples, e2id, r2id), entity_info=info, notes=notes)
    train, val, test, moved = split_triples(triples, seed=seed)
    seen = {t[0] for t in train} | {t[2] for t in train}
    notes.update(triples_sharing_a_pair=moved, seed=seed,
                 test_with_unseen_entity=sum((h not in seen) or (t not in seen) for h, _, t in test))
    ds = KgDataset(name, _factory(train, e2id, r2id), entity_info=info, notes=notes)
    ds.validation = _factory(val, e2id, r2id) if val else None
    ds.testing = _factory(test, e2id, r2id) if test else None
    return ds


# --------------------------------------------------------------------------- MNRE files

def mnre_triples(path: str | Path, skip_bad: bool = True) -> tuple[list[Triple], dict[str, EntityInfo], list[dict]]:
    """Gold triples of an MNRE file: every line whose relation is not `None`; entity = name + type.

    Types come from the relation name (`/per/org/member_of` -> PER, ORG). Also returns per-line
    records (triple, caption, img_id) so features can use only the captions of training triples.
    """
    from mmre_demo.data.labels import relation_types
    from mmre_demo.data.mnre import read_mnre

    examples, _ = read_mnre(path, skip_bad=skip_bad)
    triples: list[Triple] = []
    info: dict[str, EntityInfo] = {}
    records: list[dict] = []
    for ex in examples:
        types = relation_types(ex.relation)
        if types is None:
            continue
        h, t = node_id(ex.head.text, types[0]), node_id(ex.tail.text, types[1])  # the app graph's ids
        info.setdefault(h, EntityInfo(ex.head.text, types[0]))
        info.setdefault(t, EntityInfo(ex.tail.text, types[1]))
        triples.append((h, ex.relation, t))
        records.append({"triple": (h, ex.relation, t), "caption": ex.caption, "img_id": ex.img_id})
    return triples, info, records


def load_mnre(path: str | Path, seed: int = 0) -> tuple[KgDataset, list[dict]]:
    """MNRE KG with a seeded 80/10/10 split; captions attached only from training-triple lines (no leakage)."""
    triples, info, records = mnre_triples(path)
    if not triples:
        raise InputError(f"{path}: no gold triples (every line has relation 'None')")
    ds = dataset_from_triples("mnre", triples, info, holdout=True, seed=seed)
    train = set(map(tuple, ds.training.triples.tolist()))
    for rec in records:
        if rec["triple"] in train:
            h, _, t = rec["triple"]
            for e in (h, t):
                if rec["caption"] not in info[e].captions:
                    info[e].captions.append(rec["caption"])
    return ds, records


# --------------------------------------------------------------------------- networkx graph

def graph_triples(graph: Any) -> tuple[list[Triple], dict[str, EntityInfo]]:
    """Entity->entity relation edges of the app's MultiDiGraph whose source is not "suggested"."""
    return triples_from_parts(dict(graph.nodes(data=True)), list(graph.edges(data=True)))


def triples_from_parts(nodes: dict[Any, dict],
                       edges: list[tuple[Any, Any, dict]]) -> tuple[list[Triple], dict[str, EntityInfo]]:
    """`graph_triples` over a snapshot (node -> attributes, edge list), so it can run off the request thread."""
    triples: list[Triple] = []
    info: dict[str, EntityInfo] = {}
    for u, v, data in edges:
        if nodes[u].get("kind") != ENTITY_KIND or nodes[v].get("kind") != ENTITY_KIND:
            continue
        rel = data.get("relation")
        if not rel or data.get("source") == SUGGESTED or str(rel) == NONE_LABEL:
            continue
        triples.append((str(u), str(rel), str(v)))
    depicted: dict[str, Any] = {}  # entity -> image feature of an image node that depicts it
    for u, v, data in edges:
        if data.get("relation") == DEPICTS and nodes[u].get("kind") == IMAGE_KIND:
            if nodes[u].get("image_feature") is not None:
                depicted.setdefault(str(v), nodes[u]["image_feature"])
    for n, d in nodes.items():
        if d.get("kind") != ENTITY_KIND:
            continue
        feat = d.get("image_feature")
        feat = depicted.get(str(n)) if feat is None else feat
        info[str(n)] = EntityInfo(
            str(d.get("name", n)), str(d.get("type", DEFAULT_TYPE)), [str(c) for c in (d.get("captions") or [])],
            None if feat is None else np.asarray(feat, dtype=np.float32).reshape(-1),
        )
    return triples, info


def dataset_from_graph(graph: Any, holdout: bool = False, seed: int = 0) -> KgDataset:
    """The app's graph as a KgDataset (by default no held-out split: the app trains on all of it)."""
    triples, info = graph_triples(graph)
    if not triples:
        raise InputError("the graph has no relation edges between entities yet: extract or add some "
                         "relations before asking for suggested links")
    return dataset_from_triples("graph", triples, info, holdout=holdout, seed=seed)


def load_graph_file(path: str | Path, seed: int = 0) -> KgDataset:
    """An exported graph (`graph.json` / `.graphml` of the app or of `mmre extract`) with a seeded 80/10/10
    split like MNRE's (no split under 10 triples), so `mmre kge train/eval` report held-out metrics."""
    from mmre_demo.graph.importer import read_graph

    triples, info = graph_triples(read_graph(path))
    if not triples:
        raise InputError(f"{path}: the graph has no relation edges between entities (exported with a high "
                         "threshold? re-export with a lower one)")
    return dataset_from_triples(f"graph:{path}", triples, info, holdout=True, seed=seed)


def mapped(tf: TriplesFactory | None) -> torch.Tensor:
    """Mapped triples of a factory, or an empty (0, 3) tensor."""
    return torch.zeros(0, 3, dtype=torch.long) if tf is None else tf.mapped_triples
