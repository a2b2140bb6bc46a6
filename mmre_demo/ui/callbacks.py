"""The app's callbacks as plain functions (no browser, no server needed to test them).

Each callback takes the shared resources (`Controller`), its inputs and the tab's `TabState` (None on the
first call), and returns an `Update` (`{Output: value}`, see `mmre_demo.ui.outputs`) with only the
outputs it changes. Each declares the outputs it may change (`@callback(GROUP)`); the layout binds it
to exactly those components. Bad input never raises: a `Status("warn", ...)` says what was wrong and
the rest of the page stays as it was; an unexpected error becomes a `Status("error", ...)`.
"""

from __future__ import annotations

import logging
import os
import re
import time
import traceback
import uuid
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any

from mmre_demo import graph as kg
from mmre_demo.annotations import DECISIONS, Candidate, Decision, Undo
from mmre_demo.annotations.review import ReviewPost
from mmre_demo.data.images import image_id, load_image
from mmre_demo.data.labels import ENTITY_TYPES, NONE_LABEL, RELATIONS, fitting_relations
from mmre_demo.data.schema import Entity, InputError, check_caption
from mmre_demo.data.text import CleanCaption, clean_caption
from mmre_demo.explain.overlay import fit
from mmre_demo.graph import explore
from mmre_demo.graph.explore import SOURCE_CHOICES, TYPE_CHOICES, ViewFilter
from mmre_demo.graph.overview import DEFAULT_TOP_N
from mmre_demo.prediction import DEFAULT_TOP_K, MAX_PAIRS, PredictRequest, predict_one
from mmre_demo.ui import render
from mmre_demo.ui.controller import Controller, TabState
from mmre_demo.ui.outputs import (
    EVIDENCE,
    EXTRACTION,
    FROM_IMAGE,
    GRAPH_PANEL,
    GRAPH_TAB,
    PREVIEW,
    Choices,
    Output,
    Status,
    Update,
)

log = logging.getLogger(__name__)

ProgressFn = Callable[..., Any] | None
RELATION_CHOICES = [r for r in RELATIONS if r != NONE_LABEL]  # the graph's relation filter
MAX_TAB_POSTS = 200  # posts a tab keeps for "review this tab's posts" (the oldest dropped)
MAX_NODES_DRAWN = DEFAULT_TOP_N  # a larger graph (a loaded corpus) is drawn as its most connected nodes
MAX_SEARCH_CHOICES = 3000  # the search box lists the most connected entities; any other is found by its name
HOPS_CHOICES = ("whole graph", "1 hop", "2 hops")
IMAGE_NAMES_PREFIX = " [in the image: "  # how names read only in the image are appended to the caption


def callback(outputs: tuple[Output, ...]) -> Callable[[Callable[..., Update]], Callable[..., Update]]:
    """Declare the outputs a callback may change, and turn any exception into a status message (never a
    stack trace in the UI). Returning an undeclared output is a programming error and raises."""

    def decorate(fn: Callable[..., Update]) -> Callable[..., Update]:
        @wraps(fn)
        def wrapper(ctl: Controller, *args: Any, **kwargs: Any) -> Update:
            try:
                result = fn(ctl, *args, **kwargs)
            except InputError as exc:
                result = {Output.STATUS: Status("warn", str(exc))}
            except Exception as exc:  # noqa: BLE001 - the app keeps serving
                ref = uuid.uuid4().hex[:8]
                log.error("callback %s failed [%s]\n%s", fn.__name__, ref, traceback.format_exc())
                result = {Output.STATUS: Status("error", f"Something went wrong ({type(exc).__name__}: "
                                                         f"{str(exc)[:200]}). The app is still running; "
                                                         f"reference {ref} is in the server log.")}
            status = result.get(Output.STATUS)
            if isinstance(status, Status):
                result[Output.STATUS] = Status(status.kind, hide_server_paths(status.message))
            undeclared = [k for k in result if k not in outputs]
            if undeclared:
                raise TypeError(f"callback {fn.__name__} returned outputs it does not declare: {undeclared}")
            return result

        wrapper.outputs = outputs  # type: ignore[attr-defined]
        return wrapper

    return decorate


_ABSOLUTE_PATH = re.compile(r"(?<![\w/])/(?:[^\s/'\"`:;,()]+/)+([^\s/'\"`:;,()]+)")


def hide_server_paths(message: str) -> str:
    """A status message with the server's file paths (an upload's temp folder, the annotation store)
    reduced to their file names: visitors learn nothing of the server's layout. Only paths under a
    folder that exists here are touched, so relation names (`/per/org/member_of`) stay."""

    def name_only(match: re.Match[str]) -> str:
        top = match.group(0).split("/")[1]
        return match.group(1) if os.path.isdir(f"/{top}") else match.group(0)

    return _ABSOLUTE_PATH.sub(name_only, message)


# ---- input parsing -------------------------------------------------------------------------------
def parse_entity_rows(caption: str, rows: Any) -> list[Entity]:
    """The editable table -> entities. Empty text removes a row; missing/blank start and end are found
    in the caption (next occurrence not already used); types must be PER/ORG/LOC/MISC or empty."""
    if rows is None:
        return []
    if hasattr(rows, "values") and hasattr(rows, "columns"):  # pandas DataFrame
        rows = rows.values.tolist()
    elif isinstance(rows, dict) and "data" in rows:
        rows = rows["data"]
    ents: list[Entity] = []
    used: list[tuple[int, int]] = []
    typed = clean_caption(caption)  # names are looked up as the models read them (no invisible characters)
    for n, row in enumerate(rows, start=1):
        row = list(row) + [None] * (4 - len(row))
        text = "" if row[0] is None else str(row[0])
        if not clean_caption(text).text.strip() or text.strip().lower() == "nan":
            continue
        etype = "" if row[1] is None or str(row[1]).lower() == "nan" else str(row[1]).strip().upper()
        if etype and etype not in ENTITY_TYPES:
            raise InputError(f"Row {n} ({text!r}): type {etype!r} is not one of {', '.join(ENTITY_TYPES)}.")
        start, end = _cell_int(row[2], n, text), _cell_int(row[3], n, text)
        if start is None or end is None:
            start, end, text = _find_unused(typed, text.strip(), used, n)
        elif start < 0 or end > len(caption) or start >= end:
            raise InputError(f"Row {n} ({text!r}): span [{start}, {end}) is outside the caption "
                             f"(length {len(caption)}).")
        elif clean_caption(caption[start:end]).text != clean_caption(text).text:
            # stale offsets are refused, not guessed: the user clears them to have the text looked up
            raise InputError(f"Row {n}: the caption at [{start}, {end}) reads {caption[start:end]!r}, not {text!r}. "
                             "Clear start and end to let the app find the text.")
        ents.append(Entity(text, start, end, etype))
        used.append((start, end))
    ordered = sorted(ents, key=lambda e: (e.start, e.end))
    for a, b in zip(ordered, ordered[1:]):
        if b.start < a.end:
            raise InputError(f"Entities {a.text!r} [{a.start}, {a.end}) and {b.text!r} [{b.start}, {b.end}) overlap; "
                             "remove or shorten one of them.")
    return ordered


def _find_unused(typed: CleanCaption, needle: str, used: list[tuple[int, int]], row: int) -> tuple[int, int, str]:
    """The first occurrence of `needle` in the caption that no earlier row took, as a span of the caption
    as typed (looked up in its clean text, so a zero-width character inside the name does not hide it)."""
    needle = clean_caption(needle).text
    idx = typed.text.find(needle)
    while idx >= 0:
        start, end = typed.typed_span(idx, idx + len(needle))
        if not any(start < b and a < end for a, b in used):
            return start, end, needle
        idx = typed.text.find(needle, idx + 1)
    raise InputError(f"Row {row}: {needle!r} does not occur in the caption (or every occurrence is "
                     "already used); fix the text or give start and end.")


def _cell_int(value: Any, row: int, text: str) -> int | None:
    """A start/end cell: None when blank or NaN, else a whole number."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        f = float(value)
    except (TypeError, ValueError):
        raise InputError(f"Row {row} ({text!r}): start/end must be whole numbers, got {value!r}.") from None
    if f != f:  # NaN
        return None
    return int(f)


def pair_number(value: str | int, n_pairs: int) -> int:
    """The 0-based index of the pair a user names by its number in the # column ("2", "#2", "#2 A → B: ...")."""
    try:
        idx = int(str(value).lstrip("#").split()[0]) - 1
    except (ValueError, IndexError):
        raise InputError(f"Unknown pair {value!r}: use the number in the # column.") from None
    if not 0 <= idx < n_pairs:
        raise InputError(f"Pair #{idx + 1} does not exist (there are {n_pairs} pairs).")
    return idx


# ---- shared outputs ------------------------------------------------------------------------------
def _graph_outputs(s: TabState, threshold: float) -> Update:
    """The graph and the node search box (what the extraction callbacks redraw), when the Graph tab is
    open; else nothing: opening it draws them (`show_graph`)."""
    if not s.graph_open:
        return {}
    out = _graph_view(s, threshold)[0]
    out.pop(Output.EDGE)
    return out


def _graph_view(s: TabState, threshold: float) -> tuple[Update, str | None]:
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
    return {Output.GRAPH: fig, Output.NODE: Choices(choices, s.selected_node if s.selected_node in s.graph else None),
            Output.EDGE: Choices(explore.edge_choices(shown), None)}, note


def _search_choices(g: Any, selected: str | None) -> list[tuple[str, str]]:
    choices = explore.search_choices(g)
    top = choices[:MAX_SEARCH_CHOICES]
    if selected is not None and all(v != selected for _, v in top):
        top += [c for c in choices if c[1] == selected]
    return top


def _graph_counts(s: TabState, threshold: float) -> str:
    """The status line's graph part: what the threshold leaves, relations and suggestions apart."""
    n_rel = len(kg.relation_edges(s.graph, threshold, (kg.PREDICTED, kg.ANNOTATED)))
    n_sug = len(kg.relation_edges(s.graph, threshold, (kg.SUGGESTED,))) + len(s.suggestions)
    return (f"the graph: {n_rel:,} relation{'s' if n_rel != 1 else ''} at ≥ {threshold:.2f}"
            + (f" and {n_sug} suggested link{'s' if n_sug != 1 else ''}" if n_sug else ""))


def _prediction_outputs(s: TabState, threshold: float, show_none: bool) -> Update:
    pred = s.prediction
    vis = render.visible_pairs(pred, threshold, show_none)
    if s.pair_index is None or all(i != s.pair_index for i, _ in vis):
        s.pair_index = vis[0][0] if vis else None
    return {
        Output.ENTITIES_HL: render.entity_segments(pred.caption, pred.entities),
        Output.ENTITIES_DF: render.entity_rows(pred.entities),
        Output.RELATIONS_DF: render.relation_rows(pred, threshold, show_none),
        Output.PAIR: render.pair_choices(vis, s.pair_index, threshold),
        Output.CONCEPTS: render.concept_scores(pred),
        Output.NEW_LABEL: _relabel_choices(s),
        **render.evidence(pred, s.pair_index, s.image),
    }


def _relabel_choices(s: TabState) -> Choices:
    """The relations the chosen pair may be relabelled to (its types' rule), none chosen."""
    if s.prediction is None or s.pair_index is None or not 0 <= s.pair_index < len(s.prediction.pairs):
        return Choices([], None)
    p = s.prediction.pairs[s.pair_index]
    return render.relation_choices(fitting_relations(p.head.type, p.tail.type))


def device_text(ctl: Controller) -> str:
    return render.device_markdown(ctl.device(), os.environ.get("MMRE_DEVICE"), ctl.engine())


# ---- extraction ----------------------------------------------------------------------------------
@callback(PREVIEW)
def preview(ctl: Controller, image_path: str | None) -> Update:
    """On upload: show the image as the model will read it, or say why it cannot be read."""
    if not image_path:
        return {Output.PREVIEW: None, Output.STATUS: Status("info", "No image: the caption alone will be used.")}
    img = load_image(image_path, name=Path(image_path).name)
    w, h = img.size
    return {Output.PREVIEW: fit(img, 512),
            Output.STATUS: Status("ok", f"Image {Path(image_path).name}: {w} x {h} pixels.")}


@callback(EXTRACTION)
def run(ctl: Controller, image_path: str | None, caption: str | None, threshold: float | None = None,
        show_none: bool = False, tab: TabState | None = None, entity_rows_in: Any = None,
        progress: ProgressFn = None, read_text: bool = True) -> Update:
    """Extract: entities (detected, or the table's when `entity_rows_in` is given), relations, evidence,
    the text in the image (unless `read_text` is off), and merge the triples into the tab's graph.
    `threshold` None = the model's own."""
    t0 = time.perf_counter()
    s = tab or TabState()
    step = progress or (lambda *a, **k: None)
    step(0.05, desc="Checking the caption")
    caption = check_caption(caption)
    img = None
    if image_path:
        step(0.1, desc="Reading the image")
        img = load_image(image_path, name=Path(str(image_path)).name)
    pipe = ctl.pipe
    if threshold is None:
        threshold = pipe.threshold
    ents = parse_entity_rows(caption, entity_rows_in) if entity_rows_in is not None else None
    reading = " and reading the text in the image" if img is not None and read_text else ""
    step(0.3, desc=("Finding entities, classifying their pairs" if ents is None else
                    f"Classifying the pairs of {len(ents)} entities") + reading)
    pred = predict_one(pipe, PredictRequest(caption, img, ents, read_text=bool(read_text), top_k=DEFAULT_TOP_K,
                                            max_pairs=MAX_PAIRS))
    ents, detected = pred.entities, pred.entities_detected
    step(0.85, desc="Updating the knowledge graph")
    s.prediction, s.pair_index, s.requests = pred, None, s.requests + 1
    s.image = fit(img, 448) if img is not None else None
    s.image_path = str(image_path) if img is not None else None
    s.image_id = image_id(image_path) if img is not None else None
    # every pair's relation goes into the graph (min_score 0): the page's one threshold then filters the
    # table and the graph alike, also below the model's own threshold
    kg.add_prediction(s.graph, pred, s.image_id, pred.image_feature,
                      Path(str(image_path)).name if img is not None else None, min_score=0.0,
                      post_id=(post_id := _remember_post(s, img)))
    s.posts = [*s.posts, ReviewPost(post_id, pred, s.image_id, s.image_path)][-MAX_TAB_POSTS:]
    out = {**_prediction_outputs(s, threshold, show_none), **_graph_outputs(s, threshold),
           **render.image_text_view(pred, s.image)}
    msgs = list(pred.messages)
    if not ents:
        msgs.append("No entities found in the caption: add them in the entity table (text and type) and "
                    "press “Re-run with these entities”.")
    n_rel = sum(1 for p in pred.pairs if p.is_shown(threshold))
    msgs.append(f"{len(ents)} entities ({'detected' if detected else 'yours'}), "
                f"{len(pred.pairs)} pair{'' if len(pred.pairs) == 1 else 's'}, "
                f"{n_rel} relations at ≥ {threshold:.2f}; done in {(time.perf_counter() - t0) * 1000:.0f} ms "
                f"on {pred.device}{_ocr_note(pred)}.")
    out[Output.STATUS] = Status.of("warn" if (pred.messages or not ents) else "ok", msgs)
    out[Output.TAB] = s
    step(1.0, desc="Done")
    return out


def _ocr_note(pred: Any) -> str:
    it = pred.image_text
    if it is None:
        return ""
    grounded = f", {len(pred.groundings)} entit{'y' if len(pred.groundings) == 1 else 'ies'} grounded"
    return f" (text in the image: {len(it.lines)} lines in {it.seconds * 1000:.0f} ms{grounded})"


@callback(EXTRACTION)
def rerun(ctl: Controller, image_path: str | None, caption: str | None, rows: Any, threshold: float | None = None,
          show_none: bool = False, tab: TabState | None = None, progress: ProgressFn = None,
          read_text: bool = True) -> Update:
    """Re-run with the user's entity table (add / remove / retype rows)."""
    return run(ctl, image_path, caption, threshold, show_none, tab,
               entity_rows_in=rows if rows is not None else [], progress=progress, read_text=read_text)


@callback(FROM_IMAGE)
def add_from_image(ctl: Controller, chosen: list[str] | None, image_path: str | None, threshold: float | None = None,
                   show_none: bool = False, tab: TabState | None = None, progress: ProgressFn = None,
                   read_text: bool = True) -> Update:
    """Add names read only in the image to the entities and classify them with the caption's: the text
    model reads text, so the names are appended to the caption (" [in the image: A; B]") and become
    entities there; the caption's own entities stay as they were."""
    s = tab or TabState()
    pred = s.prediction
    if pred is None or not pred.also_in_image:
        raise InputError("No names were found only in the image: run an extraction on an image with text first.")
    try:
        picked = [pred.also_in_image[int(c)] for c in (chosen or [])]
    except (ValueError, IndexError):
        raise InputError(f"Unknown choice {chosen!r}: tick names in the “Also in the image” list.") from None
    if not picked:
        raise InputError("Tick the names to add in the “Also in the image” list first.")
    caption, ents = pred.caption, list(pred.entities)
    caption += IMAGE_NAMES_PREFIX
    for i, e in enumerate(picked):
        caption += "; " if i else ""
        ents.append(Entity(e.text, len(caption), len(caption) + len(e.text), e.type))
        caption += e.text
    caption += "]"
    rows = render.entity_rows(ents)
    out = run(ctl, image_path, caption, threshold, show_none, s, entity_rows_in=rows, progress=progress,
              read_text=read_text)
    if Output.TAB in out:  # done (not refused): show the caption the model read
        out[Output.CAPTION] = caption
        status = out.get(Output.STATUS)
        note = (f"Added {', '.join(e.text for e in picked)} from the image (appended to the caption so the "
                "model reads them beside its entities).")
        out[Output.STATUS] = Status.of(status.kind if status else "ok", [note, status.message if status else ""])
    return out


@callback(EXTRACTION)
def refilter(ctl: Controller, threshold: float, show_none: bool, tab: TabState | None) -> Update:
    """Threshold slider / None toggle: table, pair list and graph."""
    s = tab or TabState()
    threshold = s.threshold = float(threshold)
    out: Update = {Output.TAB: s}
    lines = []
    if s.prediction is not None:
        out.update(_prediction_outputs(s, threshold, show_none))
        n = sum(1 for p in s.prediction.pairs if p.is_shown(threshold))
        lines.append(f"{n} relation{'s' if n != 1 else ''} at ≥ {threshold:.2f} in this caption;")
    out.update(_graph_outputs(s, threshold))
    lines.append(_graph_counts(s, threshold) + ".")
    out[Output.STATUS] = Status("info", " ".join(lines))
    return out


@callback(EVIDENCE)
def explain(ctl: Controller, pair: str | int | None, tab: TabState | None) -> Update:
    """Evidence for one pair (its 1-based number, as in the table's # column)."""
    s = tab or TabState()
    if s.prediction is None:
        raise InputError("Run an extraction first.")
    if pair not in (None, ""):
        s.pair_index = pair_number(pair, len(s.prediction.pairs))
    return {Output.TAB: s, Output.NEW_LABEL: _relabel_choices(s),
            **render.evidence(s.prediction, s.pair_index, s.image)}


# ---- knowledge graph -----------------------------------------------------------------------------
def _remember_post(s: TabState, image: Any) -> str:
    """The post id of this submission in the tab's graph, and its image's thumbnail for provenance."""
    pid = f"submission {s.requests}"  # run() counted this request already
    if image is not None:
        s.thumbnails[pid] = render.thumbnail_uri(image)
    return pid


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
    graph_out, note = _graph_view(s, threshold)
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
        rows = ctl.annotations.rows()
    except Exception:  # noqa: BLE001 - provenance works without the store
        log.warning("annotation store unreadable for provenance", exc_info=True)
        return []
    cols = {h: i for i, h in enumerate(render.DECISION_HEADERS)}
    out = []
    for r in rows:
        head, tail = str(r[cols["head"]]), str(r[cols["tail"]])
        if (len(names) == 2 and (head, tail) == names) or (len(names) == 1 and names[0] in (head, tail)):
            out.append(f"{r[cols['decision']]} by {r[cols['annotator']]} on {r[cols['time']]}: {head} → "
                       f"{r[cols['relation']]} → {tail}")
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
    out, note = _graph_view(s, threshold)
    drawn = out[Output.GRAPH].layout.title.text.split("<br>")[0].replace("Knowledge graph — ", "")
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
    out, note = _graph_view(s, threshold)
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
    kg.add_relation(s.graph, r.head, r.relation, r.tail, float(r.score), kg.SUGGESTED)
    if s.graph.has_edge(r.head, r.tail, key=r.relation):
        s.graph.edges[r.head, r.tail, r.relation].setdefault("rank", r.rank)
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


# ---- annotator mode ------------------------------------------------------------------------------
def show_decision(g: Any, d: Decision) -> None:
    """The graph after a decision: it replaces what stood on the pair before (the annotator's earlier
    decision, the model's relations for the pair at any probability), so a relabel twice leaves one edge."""
    c = d.candidate
    h, t = kg.add_entity(g, c.head.text, c.head.type), kg.add_entity(g, c.tail.text, c.tail.type)
    predicted = [rel for rel, e in (g[h][t].items() if g.has_edge(h, t) else []) if e["source"] == kg.PREDICTED]
    earlier = d.replaces.relation if d.replaces else NONE_LABEL
    for stood in {c.predicted, *predicted, earlier} - {d.relation, NONE_LABEL}:
        kg.remove_relation(g, h, stood, t)
    if d.relation != NONE_LABEL:
        kg.add_relation(g, h, d.relation, t, 1.0, kg.ANNOTATED, c.caption)


def take_back(g: Any, undo: Undo) -> None:
    """The graph after an undo: the undone decision's edge goes; the decision it replaced (or else the
    prediction) stands again."""
    d, c = undo.undone, undo.undone.candidate
    h, t = kg.add_entity(g, c.head.text, c.head.type), kg.add_entity(g, c.tail.text, c.tail.type)
    if d.relation != NONE_LABEL:
        kg.remove_relation(g, h, d.relation, t)
    if undo.restored is not None:
        show_decision(g, undo.restored)
    elif c.predicted != NONE_LABEL:
        kg.add_relation(g, h, c.predicted, t, float(c.probability or 0.0), kg.PREDICTED, c.caption)


def annotator_of(ctl: Controller, typed_name: str | None, s: TabState, oauth_name: str | None = None) -> str:
    """Who a decision is stored under (the login's name when the server requires one)."""
    return ctl.login.identity(typed_name, s.signed_in, oauth_name)


@callback(GRAPH_PANEL)
def annotate(ctl: Controller, pair: str | int | None, decision: str, new_label: str | None, annotator: str | None,
             threshold: float, tab: TabState | None, oauth_name: str | None = None) -> Update:
    """Judge the chosen pair as the page shows it at `threshold`; the decision replaces the annotator's
    earlier one on the pair in the graph and the exports."""
    s = tab or TabState()
    who = annotator_of(ctl, annotator, s, oauth_name)
    if s.prediction is None:
        raise InputError("Run an extraction first, then judge its triples.")
    if pair in (None, ""):
        raise InputError("Choose a pair to judge.")
    if decision not in DECISIONS:
        raise InputError(f"Choose accept, reject or relabel (got {decision!r}).")
    p = s.prediction.pairs[pair_number(pair, len(s.prediction.pairs))]
    shown, shown_p = p.shown(threshold)  # the annotator judges what the page showed
    img_id = ctl.annotations.store_image(s.image_path) if s.image_path else None
    candidate = Candidate(s.prediction.caption, img_id, p.head, p.tail, shown, float(shown_p))
    d = ctl.annotations.add(candidate, decision, new_label, annotator=who)
    show_decision(s.graph, d)
    replaced = f" (replaces your earlier {d.replaces.relation})" if d.replaces else ""
    return {Output.TAB: s, Output.DECISIONS_DF: ctl.annotations.rows(who),
            Output.STATUS: Status("ok", f"Saved decision {d.id} by {who}: {decision} → {p.head.text} {d.relation} "
                                        f"{p.tail.text}{replaced}. {ctl.annotations.count(who)} decisions of yours "
                                        "in the store."),
            **_graph_outputs(s, threshold)}


@callback(GRAPH_PANEL)
def undo_annotation(ctl: Controller, annotator: str | None, threshold: float, tab: TabState | None,
                    oauth_name: str | None = None) -> Update:
    """Take back one's last decision (the store keeps it, marked undone); the graph shows what stood before."""
    s = tab or TabState()
    who = annotator_of(ctl, annotator, s, oauth_name)
    undo = ctl.annotations.undo_last(who)
    take_back(s.graph, undo)
    d = undo.undone
    back = (f"{undo.restored.relation} (your earlier decision) stands again" if undo.restored
            else "the pair is undecided again")
    return {Output.TAB: s, Output.DECISIONS_DF: ctl.annotations.rows(who),
            Output.STATUS: Status("ok", f"Undid decision {d.id} ({d.decision} → {d.candidate.head.text} {d.relation} "
                                        f"{d.candidate.tail.text}): {back}."),
            **_graph_outputs(s, threshold)}


@callback(GRAPH_PANEL)
def export_annotations(ctl: Controller, tab: TabState | None = None) -> Update:
    path = ctl.export_dir / f"annotations_{time.strftime('%Y%m%d-%H%M%S')}_{uuid.uuid4().hex[:6]}.txt"
    text = ctl.annotations.export_mnre(path)
    n = text.count("\n")
    return {Output.ANNOTATIONS_FILE: str(path),
            Output.STATUS: Status("ok", f"Exported {n} standing decisions as MNRE lines (latest per pair and "
                                        "annotator; undone and replaced ones left out).")}
