"""The layouts `bench_graph.py` compares (the app draws only the stress layout, `mmre_demo.graph.placement`):
networkx's spring, Kamada-Kawai and ForceAtlas2 and the stress layout, each with or without component
packing, and the overlap measure that chose among them (docs/graph.md, "The layout, chosen by measurement")."""

from __future__ import annotations

import math

import networkx as nx
import numpy as np

from mmre_demo.graph.placement import (
    MAX_STRESS,
    Canvas,
    Positions,
    _disc_box,
    _label_box,
    _overlaps,
    fit_axes,
    fitting_labels,
    label_text,
    node_size,
    normalise,
    spread_graph,
    spring,
    stress_layout,
    undirected,
)

LAYOUTS = ("spring", "kamada_kawai", "forceatlas2", "stress")
MAX_KAMADA_KAWAI = 400  # above this many nodes in one component Kamada-Kawai is too slow: spring instead


def layout_as(g: nx.Graph, method: str, packed: bool, seed: int = 7,
              aspect: float = Canvas().width / Canvas().height) -> Positions:
    """`placement.layout` (no previous positions) with another layout method, optionally packed."""
    if method not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}, got {method!r}")
    if g.number_of_nodes() == 0:
        return {}
    und = undirected(g)
    if packed:
        parts = [normalise(_one(und.subgraph(c), method, seed))
                 for c in sorted(nx.connected_components(und), key=lambda c: (-len(c), min(map(str, c))))]
        pos = fit_axes(_pack(parts, aspect), aspect)
    else:
        pos = fit_axes(_one(und, method, seed), aspect)
    return spread_graph(g, pos)


def _one(g: nx.Graph, method: str, seed: int) -> Positions:
    n = g.number_of_nodes()
    if n <= 2:
        return {v: np.array([x, 0.0]) for v, x in zip(g, (-0.5, 0.5) if n == 2 else (0.0,))}
    if method == "stress" and n <= MAX_STRESS:
        return stress_layout(g)
    if method == "kamada_kawai" and n <= MAX_KAMADA_KAWAI:
        return nx.kamada_kawai_layout(g, pos=nx.circular_layout(g))
    if method == "forceatlas2":
        sizes = {k: node_size(d) / 40 for k, d in g.degree()}  # prevents overlap of the discs as drawn
        return nx.forceatlas2_layout(g, max_iter=150, seed=seed, scaling_ratio=2.0, node_size=sizes,
                                     distributed_action=True)
    return spring(g, seed, None)


def _pack(parts: list[Positions], aspect: float) -> Positions:
    """Shelf-pack laid-out components (each in [-1, 1]) into one picture, biggest first, each scaled by
    the square root of its node count so a hub's star gets more room than a pair."""
    parts = sorted(parts, key=len, reverse=True)
    sizes = [math.sqrt(len(p)) for p in parts]
    area = sum((2 * s) ** 2 for s in sizes)
    row_width = max(2 * sizes[0], math.sqrt(area * aspect))
    out: Positions = {}
    x = y = shelf = 0.0
    gap = 0.35
    for part, s in zip(parts, sizes):
        w = 2 * s
        if x > 0 and x + w > row_width:
            x, y, shelf = 0.0, y - shelf - gap, 0.0
        for k, p in part.items():
            out[k] = np.array([x + s + p[0] * s, y - s + p[1] * s])
        x += w + gap
        shelf = max(shelf, w)
    return out


def overlap_metrics(pos: Positions, names: dict[str, str], degree: dict[str, int],
                    canvas: Canvas | None = None) -> dict[str, float]:
    """How readable a layout is if every node were labelled: the share of node discs overlapping
    another disc, the share of label boxes overlapping another label or a disc, and the share of labels
    `fitting_labels` can print."""
    canvas = canvas or Canvas()
    nodes = list(pos)
    if not nodes:
        return {"node_overlap": 0.0, "label_overlap": 0.0, "labels_shown": 1.0}
    px = {n: canvas.to_px(pos[n]) for n in nodes}
    radius = {n: node_size(degree.get(n, 0)) / 2 for n in nodes}
    discs = [_disc_box(px[n], radius[n]) for n in nodes]
    labels = [_label_box(px[n], label_text(names.get(n, n)), radius[n]) for n in nodes]
    hit_node = hit_label = 0
    for i in range(len(nodes)):
        hit_node += any(_disc_hits(px[nodes[i]], radius[nodes[i]], px[nodes[j]], radius[nodes[j]])
                        for j in range(len(nodes)) if j != i)
        hit_label += any(_overlaps(labels[i], b) for j, b in enumerate(labels + discs)
                         if j != i and j != len(nodes) + i)
    shown = len(fitting_labels(pos, names, degree, canvas))
    return {"node_overlap": hit_node / len(nodes), "label_overlap": hit_label / len(nodes),
            "labels_shown": shown / len(nodes)}


def _disc_hits(a: tuple[float, float], ra: float, b: tuple[float, float], rb: float) -> bool:
    return math.hypot(a[0] - b[0], a[1] - b[1]) < ra + rb
