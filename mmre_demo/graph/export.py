"""Export the app's graph: JSON (node-link + triples), CSV (triples), GraphML (nodes + edges), and for the
tools where graphs live: RDF (Turtle, `graph/rdf.py`) and Neo4j's import files (`graph/neo4j_csv.py`)."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from pathlib import Path
from typing import Any

import networkx as nx

from mmre_demo.data.schema import plain_value as _plain
from mmre_demo.graph.neo4j_csv import neo4j_export
from mmre_demo.graph.store import posts_table, triples, view
from mmre_demo.graph_formats import FORMAT_SUFFIX, NEO4J_FOLDER, GraphFormat

CSV_FIELDS = ("head", "head_type", "relation", "tail", "tail_type", "score", "source", "count")


def to_json_dict(g: nx.MultiDiGraph, threshold: float = 0.0) -> dict[str, Any]:
    h = view(g, threshold, include_suggested=True)
    nodes = []
    for n, d in h.nodes(data=True):
        nodes.append({"id": n, **{k: _plain(v) for k, v in d.items() if k != "image_feature"},
                      "has_image_feature": d.get("image_feature") is not None})
    # the edge attribute "source" (predicted / annotated / suggested) overwrites the node-link "source" key, so
    # the endpoints are also written as "head" / "tail": the file can be read back (graph.importer.read_graph)
    edges = [{"source": u, "target": v, **{k: _plain(x) for k, x in d.items()}, "head": u, "tail": v}
             for u, v, d in h.edges(data=True)]
    return {"format": "mmre_demo.graph/1", "threshold": threshold, "nodes": nodes, "edges": edges,
            "triples": triples(g, threshold), "posts": posts_table(g)}


def to_json(g: nx.MultiDiGraph, threshold: float = 0.0) -> str:
    return json.dumps(to_json_dict(g, threshold), ensure_ascii=False, indent=1)


def to_csv(g: nx.MultiDiGraph, threshold: float = 0.0) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=CSV_FIELDS, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for row in triples(g, threshold):
        w.writerow(row)
    return buf.getvalue()


def to_graphml_graph(g: nx.MultiDiGraph, threshold: float = 0.0) -> nx.MultiDiGraph:
    """A copy whose attributes GraphML can hold (no arrays, lists joined with ' | ')."""
    h = view(g, threshold, include_suggested=True)
    out = nx.MultiDiGraph()
    for n, d in h.nodes(data=True):
        attrs = {k: (" | ".join(map(str, v)) if isinstance(v, list) else _plain(v))
                 for k, v in d.items() if k != "image_feature"}
        out.add_node(n, **attrs)
    for u, v, k, d in h.edges(keys=True, data=True):
        attrs = {a: (" | ".join(map(str, x)) if isinstance(x, list) else _plain(x)) for a, x in d.items()}
        out.add_edge(u, v, key=k, **attrs)
    return out


def to_graphml(g: nx.MultiDiGraph, threshold: float = 0.0) -> str:
    return "\n".join(nx.generate_graphml(to_graphml_graph(g, threshold)))


def to_text(g: nx.MultiDiGraph, fmt: GraphFormat, threshold: float = 0.0) -> str:
    """The one-file formats as text (not neo4j: three files)."""
    if fmt == "rdf":
        from mmre_demo.graph.rdf import to_turtle  # imports rdflib

        return to_turtle(g, threshold)
    writers = {"json": to_json, "csv": to_csv, "graphml": to_graphml}
    if fmt not in writers:
        raise ValueError(f"{fmt!r} is not a one-file format; one of {tuple(writers) + ('rdf',)}")
    return writers[fmt](g, threshold)


def write_neo4j(g: nx.MultiDiGraph, folder: str | Path, threshold: float = 0.0) -> list[str]:
    """nodes.csv, relationships.csv and load.cypher into `folder` (created); their paths."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, text in neo4j_export(g, threshold).files.items():
        (folder / name).write_text(text, encoding="utf-8")
        paths.append(str(folder / name))
    return paths


def write_neo4j_zip(g: nx.MultiDiGraph, path: str | Path, threshold: float = 0.0) -> str:
    """The Neo4j files in one zip, at its top level (unzip it into Neo4j's import folder)."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, text in neo4j_export(g, threshold).files.items():
            zf.writestr(name, text)
    return str(path)


def write_format(g: nx.MultiDiGraph, fmt: GraphFormat, out: str | Path, threshold: float = 0.0) -> list[str]:
    """One format to `out` (a file; a folder for neo4j); the paths written."""
    if fmt == "neo4j":
        return write_neo4j(g, out, threshold)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(to_text(g, fmt, threshold), encoding="utf-8")
    return [str(out)]


def write_all(g: nx.MultiDiGraph, folder: str | Path, threshold: float = 0.0,
              stem: str = "mmre_graph") -> list[str]:
    """Write `<stem>.json`, `.csv`, `.graphml`, `.ttl` and `<stem>_neo4j.zip` into `folder`; return their paths."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for fmt in ("json", "csv", "graphml", "rdf"):
        paths += write_format(g, fmt, folder / f"{stem}{FORMAT_SUFFIX[fmt]}", threshold)
    paths.append(write_neo4j_zip(g, folder / f"{stem}_{NEO4J_FOLDER}.zip", threshold))
    return paths
