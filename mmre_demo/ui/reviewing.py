"""The Review tab's callbacks (plain functions, like `callbacks`): sign in, open a review queue (an
`mmre extract` folder, this tab's posts, or a queue already in the store), decide item by item,
and the decisions and agreement tables."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mmre_demo.annotations.agreement import agreement, agreement_rows
from mmre_demo.annotations.review import Claimed, ReviewPost, review_items
from mmre_demo.annotations.sources import POSTS, extract_posts
from mmre_demo.annotations.store import decision_rows
from mmre_demo.data.images import load_image
from mmre_demo.data.schema import InputError
from mmre_demo.explain.overlay import fit
from mmre_demo.prediction import PredictRequest, predict_one
from mmre_demo.ui import render
from mmre_demo.ui.callbacks import ProgressFn, annotator_of, callback
from mmre_demo.ui.controller import Controller, TabState
from mmre_demo.ui.outputs import REVIEW, Choices, Output, Status, Update

EMPTY_ITEM: Update = {Output.REVIEW_ITEM: "", Output.REVIEW_CAPTION: None, Output.REVIEW_IMAGE: None,
                      Output.REVIEW_EVIDENCE: None, Output.REVIEW_TEXT: "", Output.REVIEW_ALTERNATIVES: [],
                      Output.REVIEW_LABELS: Choices([], None)}


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
