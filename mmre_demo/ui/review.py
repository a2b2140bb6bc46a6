"""The Review tab: its builder and callbacks. Sign in, open a review queue (an `mmre extract` folder,
this tab's posts, or a queue already in the store), decide item by item, and the decisions and
agreement tables (and their MNRE export). Every callback takes the shared `Controller`, its inputs
and the `TabState` and returns an `Update` (`mmre_demo.ui.outputs`)."""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import gradio as gr

from mmre_demo.annotations.agreement import AGREEMENT_HEADERS, agreement, agreement_rows
from mmre_demo.annotations.review import Claimed, ReviewPost, review_items
from mmre_demo.annotations.sources import POSTS, extract_posts
from mmre_demo.annotations.store import decision_rows
from mmre_demo.data.images import load_image
from mmre_demo.data.schema import InputError
from mmre_demo.explain.overlay import fit
from mmre_demo.prediction import PredictRequest, predict_one
from mmre_demo.ui import render
from mmre_demo.ui.controller import Controller
from mmre_demo.ui.login import LoginMode
from mmre_demo.ui.outputs import GRAPH_PANEL, REVIEW, Choices, Output, ProgressFn, Status, Update, callback
from mmre_demo.ui.page import IMAGE_FORMAT, MODEL_EVENTS, Page, oauth_name
from mmre_demo.ui.render import ALTERNATIVE_HEADERS, DECISION_HEADERS
from mmre_demo.ui.state import TabState

EMPTY_ITEM: Update = {Output.REVIEW_ITEM: "", Output.REVIEW_CAPTION: None, Output.REVIEW_IMAGE: None,
                      Output.REVIEW_EVIDENCE: None, Output.REVIEW_TEXT: "", Output.REVIEW_ALTERNATIVES: [],
                      Output.REVIEW_LABELS: Choices([], None)}


def annotator_of(ctl: Controller, typed_name: str | None, s: TabState, oauth_name: str | None = None) -> str:
    """Who a decision is stored under (the login's name when the server requires one)."""
    return ctl.login.identity(typed_name, s.signed_in, oauth_name)



def queue_choices(ctl: Controller, chosen: str | None) -> Choices:
    return Choices([(f"{q.name} — {q.items} pairs", q.id) for q in ctl.queues.list()], chosen)


def tables(ctl: Controller, who: str | None, everyone: bool = False) -> Update:
    """The decisions table (the annotator's own unless `everyone`) and the agreement table."""
    standing = ctl.annotations.current()  # read once: both tables come from it
    # one's own only: nobody else's names or decisions unless asked for
    shown = standing if everyone else [d for d in standing if who and d.annotator == who]
    return {Output.DECISIONS_DF: decision_rows(shown), Output.AGREEMENT_DF: agreement_rows(agreement(standing))}


def _evidence(ctl: Controller, claimed: Claimed) -> tuple[Any, Any]:
    """The item's image and where the model looked for its pair (the post classified again; no OCR)."""
    item = claimed.item
    path = ctl.annotations.image_path(item.img_id)
    image = load_image(path, name=path.name) if path else None
    if image is None:  # no picture, no heatmap: nothing to classify again
        return None, None
    pred = predict_one(ctl.pipe, PredictRequest(item.caption, image, list(item.entities), read_text=False))
    spans = {(item.head.start, item.head.end), (item.tail.start, item.tail.end)}
    index = next((i for i, p in enumerate(pred.pairs)
                  if {(p.head.start, p.head.end), (p.tail.start, p.tail.end)} == spans), None)
    return fit(image, 512), render.evidence(pred, index, fit(image, 448))[Output.EVIDENCE_IMG]


def present(ctl: Controller, s: TabState, claimed: Claimed | None, who: str, note: str = "") -> Update:
    """The queue's outputs for the item handed to the annotator, or what to do when none is."""
    out: Update = {Output.TAB: s, Output.REVIEW_QUEUES: queue_choices(ctl, s.review_queue), **tables(ctl, who)}
    if claimed is None:
        s.review_position = None
        progress = ctl.queues.progress(s.review_queue, who) if s.review_queue else None
        left = progress.total - progress.reviewed if progress else 0
        msg = ("You have decided every item of this queue." if not left else
               f"The {left} items left are being reviewed by others right now: press Next in a minute.")
        return {**out, **EMPTY_ITEM, Output.REVIEW_PROGRESS: f"**{progress.text()}**" if progress else "",
                Output.STATUS: Status.of("ok" if not left else "info", [note, msg])}
    s.review_queue, s.review_position = claimed.queue_id, claimed.position
    item = claimed.item
    labels = item.relabel_choices()
    image, heatmap = _evidence(ctl, claimed)
    return {**out, Output.REVIEW_PROGRESS: f"**{claimed.progress.text()}** (reviewer: {who})",
            Output.REVIEW_ITEM: render.review_markdown(item, claimed.position),
            Output.REVIEW_CAPTION: render.review_segments(item), Output.REVIEW_IMAGE: image,
            Output.REVIEW_EVIDENCE: heatmap,
            Output.REVIEW_TEXT: render.image_text_lines(item.image_text, item.img_id is not None),
            Output.REVIEW_ALTERNATIVES: render.alternative_rows(item, labels),
            Output.REVIEW_LABELS: render.relation_choices(labels),
            Output.STATUS: Status.of("ok", [note, f"Item {claimed.position + 1}: {item.reason.value}."])}


def _open(ctl: Controller, s: TabState, who: str, queue_id: str, note: str) -> Update:
    s.review_queue = queue_id
    claimed = ctl.queues.held(queue_id, who) or ctl.queues.next(queue_id, who)
    return present(ctl, s, claimed, who, note)


@callback(REVIEW)
def sign_in(ctl: Controller, name: str | None, password: str | None, tab: TabState | None) -> Update:
    s = tab or TabState()
    s.signed_in = ctl.login.sign_in(name, password)
    return {Output.TAB: s, Output.ANNOTATOR_NAME: s.signed_in, **tables(ctl, s.signed_in),
            Output.STATUS: Status("ok", f"Signed in as {s.signed_in}: your decisions are stored under this name.")}


@callback(REVIEW)
def open_folder(ctl: Controller, files: list[str] | None, annotator: str | None, tab: TabState | None,
                progress: ProgressFn = None, oauth_name: str | None = None) -> Update:
    """Open an `mmre extract` output as a queue: its posts.jsonl (and the images it names) uploaded."""
    s = tab or TabState()
    who = annotator_of(ctl, annotator, s, oauth_name)
    paths = [Path(str(f)) for f in (files or [])]
    posts_file = next((p for p in paths if p.name == POSTS), None) or next(
        (p for p in paths if p.suffix == ".jsonl"), None)
    if posts_file is None:
        raise InputError(f"Upload the {POSTS} of an `mmre extract` output folder (and the images it names).")
    step = progress or (lambda *a, **k: None)
    step(0.0, desc="Classifying the posts again for every pair")
    posts = list(extract_posts(posts_file, ctl.pipe, ctl.annotations, [p for p in paths if p != posts_file],
                               progress=lambda done, total: step(done / total, desc=f"{done} of {total} posts")))
    info = ctl.queues.create(f"{posts_file.name} ({len(posts)} posts)", review_items(posts, ctl.pipe.threshold))
    return _open(ctl, s, who, info.id, f"Opened {info.items} pairs of {len(posts)} posts, the most uncertain first.")


@callback(REVIEW)
def open_tab_posts(ctl: Controller, annotator: str | None, tab: TabState | None,
                       oauth_name: str | None = None) -> Update:
    """Review what this tab classified (its graph's posts)."""
    s = tab or TabState()
    who = annotator_of(ctl, annotator, s, oauth_name)
    if not s.posts:
        raise InputError("This tab has classified nothing yet: extract relations first, or open an extract folder.")
    posts = [ReviewPost(p.post_id, p.prediction, ctl.annotations.store_image(p.image_path), p.image_path)
             for p in s.posts]
    info = ctl.queues.create(f"this tab's {len(posts)} posts", review_items(posts, ctl.pipe.threshold))
    return _open(ctl, s, who, info.id, f"Opened {info.items} pairs of this tab's {len(posts)} posts.")


@callback(REVIEW)
def open_queue(ctl: Controller, queue_id: str | None, annotator: str | None, tab: TabState | None,
               oauth_name: str | None = None) -> Update:
    """Continue a queue already in the store (where this annotator stopped)."""
    s = tab or TabState()
    who = annotator_of(ctl, annotator, s, oauth_name)
    if not queue_id:
        raise InputError("Choose a review queue first.")
    info = ctl.queues.info(queue_id)
    return _open(ctl, s, who, info.id, f"Continuing {info.name}.")


OPEN_A_QUEUE = "Open a review queue first (an extract folder, this tab's posts or a stored queue)."


def _open_queue(s: TabState) -> str:
    if s.review_queue is None:
        raise InputError(OPEN_A_QUEUE)
    return s.review_queue


def _holding(s: TabState) -> tuple[str, int]:
    if s.review_position is None:
        raise InputError(OPEN_A_QUEUE)
    return _open_queue(s), s.review_position


@callback(REVIEW)
def decide(ctl: Controller, decision: str, new_label: str | None, annotator: str | None, tab: TabState | None,
           oauth_name: str | None = None) -> Update:
    """Accept / reject / relabel the item shown, then the next one."""
    s = tab or TabState()
    who = annotator_of(ctl, annotator, s, oauth_name)
    queue_id, position = _holding(s)
    d = ctl.queues.decide(queue_id, position, who, decision, new_label)
    note = f"Saved: {d.decision} → {d.candidate.head.text} {d.relation} {d.candidate.tail.text}."
    return present(ctl, s, ctl.queues.next(queue_id, who), who, note)


@callback(REVIEW)
def skip(ctl: Controller, annotator: str | None, tab: TabState | None, oauth_name: str | None = None) -> Update:
    s = tab or TabState()
    who = annotator_of(ctl, annotator, s, oauth_name)
    queue_id, position = _holding(s)
    ctl.queues.skip(queue_id, position, who)
    return present(ctl, s, ctl.queues.next(queue_id, who), who, f"Skipped item {position + 1}: it comes back last.")


@callback(REVIEW)
def undo(ctl: Controller, annotator: str | None, tab: TabState | None, oauth_name: str | None = None) -> Update:
    s = tab or TabState()
    who = annotator_of(ctl, annotator, s, oauth_name)
    claimed = ctl.queues.undo(_open_queue(s), who)
    return present(ctl, s, claimed, who, f"Undid your decision on item {claimed.position + 1}; decide it again.")


@callback(REVIEW)
def next_item(ctl: Controller, annotator: str | None, tab: TabState | None, oauth_name: str | None = None) -> Update:
    s = tab or TabState()
    who = annotator_of(ctl, annotator, s, oauth_name)
    queue_id = _open_queue(s)
    return present(ctl, s, ctl.queues.held(queue_id, who) or ctl.queues.next(queue_id, who), who)


@callback(REVIEW)
def refresh(ctl: Controller, annotator: str | None, everyone: bool, tab: TabState | None,
            oauth_name: str | None = None) -> Update:
    """The decisions table (yours, or everyone's) and the agreement between annotators."""
    s = tab or TabState()
    try:
        who = annotator_of(ctl, annotator, s, oauth_name)
    except InputError:
        who = None  # not signed in: everyone's decisions can still be read
    out = tables(ctl, who, everyone)
    pairs = len(out[Output.AGREEMENT_DF])
    return {Output.TAB: s, Output.REVIEW_QUEUES: queue_choices(ctl, s.review_queue), **out,
            Output.STATUS: Status("info", f"{len(out[Output.DECISIONS_DF])} standing decisions shown"
                                          f"{'' if everyone or not who else ' (yours)'}; "
                                          f"{'no pairs decided by two annotators yet' if not pairs else ''}"
                                          .rstrip("; ") + ".")}


@callback(GRAPH_PANEL)
def export_annotations(ctl: Controller, tab: TabState | None = None) -> Update:
    path = ctl.export_dir / f"annotations_{time.strftime('%Y%m%d-%H%M%S')}_{uuid.uuid4().hex[:6]}.txt"
    text = ctl.annotations.export_mnre(path)
    n = text.count("\n")
    return {Output.ANNOTATIONS_FILE: str(path),
            Output.STATUS: Status("ok", f"Exported {n} standing decisions as MNRE lines (latest per pair and "
                                        "annotator; undone and replaced ones left out).")}


# ---- the tab -------------------------------------------------------------------------------------
def build_review_tab(page: Page) -> SimpleNamespace:
    """The Review tab's components (its outputs registered on `page`); `wire_review_tab` binds them."""
    login = page.ctl.login
    t = SimpleNamespace(login_name=None, login_password=None, sign_in_btn=None)
    with gr.Tab("Review", elem_id="review-tab") as t.tab:
        gr.Markdown("### Review queue: a corpus's pairs one at a time, the most uncertain first\n"
                    "Open an `mmre extract` output (its `posts.jsonl`, with the images it names), this tab's "
                    "posts, or a queue someone opened before. Keys (outside a text box): **A** accept, "
                    "**R** reject, **1–9** relabel, **S** skip, **U** undo. Your progress is kept in the "
                    "annotation store: come back any time.")
        with gr.Row():
            t.review_name = page.out(Output.ANNOTATOR_NAME, gr.Textbox(
                label="Your name (annotator; kept in this browser)", max_lines=1, elem_id="review-name",
                interactive=not login.required, scale=2))
            if login.mode is LoginMode.PASSWORD:
                t.login_name = gr.Textbox(label="Annotator", max_lines=1, elem_id="login-name", scale=1)
                t.login_password = gr.Textbox(label="Password", type="password", max_lines=1,
                                              elem_id="login-password", scale=1)
                t.sign_in_btn = gr.Button("Sign in to annotate", elem_id="sign-in", scale=1)
            elif login.mode is LoginMode.HUGGINGFACE:
                gr.LoginButton(value="Sign in with Hugging Face to annotate", elem_id="hf-login", scale=1)
        with gr.Row():
            t.queue_dd = page.out(Output.REVIEW_QUEUES, gr.Dropdown(
                [], label="Stored review queues", elem_id="review-queue", scale=2, allow_custom_value=True))
            t.open_queue_btn = gr.Button("Continue this queue", elem_id="open-queue", scale=1)
            t.open_tab_posts_btn = gr.Button("Review this tab's posts", elem_id="review-tab-posts", scale=1)
        with gr.Accordion("Open an `mmre extract` output folder", open=False, elem_id="review-upload-box"):
            t.review_files = gr.File(label="posts.jsonl (and the images it names)", file_count="multiple",
                                     type="filepath", elem_id="review-files")
            t.open_folder_btn = gr.Button("Open as a review queue", elem_id="open-folder")
        with gr.Column(elem_id="review-panel"):
            _build_item(page, t)
        _build_tables(page, t)
    return t


def _build_item(page: Page, t: SimpleNamespace) -> None:
    page.out(Output.REVIEW_PROGRESS, gr.Markdown("", elem_id="review-progress"))
    with gr.Row():
        with gr.Column(scale=3):
            page.out(Output.REVIEW_ITEM, gr.Markdown("Open a review queue to start.", elem_id="review-item"))
            page.out(Output.REVIEW_CAPTION, gr.HighlightedText(label="The post (head and tail marked)",
                                                               combine_adjacent=False, show_legend=True,
                                                               elem_id="review-caption"))
            with gr.Row():
                t.accept_btn = gr.Button("Accept (A)", variant="primary", elem_id="review-accept")
                t.reject_btn = gr.Button("Reject (R)", variant="stop", elem_id="review-reject")
                t.skip_btn = gr.Button("Skip (S)", elem_id="review-skip")
                t.undo_btn = gr.Button("Undo (U)", elem_id="review-undo")
                t.next_btn = gr.Button("Next", elem_id="review-next")
            t.review_labels = page.out(Output.REVIEW_LABELS, gr.Radio(
                [], value=None, elem_id="review-labels",
                label="Relabel to (only the relations that fit the pair's types; keys 1–9)"))
            t.relabel_btn = gr.Button("Relabel to the chosen relation", elem_id="review-relabel")
            page.out(Output.REVIEW_ALTERNATIVES, gr.Dataframe(headers=ALTERNATIVE_HEADERS, interactive=False,
                                                              label="The model's alternatives", elem_id="review-alts"))
        with gr.Column(scale=2):
            page.out(Output.REVIEW_IMAGE, gr.Image(label="The post's image", interactive=False, type="pil",
                                                   elem_id="review-image", buttons=[], height=260,
                                                   format=IMAGE_FORMAT))
            page.out(Output.REVIEW_TEXT, gr.Markdown("", elem_id="review-text"))
            page.out(Output.REVIEW_EVIDENCE, gr.Image(label="Where the model looked for this pair", interactive=False,
                                                      type="pil", elem_id="review-evidence", buttons=[],
                                                      format=IMAGE_FORMAT))


def _build_tables(page: Page, t: SimpleNamespace) -> None:
    gr.Markdown("#### Decisions and agreement")
    with gr.Row():
        t.everyone = gr.Checkbox(False, label="Show everyone's decisions (default: yours)", elem_id="everyone")
        t.refresh_tables_btn = gr.Button("Refresh the tables", elem_id="refresh-decisions", size="sm")
        t.export_ann_btn = gr.Button("Export decisions as MNRE lines", elem_id="export-annotations", size="sm")
    page.out(Output.DECISIONS_DF, gr.Dataframe(
        headers=DECISION_HEADERS, value=[], interactive=False, wrap=True, elem_id="decisions",
        label="Standing decisions (newest first; replaced and undone ones are kept in the store's history)"))
    page.out(Output.AGREEMENT_DF, gr.Dataframe(
        headers=AGREEMENT_HEADERS, value=[], interactive=False, elem_id="agreement",
        label="Agreement on the pairs two annotators decided (Cohen's kappa; per relation: that relation against "
              "the rest)"))
    page.out(Output.ANNOTATIONS_FILE, gr.File(label="MNRE export", interactive=False, elem_id="annotations-file"))


def wire_review_tab(page: Page, t: SimpleNamespace) -> None:
    """The Review tab's events; every one of its callbacks shares the REVIEW outputs."""
    ctl, tab = page.ctl, page.tab
    rv_outs, rv_conv = page.bind(decide)

    def do_decide(kind, label, who, s, profile: gr.OAuthProfile | None = None):
        return rv_conv(decide(ctl, kind, label, who, s, oauth_name(profile)))

    def do_skip(who, s, profile: gr.OAuthProfile | None = None):
        return rv_conv(skip(ctl, who, s, oauth_name(profile)))

    def do_review_undo(who, s, profile: gr.OAuthProfile | None = None):
        return rv_conv(undo(ctl, who, s, oauth_name(profile)))

    def do_next(who, s, profile: gr.OAuthProfile | None = None):
        return rv_conv(next_item(ctl, who, s, oauth_name(profile)))

    def do_open_queue(q, who, s, profile: gr.OAuthProfile | None = None):
        return rv_conv(open_queue(ctl, q, who, s, oauth_name(profile)))

    def do_open_tab_posts(who, s, profile: gr.OAuthProfile | None = None):
        return rv_conv(open_tab_posts(ctl, who, s, oauth_name(profile)))

    def do_open_folder(files, who, s, progress=gr.Progress(), profile: gr.OAuthProfile | None = None):  # noqa: B008
        return rv_conv(open_folder(ctl, files, who, s, progress=progress, oauth_name=oauth_name(profile)))

    def do_refresh(who, all_, s, profile: gr.OAuthProfile | None = None):
        return rv_conv(refresh(ctl, who, all_, s, oauth_name(profile)))

    def do_accept(who, s, profile: gr.OAuthProfile | None = None):
        return do_decide("accept", None, who, s, profile)

    def do_reject(who, s, profile: gr.OAuthProfile | None = None):
        return do_decide("reject", None, who, s, profile)

    def do_relabel(label, who, s, profile: gr.OAuthProfile | None = None):
        return do_decide("relabel", label, who, s, profile)

    name = t.review_name
    t.accept_btn.click(do_accept, [name, tab], rv_outs, api_name="review_accept", **MODEL_EVENTS)
    t.reject_btn.click(do_reject, [name, tab], rv_outs, api_name="review_reject", **MODEL_EVENTS)
    t.relabel_btn.click(do_relabel, [t.review_labels, name, tab], rv_outs, api_name="review_relabel",
                        **MODEL_EVENTS)
    t.skip_btn.click(do_skip, [name, tab], rv_outs, api_name="review_skip", **MODEL_EVENTS)
    t.undo_btn.click(do_review_undo, [name, tab], rv_outs, api_name="review_undo", **MODEL_EVENTS)
    t.next_btn.click(do_next, [name, tab], rv_outs, api_name="review_next", **MODEL_EVENTS)
    t.open_queue_btn.click(do_open_queue, [t.queue_dd, name, tab], rv_outs, api_name="review_open",
                           **MODEL_EVENTS)
    t.open_tab_posts_btn.click(do_open_tab_posts, [name, tab], rv_outs, api_name="review_tab_posts",
                               **MODEL_EVENTS)
    t.open_folder_btn.click(do_open_folder, [t.review_files, name, tab], rv_outs, api_name="review_folder",
                            **MODEL_EVENTS)
    t.refresh_tables_btn.click(do_refresh, [name, t.everyone, tab], rv_outs, api_name="decisions")
    t.everyone.input(do_refresh, [name, t.everyone, tab], rv_outs, api_visibility="private")
    if t.sign_in_btn is not None:
        t.sign_in_btn.click(lambda n, pw, s: rv_conv(sign_in(ctl, n, pw, s)),
                            [t.login_name, t.login_password, tab], rv_outs, api_name="sign_in")
    a_outs, a_conv = page.bind(export_annotations)
    t.export_ann_btn.click(lambda s: a_conv(export_annotations(ctl, s)), [tab], a_outs,
                           api_name="export_annotations")


def wire_returning_annotator(page: Page, t: SimpleNamespace, annotator: Any, demo: gr.Blocks) -> None:
    """The annotator's name in both places (the Review tab's box and the Extract tab's `annotator`),
    remembered by the browser with the queue it had open: a new visit opens it where it stopped."""
    ctl = page.ctl
    rv_outs, rv_conv = page.bind(decide)
    name_state = gr.BrowserState("", storage_key="mmre_annotator")
    queue_state = gr.BrowserState("", storage_key="mmre_review_queue")
    # one name in both places, remembered by the browser (a login's name replaces it)
    t.review_name.change(lambda v: (v, v), t.review_name, [annotator, name_state], api_visibility="private")
    annotator.input(lambda v: (v, v), annotator, [t.review_name, name_state], api_visibility="private")

    def restore(name, queue, s):
        """A new visit: the browser's annotator name, and the queue it had open, where it stopped
        (nothing is touched when the browser remembers no name: a name typed meanwhile stays)."""
        if ctl.login.required or not name:
            return tuple(gr.skip() for _ in rv_outs)
        known = bool(queue) and any(q.id == queue for q in ctl.queues.list())
        update = open_queue(ctl, queue, name, s) if known else refresh(ctl, name, False, s)
        return rv_conv({**update, Output.ANNOTATOR_NAME: name})

    def list_queues(chosen):
        listed = queue_choices(ctl, chosen or None)
        return gr.update(choices=listed.choices, value=listed.value)

    demo.load(restore, [name_state, queue_state, page.tab], rv_outs, api_visibility="private")
    t.tab.select(list_queues, t.queue_dd, t.queue_dd, api_visibility="private")
    t.queue_dd.change(lambda q: q or "", t.queue_dd, queue_state, api_visibility="private")  # the open queue
