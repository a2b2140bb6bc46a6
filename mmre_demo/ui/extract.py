"""The Extract tab: its builder and callbacks. Upload an image and a caption, extract the relations,
explain a pair, edit the entities, add the names read in the image, and judge a pair (annotator mode).
Every callback takes the shared `Controller`, its inputs and the `TabState` and returns an `Update`
(`mmre_demo.ui.outputs`). Its triples go into the Graph tab's graph (`mmre_demo.graph`), redrawn
only while that tab is open (`graph.graph_outputs`)."""

from __future__ import annotations

import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import gradio as gr

from mmre_demo import graph as kg
from mmre_demo.annotations import DECISIONS, Candidate
from mmre_demo.annotations.review import ReviewPost
from mmre_demo.data.images import image_id, load_image
from mmre_demo.data.labels import ENTITY_TYPES, fitting_relations
from mmre_demo.data.schema import Entity, InputError, check_caption
from mmre_demo.data.text import CleanCaption, clean_caption, unread_script
from mmre_demo.explain.overlay import fit
from mmre_demo.prediction import DEFAULT_TOP_K, MAX_PAIRS, PredictRequest, predict_one
from mmre_demo.ui import render
from mmre_demo.ui.controller import Controller
from mmre_demo.ui.graph import graph_counts, graph_outputs
from mmre_demo.ui.outputs import (
    EVIDENCE,
    EXTRACTION,
    FROM_IMAGE,
    GRAPH_PANEL,
    PREVIEW,
    Choices,
    Output,
    ProgressFn,
    Status,
    Update,
    callback,
)
from mmre_demo.ui.page import IMAGE_FORMAT, MODEL_EVENTS, Page, oauth_name
from mmre_demo.ui.render import ENTITY_COLOURS, ENTITY_HEADERS, RELATION_HEADERS
from mmre_demo.ui.review import annotator_of
from mmre_demo.ui.state import TabState

MAX_TAB_POSTS = 200  # posts a tab keeps for "review this tab's posts" (the oldest dropped)
IMAGE_NAMES_PREFIX = " [in the image: "  # how names read only in the image are appended to the caption


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



# ---- outputs -------------------------------------------------------------------------------------
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



# ---- callbacks ----------------------------------------------------------------------------------
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
    out = {**_prediction_outputs(s, threshold, show_none), **graph_outputs(s, threshold),
           **render.image_text_view(pred, s.image)}
    msgs = list(pred.messages)
    if not ents and not unread_script(caption):  # an unread script has the pipeline's own message
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
    out.update(graph_outputs(s, threshold))
    lines.append(graph_counts(s, threshold) + ".")
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



def _remember_post(s: TabState, image: Any) -> str:
    """The post id of this submission in the tab's graph, and its image's thumbnail for provenance."""
    pid = f"submission {s.requests}"  # run() counted this request already
    if image is not None:
        s.thumbnails[pid] = render.thumbnail_uri(image)
    return pid



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
    kg.apply_decision(s.graph, d)
    replaced = f" (replaces your earlier {d.replaces.relation})" if d.replaces else ""
    return {Output.TAB: s, Output.DECISIONS_DF: ctl.annotations.rows(who),
            Output.STATUS: Status("ok", f"Saved decision {d.id} by {who}: {decision} → {p.head.text} {d.relation} "
                                        f"{p.tail.text}{replaced}. {ctl.annotations.count(who)} decisions of yours "
                                        "in the store."),
            **graph_outputs(s, threshold)}


@callback(GRAPH_PANEL)
def undo_annotation(ctl: Controller, annotator: str | None, threshold: float, tab: TabState | None,
                    oauth_name: str | None = None) -> Update:
    """Take back one's last decision (the store keeps it, marked undone); the graph shows what stood before."""
    s = tab or TabState()
    who = annotator_of(ctl, annotator, s, oauth_name)
    undo = ctl.annotations.undo_last(who)
    kg.take_back_decision(s.graph, undo)
    d = undo.undone
    back = (f"{undo.restored.relation} (your earlier decision) stands again" if undo.restored
            else "the pair is undecided again")
    return {Output.TAB: s, Output.DECISIONS_DF: ctl.annotations.rows(who),
            Output.STATUS: Status("ok", f"Undid decision {d.id} ({d.decision} → {d.candidate.head.text} {d.relation} "
                                        f"{d.candidate.tail.text}): {back}."),
            **graph_outputs(s, threshold)}



# ---- the tab -------------------------------------------------------------------------------------
def build_extract_tab(page: Page, examples: list[dict]) -> SimpleNamespace:
    """The Extract tab's components (its outputs registered on `page`); `wire_extract_tab` binds them."""
    t = SimpleNamespace()
    with gr.Tab("Extract", id="extract", elem_id="extract-tab") as t.tab:
        with gr.Row():
            with gr.Column(scale=2):
                t.image_file = gr.File(label="Image (optional: jpg, png, webp, gif, tiff, bmp…)", type="filepath",
                                       elem_id="image-file")
                page.out(Output.PREVIEW, gr.Image(label="Image as the model reads it", interactive=False, height=220,
                                                  elem_id="preview", buttons=[], format=IMAGE_FORMAT))
                t.caption = page.out(Output.CAPTION, gr.Textbox(
                    label="Caption", lines=3, max_lines=8, elem_id="caption",
                    placeholder="e.g. Astronaut Eileen Collins of NASA poses in Houston."))
                with gr.Row():
                    t.run_btn = gr.Button("Extract relations", variant="primary", elem_id="run")
                with gr.Row():
                    t.show_none = gr.Checkbox(False, label="Show pairs below the threshold (they read as None)",
                                              elem_id="show-none")
                    t.read_text = gr.Checkbox(True, label="Read the text in the image (OCR): ground the entities "
                                                          "it names", elem_id="read-text")
            with gr.Column(scale=3):
                page.out(Output.ENTITIES_HL, gr.HighlightedText(
                    label="Entities in the caption", color_map=ENTITY_COLOURS, show_legend=True,
                    combine_adjacent=False, elem_id="entities"))
                with gr.Accordion("Edit entities (add a row, clear a row's text to remove it, change its type)",
                                  open=False, elem_id="entity-editor"):
                    t.entities_df = page.out(Output.ENTITIES_DF, gr.Dataframe(
                        headers=ENTITY_HEADERS, datatype=["str", "str", "number", "number"], column_count=4,
                        interactive=True, elem_id="entities-table",
                        label="Entities (type: PER, ORG, LOC, MISC; leave start/end empty to find the text in "
                              "the caption)"))
                    t.rerun_btn = gr.Button("Re-run with these entities", elem_id="rerun")
        gr.Examples([[e["path"], e["caption"]] for e in examples], inputs=[t.image_file, t.caption],
                    label="Examples (public-domain photographs from scikit-image; the last one has no image)",
                    examples_per_page=8)
        t.relations_df = page.out(Output.RELATIONS_DF, gr.Dataframe(
            headers=RELATION_HEADERS, interactive=False, elem_id="relations", wrap=True,
            label="Relations: one row per entity pair, in its more probable direction (click a row for its evidence)",
            column_widths=["5%", "19%", "22%", "19%", "9%", "19%", "7%"]))
        t.pair = page.out(Output.PAIR, gr.Dropdown(label="Pair to explain / annotate", choices=[], elem_id="pair",
                                                   allow_custom_value=True))
        with gr.Row():
            with gr.Column(scale=3):
                _build_evidence(page)
            with gr.Column(scale=2):
                _build_image_text(page, t)
                _build_annotator(page, t)
    return t


def _build_evidence(page: Page) -> None:
    gr.Markdown("#### Where the model looked: attention of the pair, the head and the tail over the image")
    page.out(Output.EVIDENCE_IMG, gr.Image(label="Where the model looked", show_label=False, interactive=False,
                                           elem_id="evidence", type="pil", buttons=[], format=IMAGE_FORMAT))
    page.out(Output.EVIDENCE_MD, gr.Markdown("", elem_id="evidence-text"))
    page.out(Output.WORDS, gr.HighlightedText(label="Word weights for this pair (darker = more weight)",
                                              show_legend=False, combine_adjacent=False, elem_id="words"))


def _build_image_text(page: Page, t: SimpleNamespace) -> None:
    page.out(Output.IMAGE_TEXT_IMG, gr.Image(
        label="Text read in the image (blue: a line read; pink: a caption entity found there)", interactive=False,
        type="pil", elem_id="image-text-img", buttons=[], format=IMAGE_FORMAT))
    page.out(Output.IMAGE_TEXT_MD, gr.Markdown("", elem_id="image-text"))
    t.also_in_image = page.out(Output.ALSO_IN_IMAGE, gr.CheckboxGroup(
        [], label="Also in the image: names read there, not in the caption", elem_id="also-in-image"))
    t.add_image_btn = gr.Button("Add the ticked names to the entities and re-run", elem_id="add-from-image",
                                size="sm")
    page.out(Output.CONCEPTS, gr.Label(label="Visual concepts recognised in the image", num_top_classes=8,
                                       elem_id="concepts", show_heading=False))


def _build_annotator(page: Page, t: SimpleNamespace) -> None:
    login = page.ctl.login
    with gr.Accordion("Annotator mode: accept / reject / relabel the chosen pair", open=False, elem_id="annotator"):
        t.annotator = gr.Textbox(label="Your name (annotator)", value="", max_lines=1, elem_id="annotator-name",
                                 interactive=not login.required,
                                 placeholder="signed in on the Review tab" if login.required else "")
        t.decision = gr.Radio(list(DECISIONS), value="accept", label="Decision", elem_id="decision")
        t.new_label = page.out(Output.NEW_LABEL, gr.Dropdown(
            [], value=None, label="New relation (for relabel: the relations that fit the pair's types)",
            elem_id="new-label", allow_custom_value=True))  # API -> store check
        with gr.Row():
            t.annotate_btn = gr.Button("Save decision", elem_id="annotate")
            t.undo_btn = gr.Button("Undo my last decision", elem_id="undo-annotation")


def _pair_of_row(evt: gr.SelectData, sess: Any) -> Any:
    """A click on a relations row: its pair number into the pair box (nothing for a row without one)."""
    try:
        number = int((evt.row_value or [None])[0])
    except (TypeError, ValueError, IndexError):
        number = None
    if number is None:
        return gr.skip()
    return gr.update(value=str(number))


def wire_extract_tab(page: Page, t: SimpleNamespace) -> None:
    """The Extract tab's events, the threshold's refilter among them."""
    ctl, tab, threshold = page.ctl, page.tab, page.threshold
    main_outs, main_conv = page.bind(run)

    def do_predict(image, text, thr, none, sess, ocr=True, progress=gr.Progress()):  # noqa: B008 - gradio's idiom
        return main_conv(run(ctl, image, text, thr, none, sess, progress=progress, read_text=ocr))

    def do_rerun(image, text, rows, thr, none, sess, ocr=True, progress=gr.Progress()):  # noqa: B008
        return main_conv(rerun(ctl, image, text, rows, thr, none, sess, progress=progress, read_text=ocr))

    img_outs, img_conv = page.bind(add_from_image)

    def do_add_from_image(chosen, image, thr, none, sess, ocr=True, progress=gr.Progress()):  # noqa: B008
        return img_conv(add_from_image(ctl, chosen, image, thr, none, sess, progress=progress, read_text=ocr))

    def do_filter(thr, none, sess):
        return main_conv(refilter(ctl, thr, none, sess))

    ev_outs, ev_conv = page.bind(explain)

    def do_explain(p, sess):
        return ev_conv(explain(ctl, p, sess))

    pv_outs, pv_conv = page.bind(preview)
    t.run_btn.click(do_predict, [t.image_file, t.caption, threshold, t.show_none, tab, t.read_text], main_outs,
                    api_name="predict", **MODEL_EVENTS)
    t.caption.submit(do_predict, [t.image_file, t.caption, threshold, t.show_none, tab, t.read_text], main_outs,
                     api_visibility="private", **MODEL_EVENTS)
    t.rerun_btn.click(do_rerun, [t.image_file, t.caption, t.entities_df, threshold, t.show_none, tab, t.read_text],
                      main_outs, api_name="rerun", **MODEL_EVENTS)
    t.add_image_btn.click(do_add_from_image, [t.also_in_image, t.image_file, threshold, t.show_none, tab,
                                              t.read_text], img_outs, api_name="add_from_image", **MODEL_EVENTS)
    # every way the threshold changes (dragging, typing + Enter or Tab in its number box) refilters; only the
    # last of a burst of changes runs
    threshold.change(do_filter, [threshold, t.show_none, tab], main_outs, api_name="filter",
                     trigger_mode="always_last")
    t.show_none.input(do_filter, [threshold, t.show_none, tab], main_outs, api_visibility="private")
    t.pair.input(do_explain, [t.pair, tab], ev_outs, api_name="explain")
    t.relations_df.select(_pair_of_row, [tab], t.pair, api_visibility="private").then(
        do_explain, [t.pair, tab], ev_outs, api_visibility="private")
    t.image_file.change(lambda p: pv_conv(preview(ctl, p)), [t.image_file], pv_outs, api_name="preview",
                        show_progress="minimal")


def wire_annotator(page: Page, t: SimpleNamespace) -> None:
    """The annotator panel's events (GRAPH_PANEL outputs: the graph, and the Review tab's decisions table)."""
    ctl, tab, threshold = page.ctl, page.tab, page.threshold
    a_outs, a_conv = page.bind(annotate)

    def do_annotate(p, d, nl, who, thr, s, profile: gr.OAuthProfile | None = None):
        return a_conv(annotate(ctl, p, d, nl, who, thr, s, oauth_name(profile)))

    def do_undo_annotation(who, thr, s, profile: gr.OAuthProfile | None = None):
        return a_conv(undo_annotation(ctl, who, thr, s, oauth_name(profile)))

    t.annotate_btn.click(do_annotate, [t.pair, t.decision, t.new_label, t.annotator, threshold, tab], a_outs,
                         api_name="annotate")
    t.undo_btn.click(do_undo_annotation, [t.annotator, threshold, tab], a_outs, api_name="undo_annotation")
