"""Where the graph's nodes go and which of them get a printed name.

Why this layout: `benchmarks/bench_graph.py` (with `benchmarks/graph_layouts.py`) compares networkx's
spring, Kamada-Kawai and ForceAtlas2 layouts and a stress majorization of Kamada-Kawai's energy
(`stress_layout`), each with and without component packing, by measured overlap (node discs, label boxes,
share of names that fit) on 40- and 150-node views of a synthetic 10,000-post corpus and of a real
`mmre extract` corpus (docs/graph.md). Kamada-Kawai's energy gave the fewest overlaps; minimised by stress
majorization it gives the same picture in a fraction of the time (networkx's optimiser took seconds for a
dense 150-node view). Packing (each component laid out alone, shelved biggest first) helped spring and
ForceAtlas2, not the stress layout, so the app does not pack. After the layout, `spread` pushes apart
nodes whose discs and (for the most connected) names would overlap at the size the app draws.

Names: the most connected nodes first, each at the first free spot around its node (under, over,
right, left) where it overlaps no name already placed and no other disc; hover names every node.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import networkx as nx
import numpy as np

Positions = dict[str, np.ndarray]
LABEL_FONT_PX = 11
CHAR_PX = 6.4  # mean glyph width of the 11-px label font
MAX_LABEL_CHARS = 24
MAX_STRESS = 1500  # the stress layout holds n x n matrices: above this, spring (the app draws at most 150)


@dataclass(frozen=True)
class Canvas:
    """The drawing's size in pixels and the data range mapped onto it (the figure's axes)."""

    width: int = 1300
    height: int = 640
    span: float = 2.5  # the axes run from -1.25 to 1.25

    def to_px(self, p: np.ndarray) -> tuple[float, float]:
        return (p[0] + self.span / 2) / self.span * self.width, (p[1] + self.span / 2) / self.span * self.height


def node_size(degree: int) -> float:
    """Marker diameter in pixels, growing with the degree (the hubs read first)."""
    return min(34.0, 10.0 + 4.0 * math.sqrt(degree))


def stress_layout(g: nx.Graph, init: Positions | None = None, iterations: int = 300, tol: float = 1e-5) -> Positions:
    """Kamada-Kawai's energy (graph distance kept as drawn distance, weighted 1/d^2) minimised by stress
    majorization (weighted SMACOF, Gansner et al. 2004): the same picture as `nx.kamada_kawai_layout`
    at a fraction of the time (one 150 x 150 matrix product per step instead of scipy's optimiser).
    Nodes of different components sit one step beyond the longest distance apart."""
    nodes = list(g)
    n = len(nodes)
    index = {v: i for i, v in enumerate(nodes)}
    d = np.full((n, n), np.inf)
    for src, lengths in nx.all_pairs_shortest_path_length(g):
        for dst, length in lengths.items():
            d[index[src], index[dst]] = length
    finite = d[np.isfinite(d)]
    d[~np.isfinite(d)] = (finite.max() if finite.size else 1.0) + 1.0
    np.fill_diagonal(d, 0.0)
    w = np.zeros_like(d)
    off = d > 0
    w[off] = d[off] ** -2.0
    lap = -w
    np.fill_diagonal(lap, w.sum(axis=1))
    lap_pinv = np.linalg.pinv(lap)
    start = init if init and all(v in init for v in nodes) else nx.circular_layout(g)
    x = np.array([start[v] for v in nodes], dtype=float) * (d.max() / 2)
    prev = np.inf
    for _ in range(iterations):
        diff = x[:, None, :] - x[None, :, :]
        dist = np.sqrt((diff ** 2).sum(axis=-1))
        np.fill_diagonal(dist, 1.0)
        b = -w * d / np.maximum(dist, 1e-9)
        np.fill_diagonal(b, 0.0)
        np.fill_diagonal(b, -b.sum(axis=1))
        x = lap_pinv @ (b @ x)
        energy = float((w * (dist - d) ** 2)[off].sum())
        if prev - energy < tol * max(prev, 1.0):
            break
        prev = energy
    return {v: x[i] for i, v in enumerate(nodes)}


def _one(g: nx.Graph, seed: int, init: Positions | None) -> Positions:
    """The stress layout (Kamada-Kawai's picture: fewest overlaps at 40 and 150 nodes, docs/graph.md);
    spring above `MAX_STRESS` nodes."""
    n = g.number_of_nodes()
    if n == 1:
        return {next(iter(g)): np.zeros(2)}
    if n == 2:
        a, b = list(g)
        return {a: np.array([-0.5, 0.0]), b: np.array([0.5, 0.0])}
    if n <= MAX_STRESS:
        return stress_layout(g, init)
    return spring(g, seed, init)


def spring(g: nx.Graph, seed: int, init: Positions | None) -> Positions:
    n = g.number_of_nodes()
    return nx.spring_layout(g, k=1.6 / math.sqrt(n), pos=init, iterations=60 if n <= 100 else 40, seed=seed)


def normalise(pos: Positions) -> Positions:
    """Positions centred and scaled into [-1, 1] on the longer side (aspect kept)."""
    if not pos:
        return {}
    arr = np.array(list(pos.values()), dtype=float)
    arr -= (arr.max(axis=0) + arr.min(axis=0)) / 2
    half = float(np.abs(arr).max()) or 1.0
    return {k: arr[i] / half for i, k in enumerate(pos)}


def layout(g: nx.Graph, previous: dict[str, tuple[float, float]] | None = None, seed: int = 7,
           aspect: float = Canvas().width / Canvas().height, spread_out: bool = True,
           canvas: Canvas = Canvas()) -> Positions:
    """Positions in [-1, 1] for every node of `g` (directions and parallel edges ignored), then pushed
    apart where their discs and labels would overlap on `canvas` (`spread`).

    The layout starts from `previous` where given, so a graph that grows does not jump.
    """
    if g.number_of_nodes() == 0:
        return {}
    und = undirected(g)
    init = {k: np.asarray(v, dtype=float) for k, v in (previous or {}).items() if k in und} or None
    pos = fit_axes(_one(und, seed, init), aspect)
    return spread_graph(g, pos, canvas) if spread_out else pos


def undirected(g: nx.Graph) -> nx.Graph:
    """`g` as a simple undirected graph (what the layouts read)."""
    return nx.Graph(g.to_undirected()) if g.is_directed() or g.is_multigraph() else g


def fit_axes(pos: Positions, aspect: float) -> Positions:
    """Positions centred and stretched to fill [-1, 1] both ways (the wide canvas)."""
    return _stretch(normalise(pos), aspect)


def spread_graph(g: nx.Graph, pos: Positions, canvas: Canvas = Canvas()) -> Positions:
    """`spread` with `g`'s names and degrees (a view of one or two nodes is left as it is)."""
    if len(pos) <= 2:
        return pos
    names = {n: str(d.get("name", n)) for n, d in g.nodes(data=True)}
    return spread(pos, names, dict(g.degree()), canvas)


def spread(pos: Positions, names: dict[str, str], degree: dict[str, int], canvas: Canvas = Canvas(),
           iterations: int = 200, label_share: float = 0.5) -> Positions:
    """Push overlapping nodes apart in pixel space (each pair along the axis where they overlap least).

    A node's box is its disc and, for the most connected nodes whose label boxes fit in `label_share`
    of the canvas, its label under it: those labels get room, the rest are disc only (and `fitting_labels`
    prints a label where one happens to fit). Positions stay inside the axes."""
    nodes = sorted(pos, key=lambda n: (-degree.get(n, 0), str(n)))
    xy = np.array([canvas.to_px(pos[n]) for n in nodes], dtype=float)
    r = np.array([node_size(degree.get(n, 0)) / 2 for n in nodes])
    w, h = 2 * r + 4, 2 * r + 4
    budget = label_share * canvas.width * canvas.height
    used = 0.0
    for i, n in enumerate(nodes):
        lw, lh = len(label_text(names.get(n, n))) * CHAR_PX + 6, LABEL_FONT_PX + 4
        if used + lw * (2 * r[i] + lh) > budget:
            break
        used += lw * (2 * r[i] + lh)
        w[i], h[i] = max(w[i], lw), h[i] + lh
    # a label hangs under its node: the box's centre is below the disc
    centre = np.array([(h[i] - (2 * r[i] + 4)) / 2 for i in range(len(nodes))])
    lo = np.array([canvas.width * 0.02, canvas.height * 0.03])
    hi = np.array([canvas.width * 0.98, canvas.height * 0.97])
    for _ in range(iterations):
        cy = xy[:, 1] - centre
        dx = xy[:, 0][:, None] - xy[:, 0][None, :]
        dy = cy[:, None] - cy[None, :]
        ox = (w[:, None] + w[None, :]) / 2 - np.abs(dx)
        oy = (h[:, None] + h[None, :]) / 2 - np.abs(dy)
        hit = (ox > 0) & (oy > 0)
        np.fill_diagonal(hit, False)
        if not hit.any():
            break
        along_x = hit & (ox <= oy)
        along_y = hit & (ox > oy)
        sx = np.where(dx == 0, 1.0, np.sign(dx))
        sy = np.where(dy == 0, 1.0, np.sign(dy))
        move = np.stack([(along_x * ox * sx).sum(axis=1), (along_y * oy * sy).sum(axis=1)], axis=1) * 0.25
        xy = np.clip(xy + move, lo, hi)
    span = canvas.span
    back = np.stack([xy[:, 0] / canvas.width * span - span / 2, xy[:, 1] / canvas.height * span - span / 2], axis=1)
    return {n: back[i] for i, n in enumerate(nodes)}


def _stretch(pos: Positions, aspect: float) -> Positions:
    """Fill the wide canvas: the axes span the same data range both ways, the canvas does not."""
    if not pos:
        return pos
    arr = np.array(list(pos.values()))
    span = np.ptp(arr, axis=0)
    span[span == 0] = 1.0
    arr = (arr - arr.min(axis=0)) / span * 2 - 1
    return {k: arr[i] for i, k in enumerate(pos)}


def label_text(name: str) -> str:
    return name if len(name) <= MAX_LABEL_CHARS else name[:MAX_LABEL_CHARS - 1] + "…"


Rect = tuple[float, float, float, float]  # (x0, y0, x1, y1) drawing pixels, y up (not an image `Box`)
LABEL_SPOTS = ("bottom center", "top center", "middle right", "middle left")  # tried in this order
MUST_LABEL = 12  # the most connected nodes are named even over smaller discs (a label has a white ground)


def _label_box(p: tuple[float, float], text: str, radius: float, spot: str = "bottom center") -> Rect:
    """The pixel box (x0, y0, x1, y1; y up) of a label at `spot` of a node of that radius."""
    w, h = len(text) * CHAR_PX, LABEL_FONT_PX + 2
    if spot == "bottom center":
        return p[0] - w / 2, p[1] - radius - 2 - h, p[0] + w / 2, p[1] - radius - 1
    if spot == "top center":
        return p[0] - w / 2, p[1] + radius + 1, p[0] + w / 2, p[1] + radius + 2 + h
    if spot == "middle right":
        return p[0] + radius + 2, p[1] - h / 2, p[0] + radius + 3 + w, p[1] + h / 2
    return p[0] - radius - 3 - w, p[1] - h / 2, p[0] - radius - 2, p[1] + h / 2


def _overlaps(a: Rect, b: Rect) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _disc_box(p: tuple[float, float], r: float) -> Rect:
    return p[0] - r, p[1] - r, p[0] + r, p[1] + r


class _Grid:
    """Boxes bucketed on a grid, so checking a label against 10,000 boxes is not quadratic."""

    def __init__(self, cell: float = 48.0):
        self.cell, self.cells = cell, {}

    def _keys(self, box: Rect) -> Iterable[tuple[int, int]]:
        for i in range(int(box[0] // self.cell), int(box[2] // self.cell) + 1):
            for j in range(int(box[1] // self.cell), int(box[3] // self.cell) + 1):
                yield i, j

    def add(self, box: Rect) -> None:
        for k in self._keys(box):
            self.cells.setdefault(k, []).append(box)

    def hits(self, box: Rect, ignore: Rect | None = None) -> bool:
        return any(_overlaps(box, b) for k in self._keys(box) for b in self.cells.get(k, ()) if b is not ignore)


def fitting_labels(pos: Positions, names: dict[str, str], degree: dict[str, int],
                   canvas: Canvas = Canvas(), always: Iterable[str] = ()) -> dict[str, str]:
    """{node: spot} of the labels to print: `always` (the focused node) first, then the most connected;
    each at the first spot (under, over, right, left of its node) where it overlaps no label already
    placed and no other node's disc. The `MUST_LABEL` most connected may cover smaller discs (never a
    label): the hubs of a dense centre are named too."""
    px = {n: canvas.to_px(p) for n, p in pos.items()}
    radius = {n: node_size(degree.get(n, 0)) / 2 for n in pos}
    discs = {n: _disc_box(px[n], radius[n]) for n in pos}
    disc_grid, label_grid = _Grid(), _Grid()
    for b in discs.values():
        disc_grid.add(b)
    first = [n for n in always if n in pos]
    order = first + sorted((n for n in pos if n not in first), key=lambda n: (-degree.get(n, 0), str(n)))
    chosen: dict[str, str] = {}
    for rank, n in enumerate(order):
        text = label_text(names.get(n, n))
        for spot in LABEL_SPOTS:
            box = _label_box(px[n], text, radius[n], spot)
            if box[0] < 0 or box[2] > canvas.width or box[1] < 0 or box[3] > canvas.height:
                continue
            if label_grid.hits(box) or (rank >= MUST_LABEL and disc_grid.hits(box, discs[n])):
                continue
            chosen[n] = spot
            label_grid.add(box)
            break
    return chosen


def label_boxes(pos: Positions, names: dict[str, str], degree: dict[str, int], spots: dict[str, str],
                canvas: Canvas = Canvas()) -> list[Rect]:
    """The pixel boxes of the printed names (`fitting_labels`' spots) and of every node's disc."""
    out = []
    for n, p in pos.items():
        px, r = canvas.to_px(p), node_size(degree.get(n, 0)) / 2
        out.append(_disc_box(px, r))
        if n in spots:
            out.append(_label_box(px, label_text(names.get(n, n)), r, spots[n]))
    return out


def fitting_texts(points: list[np.ndarray], texts: list[str], taken: list[Rect], canvas: Canvas = Canvas(),
                  font_px: float = 10.0) -> list[bool]:
    """Which small texts (an edge's relation, printed over its midpoint) fit: each where it overlaps no
    box of `taken` (names, discs) and no text kept before it."""
    grid = _Grid()
    for b in taken:
        grid.add(b)
    out = []
    for p, text in zip(points, texts):
        x, y = canvas.to_px(p)
        w = len(text) * CHAR_PX * font_px / LABEL_FONT_PX
        box = (x - w / 2, y + 3, x + w / 2, y + 4 + font_px)
        fits = not grid.hits(box)
        if fits:
            grid.add(box)
        out.append(fits)
    return out
