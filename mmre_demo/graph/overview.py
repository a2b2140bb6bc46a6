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
                    kinds: Iterable[str] | None = None) -> tuple[nx.MultiDiGraph, str | None]:
    """(subgraph, note): the thresholded graph if it has at most `top_n` nodes (note None), else its `top_n`
    highest-degree nodes (ties by id, so the view is stable) among `kinds` (default: all) and their edges."""
    if top_n < 1:
        raise ValueError(f"top_n must be at least 1, got {top_n}")
    h = view(g, threshold, include_suggested=True)
    wanted = set(kinds) if kinds is not None else None
    candidates = [n for n, d in h.nodes(data=True) if wanted is None or d.get("kind") in wanted]
    if len(candidates) <= top_n and wanted is None:
        return h, None
    ranked = sorted(candidates, key=lambda n: (-h.degree(n), str(n)))[:top_n]
    sub = h.subgraph(ranked).copy()
    note = (f"Showing the {len(ranked):,} most connected of {h.number_of_nodes():,} nodes and the "
            f"{sub.number_of_edges():,} edges among them (of {h.number_of_edges():,}); "
            "the exported files hold the full graph.")
    return sub, note
