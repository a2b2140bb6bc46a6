"""Exploring the graph: one `ViewFilter` (focus node and hops, relations, entity types, sources) turned
into the subgraph to draw, node search, and the provenance of a node or an edge (the posts it came from).

The probability filter is the page's one threshold (`store.view`); everything here narrows that view.
Plain networkx, no plotly and no gradio: the app's callbacks and the tests use it alike.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import networkx as nx

from mmre_demo.data.labels import ENTITY_TYPES, short_name
from mmre_demo.graph.store import (
    ANNOTATED,
    DEPICTS,
    ENTITY_KIND,
    IMAGE_KIND,
    IMAGE_RELATIONS,
    POST_SCORES,
    POSTS,
    PREDICTED,
    SHOWS_TEXT_OF,
    SUGGESTED,
    posts_table,
    view,
)

READ_IN_IMAGE = "read in the image"  # the source of "shows text of" edges (OCR)
SOURCE_CHOICES = (PREDICTED, ANNOTATED, SUGGESTED, READ_IN_IMAGE)
TYPE_CHOICES = (*ENTITY_TYPES, "IMAGE")  # the entity types, and image nodes
MAX_HOPS = 2
MAX_EVIDENCE = 12  # posts listed per edge or node (the count says how many there are)


@dataclass(frozen=True)
class ViewFilter:
    """What the graph view shows; empty tuples mean "all"."""

    focus: str | None = None
    hops: int = 1
    relations: tuple[str, ...] = ()
    types: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()

    @property
    def is_whole(self) -> bool:
        return self.focus is None and not (self.relations or self.types or self.sources)

    def describe(self) -> str:
        """The filter in words, for the graph's title ("" for the whole graph)."""
        parts = []
        if self.focus is not None:
            parts.append(f"{self.hops}-hop neighbourhood of {self.focus.split(':', 1)[-1]}")
        if self.relations:
            parts.append("relations: " + ", ".join(short_name(r) for r in self.relations))
        if self.types:
            parts.append("types: " + ", ".join(self.types))
        if self.sources:
            parts.append("sources: " + ", ".join(self.sources))
        return "; ".join(parts)


def node_kind_type(d: dict) -> str:
    return "IMAGE" if d.get("kind") == IMAGE_KIND else str(d.get("type") or "MISC")


def _edge_source(d: dict) -> str:
    return READ_IN_IMAGE if d.get("relation") == SHOWS_TEXT_OF else str(d.get("source", PREDICTED))


def filtered_view(g: nx.MultiDiGraph, f: ViewFilter, threshold: float) -> nx.MultiDiGraph:
    """The thresholded graph narrowed by `f`. A relation, type or source filter drops the nodes it leaves
    without edges (else the picture is all loose dots); the focus keeps its neighbourhood only."""
    sources = set(f.sources or SOURCE_CHOICES)
    h = view(g, threshold, include_suggested=SUGGESTED in sources)
    if f.types:
        keep = set(f.types)
        h.remove_nodes_from([n for n, d in h.nodes(data=True) if node_kind_type(d) not in keep])
    drop = []
    for u, v, k, d in h.edges(keys=True, data=True):
        rel = d.get("relation")
        if rel == DEPICTS:
            continue  # an image's links to its caption's entities: shown with the image nodes
        if _edge_source(d) not in sources or (f.relations and rel not in IMAGE_RELATIONS and rel not in f.relations):
            drop.append((u, v, k))
    h.remove_edges_from(drop)
    if f.relations or f.sources:  # only the named relations / sources: image links alone do not keep a node
        h.remove_edges_from([(u, v, k) for u, v, k, d in h.edges(keys=True, data=True) if d.get("relation") == DEPICTS])
    if f.relations or f.types or f.sources:
        h.remove_nodes_from([n for n in list(h) if h.degree(n) == 0 and n != f.focus])
    if f.focus is not None and f.focus in h:
        near = nx.single_source_shortest_path_length(h.to_undirected(as_view=True), f.focus,
                                                     cutoff=max(1, min(MAX_HOPS, f.hops)))
        h = h.subgraph(near).copy()
    elif f.focus is not None:
        h = h.subgraph([]).copy()
    return h


def search_choices(g: nx.MultiDiGraph) -> list[tuple[str, str]]:
    """(label, node id) of every entity, most connected first: the search box's options (the dropdown
    filters them as one types)."""
    deg = dict(g.degree())
    nodes = sorted(((n, d) for n, d in g.nodes(data=True) if d.get("kind") == ENTITY_KIND),
                   key=lambda nd: (-deg[nd[0]], str(nd[0])))
    return [(f"{d.get('name', n)} ({node_kind_type(d)}, {deg[n]} links)", n) for n, d in nodes]


def edge_key(u: str, relation: str, v: str) -> str:
    """The value naming one edge in the app's pick list (JSON: node ids may hold any character)."""
    return json.dumps([u, relation, v], ensure_ascii=False)


def parse_edge_key(value: str) -> tuple[str, str, str] | None:
    try:
        u, r, v = json.loads(value)
    except (TypeError, ValueError):
        return None
    return str(u), str(r), str(v)


def edge_choices(h: nx.MultiDiGraph, limit: int = 400) -> list[tuple[str, str]]:
    """(label, edge key) of the drawn relation edges, best first: what a click on the graph would pick."""
    rows = [(u, v, d) for u, v, d in h.edges(data=True) if d.get("relation") != DEPICTS]
    rows.sort(key=lambda e: (-float(e[2].get("score", 0.0)), str(e[0]), str(e[1])))
    out = []
    for u, v, d in rows[:limit]:
        name = h.nodes[u].get("name", u), h.nodes[v].get("name", v)
        out.append((f"{name[0]} → {short_name(d['relation'])} → {name[1]} ({float(d.get('score', 0)):.2f}, "
                    f"{_edge_source(d)})", edge_key(u, d["relation"], v)))
    return out


# ---- provenance ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Evidence:
    """One post behind a node or an edge."""

    post_id: str | None  # None: an older export that kept the caption only
    caption: str
    spans: tuple[tuple[int, int, str], ...] = ()  # entity spans to highlight (start, end, type)
    probability: float | None = None
    image_id: str | None = None
    image: str | None = None  # the image's file name as the post gave it


@dataclass(frozen=True)
class Provenance:
    """Where a node or an edge came from."""

    title: str
    kind: str  # "edge" | "node"
    source: str = ""
    score: float | None = None
    count: int = 0
    names: tuple[str, ...] = ()  # names to highlight where a post has no entity spans
    evidence: list[Evidence] = field(default_factory=list)
    n_posts: int = 0


def _evidence(g: nx.MultiDiGraph, post_ids: list[str], scores: list[float], captions: list[str]) -> list[Evidence]:
    table = posts_table(g)
    out: list[Evidence] = []
    seen: set[str] = set()
    for i, pid in enumerate(post_ids):
        rec = table.get(pid)
        if rec is None or pid in seen:
            continue
        seen.add(pid)
        spans = tuple((int(a), int(b), str(t)) for a, b, t in rec.get("entities", []))
        out.append(Evidence(pid, rec["caption"], spans, scores[i] if i < len(scores) else None,
                            rec.get("image_id"), rec.get("image")))
    if not out:  # no post ids (older exports, GraphML without the posts table): the captions alone
        out = [Evidence(None, c) for c in captions]
    return out


def edge_provenance(g: nx.MultiDiGraph, u: str, relation: str, v: str) -> Provenance | None:
    if not g.has_edge(u, v, key=relation):
        return None
    d = g.edges[u, v, relation]
    names = (str(g.nodes[u].get("name", u)), str(g.nodes[v].get("name", v)))
    ev = _evidence(g, list(d.get(POSTS) or []), list(d.get(POST_SCORES) or []), list(d.get("captions") or []))
    return Provenance(f"{names[0]} → {relation} → {names[1]}", "edge", _edge_source(d), float(d.get("score", 0.0)),
                      int(d.get("count", 1)), names, ev[:MAX_EVIDENCE], len(ev))


def node_provenance(g: nx.MultiDiGraph, n: str) -> Provenance | None:
    if n not in g:
        return None
    d = g.nodes[n]
    name = str(d.get("name", n))
    post_ids: list[str] = []
    for _, _, e in list(g.in_edges(n, data=True)) + list(g.out_edges(n, data=True)):
        post_ids += [p for p in e.get(POSTS) or [] if p not in post_ids]
    table = posts_table(g)
    if not post_ids:  # an entity without relations: the posts whose caption names it
        post_ids = [pid for pid, rec in table.items() if name in rec.get("caption", "")][:MAX_EVIDENCE]
    ev = _evidence(g, post_ids, [], list(d.get("captions") or []))
    return Provenance(f"{name} ({node_kind_type(d)})", "node", count=g.degree(n), names=(name,),
                      evidence=ev[:MAX_EVIDENCE], n_posts=len(ev))
