"""Draw the app's graph with plotly: entity nodes coloured by type and sized by degree, labels where
they fit (graph/placement.py), directed edges with relation, probability and source on hover, image nodes
linked by dotted `depicts` edges, suggested links dashed. The title counts relations and suggested
links apart."""

from __future__ import annotations

import textwrap
from collections import defaultdict
from collections.abc import Sequence
from typing import Any, Protocol

import networkx as nx
import numpy as np
import plotly.graph_objects as go

from mmre_demo.data.labels import short_name
from mmre_demo.graph.placement import (
    Canvas,
    fitting_labels,
    fitting_texts,
    label_boxes,
    label_text,
    layout,
    node_size,
)
from mmre_demo.graph.store import (
    ANNOTATED,
    DEPICTS,
    ENTITY_KIND,
    IMAGE_KIND,
    IMAGE_RELATIONS,
    PREDICTED,
    SHOWS_TEXT_OF,
    SUGGESTED,
    view,
)


class SuggestedLink(Protocol):
    """A link drawn dashed without being in the graph (the KGE's `Suggestion` is one)."""

    @property
    def head(self) -> str: ...
    @property
    def relation(self) -> str: ...
    @property
    def tail(self) -> str: ...
    @property
    def score(self) -> float: ...
    @property
    def rank(self) -> int | None: ...


# The one colour per entity type, shared by the graph and the app's entity highlighting.
TYPE_COLOURS = {"PER": "#1f77b4", "ORG": "#ff7f0e", "LOC": "#2ca02c", "MISC": "#9467bd", "IMAGE": "#7f7f7f"}
UNKNOWN_TYPE_COLOUR = "#8c8c8c"
EDGE_STYLES = {  # source -> (colour, width, dash)
    PREDICTED: ("rgba(68,68,68,0.5)", 1.4, "solid"),  # light: the names on top stay readable
    ANNOTATED: ("#0a8f3c", 2.6, "solid"),
    SUGGESTED: ("#d62728", 1.6, "dash"),
    DEPICTS: ("#b0b0b0", 1.0, "dot"),
    SHOWS_TEXT_OF: ("#e377c2", 2.0, "dot"),
}
MAX_ARROWS = 300
MAX_EDGE_LABELS = 30  # relation names printed on the edges up to this many edges (hover always has them)
DEFAULT_HEIGHT = 640


def _curve(p0: np.ndarray, p1: np.ndarray, offset: float, n: int = 14) -> np.ndarray:
    """Quadratic Bezier from p0 to p1 bent sideways by `offset` (0 = straight)."""
    mid = (p0 + p1) / 2
    d = p1 - p0
    perp = np.array([-d[1], d[0]])
    norm = np.linalg.norm(perp)
    ctrl = mid + (perp / norm * offset if norm > 0 else 0)
    t = np.linspace(0, 1, n)[:, None]
    return (1 - t) ** 2 * p0 + 2 * (1 - t) * t * ctrl + t ** 2 * p1


_SPOT_ANCHORS = {  # label spot -> (xanchor, yanchor, x shift, y shift) from the node's centre
    "bottom center": ("center", "top", 0, -1), "top center": ("center", "bottom", 0, 1),
    "middle right": ("left", "middle", 1, 0), "middle left": ("right", "middle", -1, 0),
}


def _label(p: np.ndarray, text: str, size: float, spot: str, bold: bool) -> dict[str, Any]:
    """A node's name as an annotation on a white ground (readable over the edges), at its spot."""
    xa, ya, dx, dy = _SPOT_ANCHORS[spot]
    gap = size / 2 + 2
    return dict(x=float(p[0]), y=float(p[1]), xref="x", yref="y", text=f"<b>{text}</b>" if bold else text,
                showarrow=False, xanchor=xa, yanchor=ya, xshift=dx * gap, yshift=dy * gap,
                font=dict(size=11, color="#1f2937"), bgcolor="rgba(255,255,255,0.78)", borderpad=0)


def _drawn(g: nx.MultiDiGraph, threshold: float, suggestions: Sequence[SuggestedLink] | None,
           thresholded: bool) -> nx.MultiDiGraph:
    """What `figure` draws: the graph at the threshold (unless `thresholded`) with the `suggestions` laid
    over it as suggested edges (not added to `g`)."""
    h = g.copy() if thresholded else view(g, threshold, include_suggested=True)
    for s in suggestions or []:
        if s.head in h and s.tail in h and not h.has_edge(s.head, s.tail, key=s.relation):
            h.add_edge(s.head, s.tail, key=s.relation, relation=s.relation, score=float(s.score),
                       source=SUGGESTED, count=0, captions=[], rank=s.rank)
    return h


def _edge_counts(h: nx.MultiDiGraph) -> tuple[int, int]:
    """Relation edges (images' edges and suggestions left out) and suggested links of a drawing."""
    n_rel = sum(1 for *_, d in h.edges(data=True) if d.get("relation") not in IMAGE_RELATIONS
                and d.get("source") != SUGGESTED)
    return n_rel, sum(1 for *_, d in h.edges(data=True) if d.get("source") == SUGGESTED)


def _counts_text(h: nx.MultiDiGraph, threshold: float) -> str:
    n_entities = sum(1 for _, d in h.nodes(data=True) if d.get("kind") == ENTITY_KIND)
    n_rel, n_sug = _edge_counts(h)
    return (f"{n_entities} entities, {n_rel} relations, {n_sug} suggested link{'' if n_sug == 1 else 's'} "
            f"(threshold {threshold:.2f})")


def drawn_counts(g: nx.MultiDiGraph, threshold: float = 0.0, suggestions: Sequence[SuggestedLink] | None = None,
                 thresholded: bool = False) -> str:
    """What `figure` (same arguments) draws, counted as its title says it: "12 entities, 9 relations, 0
    suggested links (threshold 0.50)". For the status line, which must not read the figure back."""
    return _counts_text(_drawn(g, threshold, suggestions, thresholded), threshold)


EDGE_NAMES = {PREDICTED: "predicted relation", ANNOTATED: "annotated relation", SUGGESTED: "suggested link",
              DEPICTS: "image depicts / mentions", SHOWS_TEXT_OF: "image shows the text of (read by OCR)"}


def _edge_geometry(h: nx.MultiDiGraph, pos: dict[str, Any]) -> tuple[dict, dict, list]:
    """Each edge style's polyline (parallel edges bent apart), the edges' midpoints by style (where their names
    and hover go) and the arrowheads (at most MAX_ARROWS)."""
    groups: dict[frozenset, list] = defaultdict(list)
    for u, v, d in h.edges(data=True):
        groups[frozenset((u, v))].append((u, v, d))
    lines: dict[str, tuple[list, list]] = defaultdict(lambda: ([], []))
    mids: dict[str, list] = defaultdict(list)
    arrows = []
    for edges in groups.values():
        m = len(edges)
        for i, (u, v, d) in enumerate(edges):
            canon = 1.0 if str(u) <= str(v) else -1.0
            pts = _curve(pos[u], pos[v], (i - (m - 1) / 2) * 0.12 * canon if m > 1 else 0.0)
            style = d["relation"] if d.get("relation") in IMAGE_RELATIONS else d.get("source", PREDICTED)
            xs, ys = lines[style]
            xs.extend(list(pts[:, 0]) + [None])
            ys.extend(list(pts[:, 1]) + [None])
            if style == DEPICTS:
                continue
            mids[style].append((pts[len(pts) // 2], u, v, d))
            if style != SHOWS_TEXT_OF and len(arrows) < MAX_ARROWS:
                a, b = pts[int(len(pts) * 0.7)], pts[-3]
                arrows.append(dict(x=b[0], y=b[1], ax=a[0], ay=a[1], xref="x", yref="y", axref="x", ayref="y",
                                   showarrow=True, arrowhead=3, arrowsize=1.3, arrowwidth=EDGE_STYLES[style][1],
                                   arrowcolor=EDGE_STYLES[style][0], text="", standoff=9))
    return lines, mids, arrows


def _edge_hover(h: nx.MultiDiGraph, u: str, v: str, d: dict) -> str:
    return (f"<b>{h.nodes[u].get('name', u)}</b> → {d['relation']} → <b>{h.nodes[v].get('name', v)}</b>"
            + (f"<br>suggested link (embedding rank {d.get('rank', '?')}; not a probability)"
               if d.get("source") == SUGGESTED else
               f"<br>probability {float(d.get('score', 0)):.2f} · {d.get('source')}"
               + (f" · from {d.get('count')} post(s)" if d.get("count") else "")))


def _add_edges(fig: go.Figure, h: nx.MultiDiGraph, lines: dict, mids: dict, taken, canvas: Canvas) -> None:
    """One line trace per edge style, then per style the midpoints with the relation names where they fit."""
    for style, (xs, ys) in lines.items():
        colour, width, dash = EDGE_STYLES[style]
        fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", line=dict(color=colour, width=width, dash=dash),
                                 hoverinfo="skip", name=EDGE_NAMES[style], legendgroup=style))
    n_rel_edges, n_suggested = _edge_counts(h)
    show_text = n_rel_edges + n_suggested <= MAX_EDGE_LABELS
    for style, items in mids.items():
        names = [short_name(d["relation"]) for *_, d in items]
        fits = fitting_texts([p[0] for p in items], names, taken, canvas)
        fig.add_trace(go.Scatter(
            x=[p[0][0] for p in items], y=[p[0][1] for p in items], mode="markers+text" if show_text else "markers",
            marker=dict(size=9, color=EDGE_STYLES[style][0], opacity=0.35, symbol="diamond"),
            text=[name if fit else "" for fit, name in zip(fits, names)], textposition="top center",
            textfont=dict(size=10, color=EDGE_STYLES[style][0]),
            hovertext=[_edge_hover(h, u, v, d) for _, u, v, d in items], hoverinfo="text",
            showlegend=False, legendgroup=style, name=f"{style} edges"))


def _add_nodes(fig: go.Figure, h: nx.MultiDiGraph, pos: dict[str, Any], degree: dict, highlight: str | None) -> None:
    """One marker trace per entity type (the legend), sized by degree, the highlighted node ringed."""
    by_type: dict[str, list[str]] = defaultdict(list)
    for n, d in h.nodes(data=True):
        by_type["IMAGE" if d.get("kind") == IMAGE_KIND else d.get("type", "MISC")].append(n)
    for etype in sorted(by_type, key=lambda t: list(TYPE_COLOURS).index(t) if t in TYPE_COLOURS else 99):
        nodes = by_type[etype]
        hover = []
        for n in nodes:
            d = h.nodes[n]
            caps = d.get("captions") or []
            hover.append(f"<b>{d.get('name', n)}</b> ({etype})<br>{degree[n]} edges"
                         + (f"<br>{len(caps)} caption(s): {caps[0][:80]}" if caps else "") + f"<br><i>{n}</i>")
        fig.add_trace(go.Scatter(
            x=[pos[n][0] for n in nodes], y=[pos[n][1] for n in nodes], mode="markers",
            marker=dict(size=[node_size(degree[n]) for n in nodes], color=TYPE_COLOURS.get(etype, UNKNOWN_TYPE_COLOUR),
                        symbol="square" if etype == "IMAGE" else "circle",
                        line=dict(width=[3.5 if n == highlight else 1 for n in nodes],
                                  color=["#d62728" if n == highlight else "white" for n in nodes])),
            hovertext=hover, hoverinfo="text", customdata=nodes, name=etype))


def figure(g: nx.MultiDiGraph, threshold: float = 0.0, positions: dict[str, Any] | None = None,
           highlight: str | None = None, suggestions: Sequence[SuggestedLink] | None = None,
           title: str | None = None, height: int = DEFAULT_HEIGHT,
           thresholded: bool = False) -> tuple[go.Figure, dict[str, np.ndarray]]:
    """The plotly figure of the graph (threshold applied unless `thresholded`) and the positions used.

    `suggestions` (head, relation, tail, score, rank) are drawn as dashed edges without being added.
    `title`: a note under the counts (what an overview or a filter leaves out).
    """
    h = _drawn(g, threshold, suggestions, thresholded)
    pos = layout(h, positions)
    degree = dict(h.degree())
    node_names = {n: str(d.get("name", n)) for n, d in h.nodes(data=True)}
    canvas = Canvas(height=height)
    label_nodes = fitting_labels(pos, node_names, degree, canvas, always=[highlight] if highlight else [])
    taken = label_boxes(pos, node_names, degree, label_nodes, canvas)  # edge names go only where they are free
    fig = go.Figure()
    if h.number_of_nodes() == 0:
        fig.add_annotation(text="The graph is empty: run an extraction to add triples.", showarrow=False,
                           font=dict(size=15, color="#666"), x=0.5, y=0.5, xref="paper", yref="paper")
    lines, mids, arrows = _edge_geometry(h, pos)
    _add_edges(fig, h, lines, mids, taken, canvas)
    _add_nodes(fig, h, pos, degree, highlight)
    labels = [_label(pos[n], label_text(node_names[n]), node_size(degree[n]), spot, n == highlight)
              for n, spot in label_nodes.items()]
    fig.update_layout(
        annotations=list(fig.layout.annotations) + arrows + labels, height=height, margin=dict(l=10, r=10, t=80, b=10),
        title=dict(text=f"Knowledge graph — {_counts_text(h, threshold)}"
                        + "".join(f"<br><sup>{line}</sup>" for line in textwrap.wrap(title or "", 150)),
                        font=dict(size=14)),
        xaxis=dict(visible=False, range=[-1.25, 1.25]), yaxis=dict(visible=False, range=[-1.25, 1.25]),
        plot_bgcolor="white", hovermode="closest", legend=dict(orientation="h", y=-0.02),
        dragmode="pan",
    )
    return fig, pos
