"""A readable view of a large graph: the top-N nodes by degree and the edges among them, with a note.

For the app's "Load graph": a corpus graph of thousands of nodes cannot be drawn legibly, so the
view keeps the most connected nodes and says what it left out (the exports hold everything).
"""

from __future__ import annotations

from collections.abc import Iterable

import networkx as nx

from mmre_demo.graph.store import view

DEFAULT_TOP_N = 150


def top_degree_view(g: nx.MultiDiGraph, top_n: int = DEFAULT_TOP_N, threshold: float = 0.0,
                    kinds: Iterable[str] | None = None, keep: Iterable[str] = (),
                    thresholded: bool = False) -> tuple[nx.MultiDiGraph, str | None]:
    """(subgraph, note): the thresholded graph if it has at most `top_n` nodes (note None), else its `top_n`
    highest-degree nodes (ties by id, so the view is stable; `keep`, e.g. the focused node, always in)
    among `kinds` (default: all) and their edges. `thresholded`: `g` is already a view, use it as it is."""
    if top_n < 1:
        raise ValueError(f"top_n must be at least 1, got {top_n}")
    h = g if thresholded else view(g, threshold, include_suggested=True)
    wanted = set(kinds) if kinds is not None else None
    candidates = [n for n, d in h.nodes(data=True) if wanted is None or d.get("kind") in wanted]
    if len(candidates) <= top_n and wanted is None:
        return h, None
    first = [n for n in keep if n in h]
    deg = dict(h.degree())
    ranked = first + sorted((n for n in candidates if n not in first), key=lambda n: (-deg[n], str(n)))
    ranked = ranked[:max(top_n, len(first))]
    sub = h.subgraph(ranked).copy()
    hidden_nodes = h.number_of_nodes() - sub.number_of_nodes()
    hidden_edges = h.number_of_edges() - sub.number_of_edges()
    note = (f"Overview: the {len(ranked):,} most connected of {h.number_of_nodes():,} nodes and the "
            f"{sub.number_of_edges():,} edges among them; hidden: {hidden_nodes:,} nodes, {hidden_edges:,} edges "
            "(search a name or filter to see them; the tab and the exports keep them all).")
    return sub, note
