"""The Graph tab: its builder and callbacks. The tab's knowledge graph drawn (focus, filters, the most
connected nodes of a large one), searched and traced to its posts, suggested links, exports and loads.
Every callback takes the shared `Controller`, its inputs and the `TabState` and returns an `Update`
(`mmre_demo.ui.outputs`); `graph_outputs` is what the other tabs' callbacks redraw while this tab is
open. The graph itself is changed by `mmre_demo.graph`, never here."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any, NamedTuple

import gradio as gr

from mmre_demo import graph as kg
from mmre_demo.annotations.store import decided_at
from mmre_demo.data.labels import NONE_LABEL, RELATIONS
from mmre_demo.data.schema import InputError
from mmre_demo.graph import explore
from mmre_demo.graph.explore import SOURCE_CHOICES, TYPE_CHOICES, ViewFilter
from mmre_demo.graph.overview import DEFAULT_TOP_N
from mmre_demo.ui import render
from mmre_demo.ui.controller import Controller
from mmre_demo.ui.outputs import GRAPH_TAB, Choices, Output, Status, Update, callback
from mmre_demo.ui.page import Page
from mmre_demo.ui.render import SUGGESTION_HEADERS
from mmre_demo.ui.state import TabState

log = logging.getLogger(__name__)

RELATION_CHOICES = [r for r in RELATIONS if r != NONE_LABEL]  # the graph's relation filter
MAX_NODES_DRAWN = DEFAULT_TOP_N  # a larger graph (a loaded corpus) is drawn as its most connected nodes
MAX_SEARCH_CHOICES = 3000  # the search box lists the most connected entities; any other is found by its name
HOPS_CHOICES = ("whole graph", "1 hop", "2 hops")
MAX_DECISIONS_READ = 200  # provenance looks for a node's or a pair's decisions among the newest standing ones


class GraphView(NamedTuple):
    """A drawing's outputs, the note saying what it leaves out (None: nothing), and what it shows."""

    outputs: Update
    note: str | None
    shown: Any  # the subgraph drawn


# ---- drawing -------------------------------------------------------------------------------------
def graph_outputs(s: TabState, threshold: float) -> Update:
    """The graph and the node search box (what the extraction callbacks redraw), when the Graph tab is
    open; else nothing: opening it draws them (`show_graph`)."""
    if not s.graph_open:
        return {}
    out = _graph_view(s, threshold)[0]
    out.pop(Output.EDGE)
    return out


def _graph_view(s: TabState, threshold: float) -> GraphView:
    """The graph's outputs (the tab's focus and filters applied, then its most connected nodes when it
    is too large to draw) and the note saying what the drawing leaves out (None: nothing)."""
    h = explore.filtered_view(s.graph, s.view, threshold)
    keep = []
    if s.view.focus in h:  # the focus and its direct neighbours first, then the most connected of the rest
        near = set(h.successors(s.view.focus)) | set(h.predecessors(s.view.focus))
        keep = [s.view.focus, *sorted(near, key=lambda n: (-h.degree(n), str(n)))]
    # an overview of a large graph ranks the entities: its images' "depicts" stars would crowd them out
    kinds = (kg.ENTITY_KIND,) if h.number_of_nodes() > MAX_NODES_DRAWN and not s.view.types else None
    shown, note = kg.top_degree_view(h, MAX_NODES_DRAWN, threshold, kinds=kinds, keep=keep, thresholded=True)
    described = s.view.describe()
    sub = "; ".join(x for x in ((f"Showing {described}" if described else ""), note or "") if x)
    fig, pos = kg.figure(shown, threshold, s.positions, highlight=s.view.focus or s.selected_node,
                         suggestions=s.suggestions, title=sub or None, thresholded=True)
    s.positions = {k: tuple(float(x) for x in v) for k, v in pos.items()}
    choices = _search_choices(s.graph, s.selected_node)
    return GraphView({Output.GRAPH: fig,
                      Output.NODE: Choices(choices, s.selected_node if s.selected_node in s.graph else None),
                      Output.EDGE: Choices(explore.edge_choices(shown), None)}, note, shown)


def _search_choices(g: Any, selected: str | None) -> list[tuple[str, str]]:
    choices = explore.search_choices(g)
    top = choices[:MAX_SEARCH_CHOICES]
    if selected is not None and all(v != selected for _, v in top):
        top += [c for c in choices if c[1] == selected]
    return top


def graph_counts(s: TabState, threshold: float) -> str:
    """The status line's graph part: what the threshold leaves, relations and suggestions apart."""
    n_rel = len(kg.relation_edges(s.graph, threshold, (kg.PREDICTED, kg.ANNOTATED)))
    n_sug = len(kg.relation_edges(s.graph, threshold, (kg.SUGGESTED,))) + len(s.suggestions)
    return (f"the graph: {n_rel:,} relation{'s' if n_rel != 1 else ''} at ≥ {threshold:.2f}"
            + (f" and {n_sug} suggested link{'s' if n_sug != 1 else ''}" if n_sug else ""))



def _fresh_graph(s: TabState, g: Any) -> None:
    """Make `g` the tab's graph: no focus, no filter, no suggestion carried over from the old one."""
    s.graph, s.positions, s.suggestions, s.selected_node, s.view = g, {}, [], None, ViewFilter()


def _reset_filters() -> Update:
    return {Output.HOPS: HOPS_CHOICES[0], Output.RELATION_FILTER: [], Output.TYPE_FILTER: [],
            Output.SOURCE_FILTER: [], Output.PROVENANCE: render.provenance_html(None)}



@callback(GRAPH_TAB)
def clear_graph(ctl: Controller, threshold: float, tab: TabState | None) -> Update:
    s = tab or TabState()
    _fresh_graph(s, kg.new_graph())
    s.thumbnails = {}
    return {Output.TAB: s, Output.SUGGESTIONS_DF: [], Output.POLL: False,
            Output.STATUS: Status("ok", "The knowledge graph was cleared."),
            **_reset_filters(), **_graph_view(s, threshold)[0]}


@callback(GRAPH_TAB)
def load_graph(ctl: Controller, path: str | None, threshold: float, tab: TabState | None) -> Update:
    """Make an exported graph (the app's or `mmre extract`'s graph.json / graph.graphml) this tab's
    graph: suggestions, annotation and exports then work on it as on the tab's own triples. A file
    that cannot be read leaves the tab's graph as it was."""
    s = tab or TabState()
    if not path:
        raise InputError("Choose a graph.json or graph.graphml file (exported by the app or `mmre extract`) first.")
    g = kg.read_graph(path)  # an InputError here: nothing below runs, the old graph stays
    _fresh_graph(s, g)
    n_ent, n_rel = len(kg.entity_nodes(g)), len(kg.relation_edges(g, 0.0, (kg.PREDICTED, kg.ANNOTATED)))
    graph_out, note, _ = _graph_view(s, threshold)
    n_posts = len(kg.posts_table(g))
    lines = [f"Loaded {Path(path).name}: {n_ent:,} entities, {n_rel:,} relations"
             + (f" from {n_posts:,} posts" if n_posts else "") + "; it replaces this tab's graph.", note or ""]
    return {Output.TAB: s, Output.SUGGESTIONS_DF: [], Output.SUGGESTION: Choices([], None), Output.POLL: False,
            Output.STATUS: Status.of("ok", lines), **_reset_filters(), **graph_out}


@callback(GRAPH_TAB)
def export_graph(ctl: Controller, threshold: float, tab: TabState | None) -> Update:
    s = tab or TabState()
    threshold = float(threshold)
    folder = ctl.export_dir / s.sid / time.strftime("%Y%m%d-%H%M%S")
    paths = kg.write_all(s.graph, folder, threshold)
    n = len(kg.triples(s.graph, threshold))
    return {Output.TAB: s, Output.FILES: paths,
            Output.STATUS: Status("ok", f"Exported {n} triples (threshold {threshold:.2f}) as JSON, CSV, GraphML, "
                                        "RDF (Turtle) and Neo4j import files (zip).")}



# ---- exploring: search, focus, filters, provenance -------------------------------------------------
def resolve_node(g: Any, value: str | None) -> str | None:
    """The node a search box value names: a node id, or a name typed in full (any case; the most
    connected node of that name)."""
    if value in (None, ""):
        return None
    value = str(value).strip()
    if value in g:
        return value
    low = value.lower()
    named = [n for n, d in g.nodes(data=True) if str(d.get("name", "")).lower() == low]
    if not named:
        raise InputError(f"No node is called {value!r}: pick one of the search box's suggestions.")
    return max(named, key=lambda n: (g.degree(n), str(n)))


def _hops(value: str | int | None) -> int:
    """0 for the whole graph, else 1 or 2 (the focus radio's choice, or a number)."""
    if value in (None, "", HOPS_CHOICES[0]):
        return 0
    if value in HOPS_CHOICES:
        return HOPS_CHOICES.index(value)
    try:
        n = int(str(value).split()[0])
    except ValueError:
        raise InputError(f"Unknown focus {value!r}: choose {', '.join(HOPS_CHOICES)}.") from None
    if not 0 <= n <= explore.MAX_HOPS:
        raise InputError(f"Focus on 1 or 2 hops (got {n}).")
    return n


def _picked(values: Any, allowed: tuple[str, ...] | list[str], what: str) -> tuple[str, ...]:
    picked = tuple(str(v) for v in (values or []))
    unknown = [v for v in picked if v not in allowed]
    if unknown:
        raise InputError(f"Unknown {what}: {', '.join(map(repr, unknown))}.")
    return picked


def _decisions(ctl: Controller, names: tuple[str, ...]) -> list[str]:
    """Stored annotator decisions on the traced pair (both names) or node (its name), newest first."""
    try:
        standing = ctl.annotations.current()
    except Exception:  # noqa: BLE001 - provenance works without the store
        log.warning("annotation store unreadable for provenance", exc_info=True)
        return []
    out = []
    for d in reversed(standing[-MAX_DECISIONS_READ:]):  # newest first, as the decisions table lists them
        head, tail = d.candidate.head.text, d.candidate.tail.text
        if (len(names) == 2 and (head, tail) == names) or (len(names) == 1 and names[0] in (head, tail)):
            out.append(f"{d.decision} by {d.annotator} on {decided_at(d)}: {head} → {d.relation} → {tail}")
    return out[:5]


def _provenance(ctl: Controller, s: TabState, prov: Any) -> str:
    decisions = _decisions(ctl, prov.names) if prov is not None else []
    return render.provenance_html(prov, s.thumbnails, decisions)


@callback(GRAPH_TAB)
def explore_graph(ctl: Controller, node: str | None, hops: str | int | None, relations: Any, types: Any,
                  sources: Any, threshold: float, tab: TabState | None) -> Update:
    """Search / focus / filter: `node` (searched by name or id) is selected and traced; with 1 or 2 `hops`
    the graph shows its neighbourhood only; `relations`, `types`, `sources` narrow what is drawn (empty:
    all). The threshold is the page's one threshold."""
    s = tab or TabState()
    n_hops = _hops(hops)
    chosen = resolve_node(s.graph, node)
    view = ViewFilter(chosen if n_hops else None, max(1, n_hops),
                      _picked(relations, RELATION_CHOICES, "relation"), _picked(types, TYPE_CHOICES, "entity type"),
                      _picked(sources, SOURCE_CHOICES, "source"))
    if n_hops and chosen is None:
        raise InputError("Search a node first, then focus on its neighbourhood.")
    s.view, s.selected_node = view, chosen
    out, note, shown = _graph_view(s, threshold)
    drawn = kg.drawn_counts(shown, threshold, s.suggestions, thresholded=True)
    lines = [f"Focused on {s.graph.nodes[chosen].get('name', chosen)} ({n_hops} hop{'s' if n_hops > 1 else ''})."
             if view.focus else "", f"Drawn: {drawn}." if not view.is_whole else "The whole graph.", note or ""]
    out.update({Output.TAB: s, Output.STATUS: Status.of("ok", lines)})
    if chosen is not None:
        out[Output.PROVENANCE] = _provenance(ctl, s, explore.node_provenance(s.graph, chosen))
    return out


@callback(GRAPH_TAB)
def show_graph(ctl: Controller, threshold: float, tab: TabState | None) -> Update:
    """Opening the graph tab: the drawing, the search box and the edges to trace, as the tab is now
    (the extraction tab's callbacks redraw the graph but not the trace list)."""
    s = tab or TabState()
    s.graph_open = True
    return {Output.TAB: s, **_graph_view(s, threshold)[0]}


@callback((Output.TAB,))
def leave_graph(ctl: Controller, tab: TabState | None) -> Update:
    """Another tab opened: the extraction callbacks stop drawing the graph until the Graph tab opens again."""
    s = tab or TabState()
    s.graph_open = False
    return {Output.TAB: s}


@callback(GRAPH_TAB)
def whole_graph(ctl: Controller, threshold: float, tab: TabState | None) -> Update:
    """Back to the whole graph: no focus, no filter (the threshold stays)."""
    s = tab or TabState()
    s.view = ViewFilter()
    out, note, _ = _graph_view(s, threshold)
    return {Output.TAB: s, Output.STATUS: Status.of("ok", ["The whole graph.", note or ""]), **_reset_filters(),
            **out}


@callback(GRAPH_TAB)
def trace(ctl: Controller, which: str | None, tab: TabState | None) -> Update:
    """Provenance of an edge (its pick-list value) or a node (its id or name): the posts it came from."""
    s = tab or TabState()
    if which in (None, ""):
        raise InputError("Pick an edge (or search a node) to see the posts it came from.")
    key = explore.parse_edge_key(str(which))
    if key is not None:
        prov = explore.edge_provenance(s.graph, *key)
        if prov is None:
            raise InputError("That edge is no longer in the graph (cleared or replaced); pick another one.")
    else:
        prov = explore.node_provenance(s.graph, resolve_node(s.graph, which))
    return {Output.TAB: s, Output.PROVENANCE: _provenance(ctl, s, prov),
            Output.STATUS: Status("ok", f"{prov.title}: {prov.n_posts} post{'s' if prov.n_posts != 1 else ''}.")}



# ---- suggested links -----------------------------------------------------------------------------
def _suggestion_update(s: TabState, sug: Any, threshold: float) -> Update:
    """What the suggestion panel shows now: the rows when the embedding is ready, else its progress (and
    the poll timer on while it trains, so the rows appear by themselves)."""
    st = sug.status()
    node, k = s.selected_node, s.suggest_k
    if st.state == "training":
        s.suggestions = []
        return {Output.TAB: s, Output.SUGGESTIONS_DF: [], Output.SUGGESTION: Choices([], None),
                Output.POLL: True, Output.STATUS: Status("info", render.training_text(st))}
    rows, msg = sug.suggest_with_message(node, k) if node else ([], "Choose a node first.")
    s.suggestions = [r for r in rows if r.head in s.graph and r.tail in s.graph]
    quality = sug.quality_text()
    text = msg or (f"{len(s.suggestions)} suggested links for {node}, ranked (dashed in the graph); "
                   f"{quality}." if s.suggestions else f"No new link for {node} fits the relations' types.")
    return {Output.TAB: s, Output.POLL: False,
            Output.SUGGESTIONS_DF: render.suggestion_rows(s.suggestions, quality),
            Output.SUGGESTION: render.suggestion_choices(s.suggestions),
            Output.STATUS: Status("info" if not s.suggestions else "ok", text), **_graph_view(s, threshold)[0]}


def _embedded(s: TabState) -> Any:
    """What the embedding learns from: the relations at the tab's threshold (the last one a graph
    callback saw; the graph holds every pair's relation, most of them below the model's threshold)."""
    return kg.view(s.graph, s.threshold if s.threshold is not None else 0.0, include_suggested=False)


@callback(GRAPH_TAB)
def suggest(ctl: Controller, node: str | None, k: int, threshold: float, tab: TabState | None) -> Update:
    """Start embedding the graph in the background (when it changed) and show the suggestions for `node`
    as soon as they are ready: at once when the embedding is current, else by the poll timer."""
    s = tab or TabState()
    if not node:
        raise InputError("Choose a node of the graph first.")
    node = resolve_node(s.graph, node)
    sug = ctl.suggester(s)
    s.selected_node, s.suggest_k = node, max(1, int(k))
    if sug is None:
        s.suggestions = []
        return {Output.TAB: s, Output.SUGGESTIONS_DF: [], Output.SUGGESTION: Choices([], None),
                Output.POLL: False, Output.STATUS: Status(
                    "info", "Link suggestions are not available in this installation (mmre_demo.kge is missing)."),
                **_graph_view(s, threshold)[0]}
    s.threshold = float(threshold)
    sug.refresh(_embedded(s))  # background; returns at once
    return _suggestion_update(s, sug, threshold)


@callback(GRAPH_TAB)
def poll_suggestions(ctl: Controller, threshold: float, tab: TabState | None) -> Update:
    """The poll timer's tick: progress while the embedding trains, the suggestions once it is ready."""
    s = tab or TabState()
    sug = ctl.suggester(s) if s.selected_node else None
    if sug is None:
        return {Output.POLL: False}
    return _suggestion_update(s, sug, threshold)


@callback(GRAPH_TAB)
def add_suggestion(ctl: Controller, which: str | int | None, threshold: float, tab: TabState | None) -> Update:
    s = tab or TabState()
    if not s.suggestions:
        raise InputError("No suggestions to add: choose a node and press “Suggest links”.")
    try:
        idx = int(which) - 1 if which not in (None, "") else 0
    except ValueError:
        raise InputError(f"Unknown suggestion {which!r}.") from None
    if not 0 <= idx < len(s.suggestions):
        raise InputError(f"Suggestion {idx + 1} does not exist.")
    r = s.suggestions.pop(idx)
    kg.add_suggested_link(s.graph, r.head, r.relation, r.tail, r.score, r.rank)
    sug = ctl.suggester(s)
    return {Output.TAB: s,
            Output.STATUS: Status("ok", f"Added {r.head} → {r.relation} → {r.tail} "
                                        "as a suggested (dashed) edge."),
            Output.SUGGESTIONS_DF: render.suggestion_rows(s.suggestions, sug.quality_text() if sug else ""),
            Output.SUGGESTION: render.suggestion_choices(s.suggestions, with_score=False),
            **_graph_view(s, threshold)[0]}


@callback(GRAPH_TAB)
def refresh_embedding(ctl: Controller, tab: TabState | None) -> Update:
    s = tab or TabState()
    sug = ctl.suggester(s)
    if sug is None:
        raise InputError("Link suggestions are not available in this installation (mmre_demo.kge is missing).")
    started = sug.refresh(_embedded(s))
    st = sug.status()
    if st.state == "training":
        return {Output.TAB: s, Output.POLL: bool(s.selected_node),
                Output.STATUS: Status("info", ("Started: " if started else "") + render.training_text(st))}
    text = st.message or ("Embedding ready" + (f": {st.triples} triples, {st.epochs} epochs, "
                                               f"{st.seconds} s; {sug.quality_text()}." if st.triples else "."))
    return {Output.TAB: s, Output.STATUS: Status("info", text)}



# ---- the tab -------------------------------------------------------------------------------------
def build_graph_tab(page: Page) -> SimpleNamespace:
    """The Graph tab's components (its outputs registered on `page`); `wire_graph_tab` binds them."""
    t = SimpleNamespace()
    with gr.Tab("Graph", id="graph", elem_id="graph-tab") as t.tab:
        gr.Markdown("The tab's knowledge graph (or a loaded corpus graph). Search a node, focus on its "
                    "neighbourhood, filter, and trace an edge to the posts it came from.")
        with gr.Row(equal_height=True):
            t.node = page.out(Output.NODE, gr.Dropdown(
                label="Search a node (type to filter; most connected first)", choices=[], filterable=True,
                allow_custom_value=True, elem_id="node", scale=3))
            t.hops = page.out(Output.HOPS, gr.Radio(list(HOPS_CHOICES), value=HOPS_CHOICES[0], label="Focus",
                                                    elem_id="hops", scale=2))
            t.whole_btn = gr.Button("Back to the whole graph", elem_id="whole-graph", scale=1)
        with gr.Row():
            t.relation_filter = page.out(Output.RELATION_FILTER, gr.Dropdown(
                RELATION_CHOICES, multiselect=True, value=[], scale=2, label="Relations (none chosen: all)",
                elem_id="relation-filter"))
            t.type_filter = page.out(Output.TYPE_FILTER, gr.CheckboxGroup(
                list(TYPE_CHOICES), label="Entity types (none ticked: all)", elem_id="type-filter", scale=1))
            t.source_filter = page.out(Output.SOURCE_FILTER, gr.CheckboxGroup(
                list(SOURCE_CHOICES), label="Sources (none ticked: all)", elem_id="source-filter", scale=2))
        page.out(Output.GRAPH, gr.Plot(label="Knowledge graph", elem_id="graph"))
        with gr.Row():
            with gr.Column(scale=1, min_width=280):
                t.edge = page.out(Output.EDGE, gr.Dropdown(label="Trace an edge of the drawing to its posts",
                                                           choices=[], filterable=True, elem_id="edge"))
                t.trace_btn = gr.Button("Trace the searched node", elem_id="trace-node", size="sm")
            with gr.Column(scale=2, min_width=280):
                page.out(Output.PROVENANCE, gr.HTML(render.provenance_html(None), elem_id="provenance",
                                                    label="Where it came from"))
        _build_suggestions(page, t)
        _build_files(page, t)
    return t


def _build_suggestions(page: Page, t: SimpleNamespace) -> None:
    gr.Markdown("#### Suggested links\nLink prediction on this graph (a knowledge-graph embedding "
                "trained in the background; only links that fit the relation's entity types). Ranked: "
                "the embedding's held-out MRR / Hits@10 say how far to trust the ranks.")
    with gr.Row(equal_height=True):
        t.k = gr.Slider(1, 10, value=5, step=1, label="How many", elem_id="k", scale=2)
        t.suggest_btn = gr.Button("Suggest links for the searched node", elem_id="suggest", scale=1)
        t.refresh_btn = gr.Button("Refresh embedding", elem_id="refresh-embedding", scale=1)
    page.out(Output.SUGGESTIONS_DF, gr.Dataframe(headers=SUGGESTION_HEADERS, interactive=False, elem_id="suggestions",
                                                 label="Suggestions (dashed in the graph)", wrap=True,
                                                 column_widths=["8%", "24%", "24%", "24%", "20%"]))
    with gr.Row(equal_height=True):
        t.suggestion = page.out(Output.SUGGESTION, gr.Dropdown(label="Suggestion to add", choices=[],
                                                               elem_id="suggestion", allow_custom_value=True, scale=3))
        t.add_btn = gr.Button("Add to graph", elem_id="add-suggestion", scale=1)
    # fetches the suggestions while the embedding trains
    t.poll = page.out(Output.POLL, gr.Timer(1.5, active=False))


def _build_files(page: Page, t: SimpleNamespace) -> None:
    gr.Markdown("#### Files")
    with gr.Row(equal_height=True):
        t.clear_btn = gr.Button("Clear graph", variant="stop", elem_id="clear-graph")
        t.export_btn = gr.Button("Export graph", elem_id="export-graph")
    page.out(Output.FILES, gr.File(label="Triples and graph (JSON, CSV, GraphML, RDF, Neo4j)", file_count="multiple",
                                   interactive=False, elem_id="graph-files"))
    with gr.Accordion("Load graph: open a corpus graph (graph.json / graph.graphml from `mmre extract` "
                      "or an export)", open=False, elem_id="load-graph-box"):
        t.graph_file = gr.File(label="graph.json or graph.graphml", type="filepath",
                               file_types=[".json", ".graphml", ".xml"], elem_id="graph-file")
        t.load_btn = gr.Button("Load graph (replaces this tab's graph)", elem_id="load-graph")


def wire_graph_tab(page: Page, t: SimpleNamespace) -> None:
    """The Graph tab's events; every one of its callbacks shares the GRAPH_TAB outputs."""
    ctl, tab, threshold = page.ctl, page.tab, page.threshold
    g_outs, g_conv = page.bind(clear_graph)
    t.load_btn.click(lambda p, thr, s: g_conv(load_graph(ctl, p, thr, s)), [t.graph_file, threshold, tab],
                     g_outs, api_name="load_graph")
    t.clear_btn.click(lambda thr, s: g_conv(clear_graph(ctl, thr, s)), [threshold, tab], g_outs,
                      api_name="clear_graph")
    t.export_btn.click(lambda thr, s: g_conv(export_graph(ctl, thr, s)), [threshold, tab], g_outs,
                       api_name="export_graph")
    t.suggest_btn.click(lambda n, kk, thr, s: g_conv(suggest(ctl, n, kk, thr, s)), [t.node, t.k, threshold, tab],
                        g_outs, api_name="suggest_links")
    t.add_btn.click(lambda w, thr, s: g_conv(add_suggestion(ctl, w, thr, s)), [t.suggestion, threshold, tab],
                    g_outs, api_name="add_suggestion")
    t.refresh_btn.click(lambda s: g_conv(refresh_embedding(ctl, s)), [tab], g_outs,
                        api_name="refresh_embedding")
    explore_inputs = [t.node, t.hops, t.relation_filter, t.type_filter, t.source_filter, threshold, tab]

    def do_explore(n, hp, rel, typ, src, thr, s):
        return g_conv(explore_graph(ctl, n, hp, rel, typ, src, thr, s))

    t.node.input(do_explore, explore_inputs, g_outs, api_name="explore", trigger_mode="always_last")
    for control in (t.hops, t.relation_filter, t.type_filter, t.source_filter):
        control.input(do_explore, explore_inputs, g_outs, api_visibility="private", trigger_mode="always_last")
    t.tab.select(lambda thr, s: g_conv(show_graph(ctl, thr, s)), [threshold, tab], g_outs,
                 api_name="open_graph")
    t.whole_btn.click(lambda thr, s: g_conv(whole_graph(ctl, thr, s)), [threshold, tab], g_outs,
                      api_name="whole_graph")
    t.edge.input(lambda w, s: g_conv(trace(ctl, w, s)), [t.edge, tab], g_outs, api_name="provenance")
    t.trace_btn.click(lambda w, s: g_conv(trace(ctl, w, s)), [t.node, tab], g_outs, api_visibility="private")
    t.poll.tick(lambda thr, s: g_conv(poll_suggestions(ctl, thr, s)), [threshold, tab], g_outs,
                api_visibility="private", show_progress="hidden")
