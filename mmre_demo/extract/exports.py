"""The corpus graph: rebuilt from `posts.jsonl` + `triples.jsonl` with the app's own graph functions.

Each post is merged with `graph.add_prediction` exactly as the app merges a submission, and written
with `graph.to_json` / `to_graphml` / `to_csv`, so `graph.json`, `graph.graphml` and `triples.csv`
are the app's export formats (and `mmre kge train --dataset graph:graph.json` reads them back). For the
tools where graphs live, `graph.ttl` (RDF) and `neo4j/` (nodes.csv, relationships.csv for
`neo4j-admin database import full`, load.cypher for LOAD CSV) hold the same relations.
Built from the files, not from memory: a resumed run exports the whole corpus.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import networkx as nx

from mmre_demo.data.schema import InputError
from mmre_demo.extract.records import prediction_from_records
from mmre_demo.extract.store import POSTS, TRIPLES, atomic_write, iter_jsonl
from mmre_demo.graph_formats import NEO4J_FOLDER

GRAPH_JSON, GRAPH_GRAPHML, TRIPLES_CSV, SUMMARY = "graph.json", "graph.graphml", "triples.csv", "summary.json"
GRAPH_TTL = "graph.ttl"


def build_graph(folder: str | Path) -> nx.MultiDiGraph:
    """The app-graph contract of `graph/store.py` over every committed post of the folder."""
    from mmre_demo import graph as kg

    folder = Path(folder)
    g = kg.new_graph()
    triples = (rec for _, _, rec in iter_jsonl(folder / TRIPLES))
    pending: dict[str, Any] | None = next(triples, None)
    for _, _, post in iter_jsonl(folder / POSTS):
        if post.get("status") != "ok":
            continue
        own = []
        while pending is not None and pending.get("post_id") == post["key"]:  # same order as posts.jsonl
            own.append(pending)
            pending = next(triples, None)
        image_id = post.get("image_id")
        label = Path(post["image"]).name if image_id and post.get("image") else None
        kg.add_prediction(g, prediction_from_records(post, own), image_id, None, label, post_id=post["key"])
    if pending is not None:
        raise InputError(f"{folder / TRIPLES}: triple of post {pending.get('post_id')!r} is out of the order of "
                         f"{POSTS}; run again with --resume to repair the folder")
    return g


def write_exports(folder: str | Path, threshold: float = 0.5) -> dict[str, Any]:
    """Write graph.json, graph.graphml, triples.csv, graph.ttl and neo4j/ (each file atomically); return the
    graph's counts and what the RDF and Neo4j files hold."""
    from mmre_demo import graph as kg
    from mmre_demo.graph.neo4j_csv import neo4j_export
    from mmre_demo.graph.rdf import rdf_export

    folder = Path(folder)
    g = build_graph(folder)
    atomic_write(folder / GRAPH_JSON, kg.to_json(g, threshold))
    atomic_write(folder / GRAPH_GRAPHML, kg.to_graphml(g, threshold))
    atomic_write(folder / TRIPLES_CSV, kg.to_csv(g, threshold))
    rdf = rdf_export(g, threshold)
    atomic_write(folder / GRAPH_TTL, rdf.turtle)
    neo = neo4j_export(g, threshold)
    (folder / NEO4J_FOLDER).mkdir(exist_ok=True)
    for name, text in neo.files.items():
        atomic_write(folder / NEO4J_FOLDER / name, text)
    kinds = [d.get("kind") for _, d in g.nodes(data=True)]
    return {"threshold": threshold, "entities": kinds.count("entity"), "images": kinds.count("image"),
            "relation_edges": len(kg.relation_edges(g, threshold)),
            "triples_at_threshold": len(kg.triples(g, threshold)),
            "rdf": {"file": GRAPH_TTL, "relations": rdf.relations, "rdf_triples": rdf.rdf_triples},
            "neo4j": {"folder": NEO4J_FOLDER, "files": sorted(neo.files), "nodes": neo.nodes,
                      "relationships": neo.relationships}}
