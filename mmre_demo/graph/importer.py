"""Read an exported graph (`graph.json` or `.graphml`, from the app or from `mmre extract`) back into the
app-graph contract of `graph/store.py`, so it can be browsed, completed and trained on.

What the exports do not carry cannot come back: image features (JSON keeps only
`has_image_feature`), and GraphML joins list attributes with " | " (a caption that itself contains
" | " comes back split). A file that is not such an export is refused with the reason.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from xml.etree.ElementTree import ParseError

import networkx as nx

from mmre_demo.data.schema import InputError
from mmre_demo.graph.store import ENTITY_KIND, IMAGE_KIND, IMAGE_RELATIONS, POST_SCORES, POSTS, SOURCES

JSON_FORMAT = "mmre_demo.graph/1"
LIST_SEP = " | "  # how export.to_graphml_graph joins lists
MAX_BYTES = 2 * 1024**3
# an app's tab holds the graph in memory and redraws views of it: a corpus of 100,000 posts has
# ~150,000 edges; a file with more is refused before it is built (mmre kge reads big graphs offline)
MAX_EDGES = 500_000
MAX_NODES = 500_000


def read_graph(path: str | Path) -> nx.MultiDiGraph:
    """The graph of an exported `graph.json` / `graph.graphml` (format sniffed from the extension or first byte)."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{p}: no such graph file")
    if p.stat().st_size > MAX_BYTES:
        raise InputError(f"{p}: {p.stat().st_size // 2**20} MB is over the {MAX_BYTES // 2**30} GB limit "
                         "of a graph file")
    ext = p.suffix.lower()
    if ext not in (".json", ".graphml", ".xml"):
        with p.open("rb") as fh:
            head = fh.read(64).lstrip()
        ext = ".json" if head.startswith(b"{") else ".graphml" if head.startswith(b"<") else ext
    if ext == ".json":
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise InputError(f"{p}: not valid JSON ({exc}); expected a graph.json exported by the app or "
                             "`mmre extract`") from None
        return graph_from_json_dict(data, str(p))
    if ext in (".graphml", ".xml"):
        _check_size(_count_tags(p, b"<edge"), _count_tags(p, b"<node"), p.name)
        return graph_from_graphml(p)
    raise InputError(f"{p}: unknown graph file type {ext or '(none)'!r}; give the graph.json or graph.graphml export")


def graph_from_json_dict(data: Any, name: str = "graph.json") -> nx.MultiDiGraph:
    """Inverse of `export.to_json_dict` (node-link with `kind`/`name`/`type`/`captions`, edges keyed by relation)."""
    if not isinstance(data, dict) or data.get("format") != JSON_FORMAT:
        got = data.get("format") if isinstance(data, dict) else type(data).__name__
        raise InputError(f"{name}: not an mmre_demo graph export (format {got!r}, expected {JSON_FORMAT!r})")
    if not isinstance(data.get("nodes"), list) or not isinstance(data.get("edges"), list):
        raise InputError(f"{name}: 'nodes' and 'edges' must be lists")
    _check_size(len(data["edges"]), len(data["nodes"]), name)
    g = nx.MultiDiGraph()
    g.graph[POSTS] = _posts(data.get("posts"), name)
    for n in data["nodes"]:
        if not isinstance(n, dict) or "id" not in n:
            raise InputError(f"{name}: a node without an 'id': {str(n)[:120]}")
        attrs = {k: v for k, v in n.items() if k not in ("id", "has_image_feature")}
        g.add_node(str(n["id"]), **_node_attrs(attrs, str(n["id"]), name))
    edges = data["edges"]
    if edges and all(isinstance(e, dict) and "head" not in e for e in edges):
        edges = _edges_from_triples(data, name)  # an export written before edges carried "head"/"tail"
    for e in edges:
        if not isinstance(e, dict) or "head" not in e or "tail" not in e:
            raise InputError(f"{name}: an edge without 'head'/'tail': {str(e)[:120]}")
        _add_edge(g, str(e["head"]), str(e["tail"]),
                  {k: v for k, v in e.items() if k not in ("head", "tail", "target")}, name)
    return g


def _check_size(n_edges: int, n_nodes: int, name: str) -> None:
    if n_edges > MAX_EDGES or n_nodes > MAX_NODES:
        raise InputError(f"{name}: {n_nodes:,} nodes and {n_edges:,} edges is more than the app opens "
                         f"(at most {MAX_NODES:,} nodes and {MAX_EDGES:,} edges); export a higher threshold or "
                         "train and query it offline with `mmre kge`")


def _count_tags(path: Path, tag: bytes, chunk: int = 1 << 22) -> int:
    """How often `tag` occurs in the file, read in chunks (a GraphML file is counted before it is parsed)."""
    n, tail = 0, b""
    with path.open("rb") as fh:
        while block := fh.read(chunk):
            data = tail + block
            n += data.count(tag)
            tail = data[-(len(tag) - 1):]
            n -= tail.count(tag)  # a tag inside the kept tail is counted again with the next block
    return n + tail.count(tag)


def _posts(value: Any, name: str) -> dict[str, dict[str, Any]]:
    """The export's posts table (absent in older exports and in GraphML: provenance then has captions only)."""
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(v, dict) and isinstance(v.get("caption"), str)
                                              for v in value.values()):
        raise InputError(f"{name}: 'posts' must map each post id to a record with its 'caption'")
    return {str(k): v for k, v in value.items()}


def _edges_from_triples(data: dict[str, Any], name: str) -> list[dict[str, Any]]:
    """Older exports lost each edge's head (its "source" key holds the provenance); their `triples` list
    still names both ends of every predicted / annotated relation (suggestions and depicts edges are lost)."""
    rows = data.get("triples")
    if not isinstance(rows, list):
        raise InputError(f"{name}: edges without 'head' and no 'triples' list to rebuild them from")
    out = []
    for t in rows:
        if not isinstance(t, dict) or "head_id" not in t or "tail_id" not in t:
            raise InputError(f"{name}: a triple without 'head_id'/'tail_id': {str(t)[:120]}")
        out.append({"head": t["head_id"], "tail": t["tail_id"], "relation": t.get("relation"),
                    "score": t.get("score", 0.0), "source": t.get("source", "predicted"), "count": t.get("count", 1)})
    return out


def graph_from_graphml(path: str | Path) -> nx.MultiDiGraph:
    """Inverse of `export.to_graphml` (list attributes were joined with " | ")."""
    try:
        raw = nx.read_graphml(str(path), force_multigraph=True)
    except (ParseError, nx.NetworkXError, ValueError, KeyError) as exc:
        raise InputError(f"{path}: not a GraphML file networkx can read ({exc})") from None
    if not raw.is_directed():
        raise InputError(f"{path}: an undirected graph; the mmre_demo export is directed (head -> tail)")
    g = nx.MultiDiGraph()
    for n, d in raw.nodes(data=True):
        attrs = dict(d)
        attrs["captions"] = _split(attrs.get("captions"))
        g.add_node(str(n), **_node_attrs(attrs, str(n), str(path)))
    for u, v, d in raw.edges(data=True):
        attrs = dict(d)
        attrs["captions"] = _split(attrs.get("captions"))
        if POSTS in attrs:
            attrs[POSTS] = _split(attrs[POSTS])
        _add_edge(g, str(u), str(v), attrs, str(path))
    return g


def _split(value: Any) -> list[str]:
    if value is None or value == "":
        return []
    return value if isinstance(value, list) else str(value).split(LIST_SEP)


def _node_attrs(attrs: dict[str, Any], nid: str, name: str) -> dict[str, Any]:
    kind = attrs.get("kind")
    if kind not in (ENTITY_KIND, IMAGE_KIND):
        raise InputError(f"{name}: node {nid!r} has kind {kind!r}; an mmre_demo graph has 'entity' and 'image' "
                         "nodes (is this an export of the app or of `mmre extract`?)")
    captions = attrs.get("captions", [])
    attrs["captions"] = [str(c) for c in captions] if isinstance(captions, list) else _split(captions)
    attrs.setdefault("name", nid.split(":", 1)[-1])
    attrs.setdefault("type", "IMAGE" if kind == IMAGE_KIND else "MISC")
    return attrs


def _add_edge(g: nx.MultiDiGraph, u: str, v: str, attrs: dict[str, Any], name: str) -> None:
    for end in (u, v):
        if end not in g:
            raise InputError(f"{name}: edge {u!r} -> {v!r} names an unknown node {end!r}")
    rel = attrs.get("relation")
    if not isinstance(rel, str) or not rel:
        raise InputError(f"{name}: edge {u!r} -> {v!r} has no 'relation'")
    source = attrs.get("source", "predicted")
    if source not in SOURCES:
        raise InputError(f"{name}: edge {u!r} -{rel}-> {v!r} has source {source!r}; expected one of {SOURCES}")
    try:
        attrs["score"] = float(attrs.get("score", 1.0 if rel in IMAGE_RELATIONS else 0.0))
        attrs["count"] = int(attrs.get("count", 1))
    except (TypeError, ValueError):
        raise InputError(f"{name}: edge {u!r} -{rel}-> {v!r} has a non-numeric score or count") from None
    attrs["source"] = source
    attrs.setdefault("captions", [])
    if POST_SCORES in attrs:
        try:
            raw = attrs[POST_SCORES]
            attrs[POST_SCORES] = [float(x) for x in (raw if isinstance(raw, list) else _split(raw))]
        except (TypeError, ValueError):
            raise InputError(f"{name}: edge {u!r} -{rel}-> {v!r} has non-numeric post_scores") from None
    g.add_edge(u, v, key=rel, **attrs)
