"""The app's knowledge graph: a `networkx.MultiDiGraph` that accumulates triples across submissions.

Contract (the KGE code relies on it):

* entity nodes: id ``f"{type}:{name}"``, ``kind="entity"``, ``name``, ``type``, ``captions`` (list),
  optional ``image_feature`` (pooled vision feature of the image the entity came with);
* image nodes: id ``f"image:{image_id}"``, ``kind="image"``, linked to the entities of its caption by
  edges with ``relation="depicts"``;
* relation edges between entities: key = relation, ``relation``, ``score``, ``source``
  ("predicted" | "annotated" | "suggested"), ``count`` (how many submissions produced it),
  ``captions``, and where the post is known ``posts`` / ``post_scores`` (the id of every post that
  produced it and the probability it had there, in the same order);
* ``g.graph["posts"]``: post id -> {"caption", "image_id", "image", "entities": [[start, end, type], ...]},
  so an edge or a node can be traced back to the posts it came from (provenance).

No torch and no model here: plain networkx.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import networkx as nx
import numpy as np

from mmre_demo.data.labels import ENTITY_TYPES, NONE_LABEL

if TYPE_CHECKING:  # for the annotation only: graph/ stays free of the model's imports (and of a cycle)
    from mmre_demo.annotations.store import Decision, Undo
    from mmre_demo.prediction import Prediction

ENTITY_KIND, IMAGE_KIND = "entity", "image"
DEPICTS = "depicts"  # image -> each entity of its caption
SHOWS_TEXT_OF = "shows text of"  # image -> an entity whose name was read in the image (score: OCR confidence)
IMAGE_RELATIONS = (DEPICTS, SHOWS_TEXT_OF)  # edges from an image node: kept in every view, never KGE triples
PREDICTED, ANNOTATED, SUGGESTED = "predicted", "annotated", "suggested"
SOURCES = (PREDICTED, ANNOTATED, SUGGESTED)
DEFAULT_TYPE = "MISC"
POSTS = "posts"  # g.graph[POSTS]: the posts table; on an edge: the ids of its posts
POST_SCORES = "post_scores"


def new_graph() -> nx.MultiDiGraph:
    return nx.MultiDiGraph()


def node_id(name: str, etype: str | None) -> str:
    """Same entity text + type = same node: `TYPE:name`."""
    return f"{(etype or DEFAULT_TYPE).upper()}:{name.strip()}"


def node_name(nid: str) -> str:
    """The name part of an entity node id (`PER:Bill Cosby` -> `Bill Cosby`); other labels unchanged."""
    return nid.split(":", 1)[-1]


def node_type(nid: str) -> str:
    """The entity type of a node id (`PER:Bill Cosby` -> `PER`); "" when the id carries no known type."""
    head, sep, _ = str(nid).partition(":")
    return head if sep and head in ENTITY_TYPES else ""


def image_node_id(image_id: str) -> str:
    return f"image:{image_id}"


def add_entity(g: nx.MultiDiGraph, name: str, etype: str | None, caption: str | None = None,
               image_feature: np.ndarray | None = None) -> str:
    nid = node_id(name, etype)
    if nid not in g:
        g.add_node(nid, kind=ENTITY_KIND, name=name.strip(), type=(etype or DEFAULT_TYPE).upper(), captions=[])
    data = g.nodes[nid]
    if caption and caption not in data["captions"]:
        data["captions"].append(caption)
    if image_feature is not None and data.get("image_feature") is None:
        data["image_feature"] = np.asarray(image_feature, dtype=np.float32).reshape(-1)
    return nid


def add_image(g: nx.MultiDiGraph, image_id: str, caption: str | None = None,
              image_feature: np.ndarray | None = None, label: str | None = None) -> str:
    nid = image_node_id(image_id)
    if nid not in g:
        g.add_node(nid, kind=IMAGE_KIND, name=label or image_id, type="IMAGE", captions=[])
    if caption and caption not in g.nodes[nid]["captions"]:
        g.nodes[nid]["captions"].append(caption)
    if image_feature is not None and g.nodes[nid].get("image_feature") is None:
        g.nodes[nid]["image_feature"] = np.asarray(image_feature, dtype=np.float32).reshape(-1)
    return nid


def add_post(g: nx.MultiDiGraph, post_id: str, caption: str, entities: Iterable[Any] = (),
             image_id: str | None = None, image: str | None = None) -> None:
    """Record a post in the posts table (its entities as [start, end, type] spans, for highlighting)."""
    g.graph.setdefault(POSTS, {})[post_id] = {
        "caption": caption, "image_id": image_id, "image": image,
        "entities": [[int(e.start), int(e.end), str(e.type or "")] for e in entities]}


def posts_table(g: nx.MultiDiGraph) -> dict[str, dict[str, Any]]:
    return g.graph.get(POSTS) or {}


def _note_post(d: dict[str, Any], post_id: str | None, score: float) -> None:
    if post_id is None:
        return
    d.setdefault(POSTS, []).append(post_id)
    d.setdefault(POST_SCORES, []).append(round(float(score), 6))


def add_relation(g: nx.MultiDiGraph, head: str, relation: str, tail: str, score: float,
                 source: str = PREDICTED, caption: str | None = None, post_id: str | None = None) -> bool:
    """Add or update the edge (head, relation, tail); keeps the highest score. False for `None`/self-loops.
    `post_id`: the post it came from (see the posts table), kept with this post's score."""
    if relation == NONE_LABEL or head == tail:
        return False
    if source not in SOURCES:
        raise ValueError(f"source must be one of {SOURCES}, got {source!r}")
    if g.has_edge(head, tail, key=relation):
        d = g.edges[head, tail, relation]
        # an annotated or predicted edge replaces a suggestion; an annotation outranks a prediction
        rank = {SUGGESTED: 0, PREDICTED: 1, ANNOTATED: 2}
        if rank[source] > rank[d["source"]]:
            d["source"] = source
            d["score"] = float(score)
        elif rank[source] == rank[d["source"]]:
            d["score"] = max(float(d["score"]), float(score))
        d["count"] = int(d.get("count", 1)) + 1
        if caption and caption not in d["captions"]:
            d["captions"].append(caption)
        _note_post(d, post_id, score)
        return True
    g.add_edge(head, tail, key=relation, relation=relation, score=float(score), source=source, count=1,
               captions=[caption] if caption else [])
    _note_post(g.edges[head, tail, relation], post_id, score)
    return True


def remove_relation(g: nx.MultiDiGraph, head: str, relation: str, tail: str) -> bool:
    if g.has_edge(head, tail, key=relation):
        g.remove_edge(head, tail, key=relation)
        return True
    return False


def add_suggested_link(g: nx.MultiDiGraph, head: str, relation: str, tail: str, score: float,
                       rank: int | None = None) -> None:
    """A suggested link the user added: a dashed edge that keeps the rank it was suggested at."""
    add_relation(g, head, relation, tail, float(score), SUGGESTED)
    if g.has_edge(head, tail, key=relation):
        g.edges[head, tail, relation].setdefault("rank", rank)


def apply_decision(g: nx.MultiDiGraph, d: Decision) -> None:
    """The graph after an annotator's decision: it replaces what stood on the pair before (the annotator's
    earlier decision, the model's relations for the pair at any probability), so a relabel twice leaves
    one edge."""
    c = d.candidate
    h, t = add_entity(g, c.head.text, c.head.type), add_entity(g, c.tail.text, c.tail.type)
    predicted = [rel for rel, e in (g[h][t].items() if g.has_edge(h, t) else []) if e["source"] == PREDICTED]
    earlier = d.replaces.relation if d.replaces else NONE_LABEL
    for stood in {c.predicted, *predicted, earlier} - {d.relation, NONE_LABEL}:
        remove_relation(g, h, stood, t)
    if d.relation != NONE_LABEL:
        add_relation(g, h, d.relation, t, 1.0, ANNOTATED, c.caption)


def take_back_decision(g: nx.MultiDiGraph, undo: Undo) -> None:
    """The graph after an undo: the undone decision's edge goes; the decision it replaced (or else the
    prediction) stands again."""
    d, c = undo.undone, undo.undone.candidate
    h, t = add_entity(g, c.head.text, c.head.type), add_entity(g, c.tail.text, c.tail.type)
    if d.relation != NONE_LABEL:
        remove_relation(g, h, d.relation, t)
    if undo.restored is not None:
        apply_decision(g, undo.restored)
    elif c.predicted != NONE_LABEL:
        add_relation(g, h, c.predicted, t, float(c.probability or 0.0), PREDICTED, c.caption)


def add_prediction(g: nx.MultiDiGraph, prediction: Prediction, image_id: str | None = None,
                   image_feature: np.ndarray | None = None, image_label: str | None = None,
                   min_score: float | None = None, post_id: str | None = None) -> dict[str, int]:
    """Merge one `Prediction` into the graph: every entity, and every pair whose relation reaches
    `min_score` (default: the prediction's threshold, i.e. the relations the model asserts).

    A higher threshold is applied when the graph is drawn or exported, so moving the slider up and
    down never loses triples. `post_id` names the post in the posts table (provenance). Returns counts
    of what was added.
    """
    floor = prediction.threshold if min_score is None else min_score
    caption = prediction.caption
    if post_id is not None:
        add_post(g, post_id, caption, prediction.entities, image_id if prediction.has_image else None, image_label)
    # edges are counted as they are added: g.number_of_edges() walks every edge of a MultiDiGraph,
    # which made merging a corpus quadratic (10,000 posts: minutes instead of seconds)
    before_nodes, edges_added = g.number_of_nodes(), 0
    ids = {}
    for e in prediction.entities:
        ids[(e.start, e.end)] = add_entity(g, e.text, e.type, caption, image_feature)
    if image_id is not None and prediction.has_image:
        img = add_image(g, image_id, caption, image_feature, image_label)
        for nid in ids.values():
            if not g.has_edge(img, nid, key=DEPICTS):
                g.add_edge(img, nid, key=DEPICTS, relation=DEPICTS, score=1.0, source=PREDICTED, count=1,
                           captions=[caption])
                edges_added += 1
        for gr in getattr(prediction, "groundings", []):
            nid = ids[(gr.entity.start, gr.entity.end)]
            if g.has_edge(img, nid, key=SHOWS_TEXT_OF):
                d = g.edges[img, nid, SHOWS_TEXT_OF]
                d["score"] = max(float(d["score"]), float(gr.ocr_confidence))
            else:
                g.add_edge(img, nid, key=SHOWS_TEXT_OF, relation=SHOWS_TEXT_OF, score=float(gr.ocr_confidence),
                           source=PREDICTED, count=1, captions=[caption], read_text=gr.matched_text)
                edges_added += 1
            _note_post(g.edges[img, nid, SHOWS_TEXT_OF], post_id, gr.ocr_confidence)
    n_rel = 0
    for p in prediction.pairs:
        if p.label == NONE_LABEL or p.probability < floor:
            continue
        h, t = ids[(p.head.start, p.head.end)], ids[(p.tail.start, p.tail.end)]
        is_new = not g.has_edge(h, t, key=p.label)
        added = add_relation(g, h, p.label, t, p.probability, PREDICTED, caption, post_id)
        n_rel += added
        edges_added += added and is_new
    return {"nodes_added": g.number_of_nodes() - before_nodes, "edges_added": edges_added, "relations": n_rel}


def relation_edges(g: nx.MultiDiGraph, threshold: float = 0.0,
                   sources: Iterable[str] = SOURCES) -> list[tuple[str, str, dict]]:
    """Entity->entity relation edges with score >= threshold (annotated edges always pass)."""
    srcs = set(sources)
    out = []
    for u, v, d in g.edges(data=True):
        if d.get("relation") in IMAGE_RELATIONS or d.get("source") not in srcs:
            continue
        if d.get("source") != ANNOTATED and float(d.get("score", 0.0)) < threshold:
            continue
        out.append((u, v, d))
    return out


def view(g: nx.MultiDiGraph, threshold: float = 0.0, include_suggested: bool = True,
         keep_isolated: bool = True) -> nx.MultiDiGraph:
    """A copy of the graph with the threshold applied (image edges always kept)."""
    h = nx.MultiDiGraph()
    h.graph.update(g.graph)  # the posts table travels with every view (shared, not copied)
    h.add_nodes_from(g.nodes(data=True))
    sources = SOURCES if include_suggested else (PREDICTED, ANNOTATED)
    for u, v, d in relation_edges(g, threshold, sources):
        h.add_edge(u, v, key=d["relation"], **d)
    for u, v, k, d in g.edges(keys=True, data=True):
        if d.get("relation") in IMAGE_RELATIONS:
            h.add_edge(u, v, key=k, **d)
    if not keep_isolated:
        h.remove_nodes_from([n for n in list(h) if h.degree(n) == 0])
    return h


def triples(g: nx.MultiDiGraph, threshold: float = 0.0, include_suggested: bool = False) -> list[dict[str, Any]]:
    """The graph's relation triples as plain dicts (sorted by score, best first)."""
    sources = SOURCES if include_suggested else (PREDICTED, ANNOTATED)
    rows = []
    for u, v, d in relation_edges(g, threshold, sources):
        hu, hv = g.nodes[u], g.nodes[v]
        rows.append({"head": hu.get("name", u), "head_type": hu.get("type", ""), "relation": d["relation"],
                     "tail": hv.get("name", v), "tail_type": hv.get("type", ""), "score": round(float(d["score"]), 6),
                     "source": d["source"], "count": int(d.get("count", 1)), "head_id": u, "tail_id": v})
    rows.sort(key=lambda r: -r["score"])
    return rows


def entity_nodes(g: nx.MultiDiGraph) -> list[str]:
    return sorted(n for n, d in g.nodes(data=True) if d.get("kind") == ENTITY_KIND)
