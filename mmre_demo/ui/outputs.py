"""The contract between the callbacks and the page: the app's outputs, named once, and `callback`.

A callback returns an `Update`: `{Output: value}` with only the outputs it changes (the rest of the
page stays as it is). Each callback declares the outputs it may change (`@callback(GROUP)`, one of
the groups below); returning any other output is an error, not a silent drop. The page gives every
`Output` one component and binds each callback to its group. Every tab's module (`extract`, `graph`,
`review`) speaks this contract and nothing else to the page.

Values are plain Python (lists for tables, PIL images, plotly figures), except two typed ones:
`Status` for the status line and `Choices` for the dropdowns whose options change.
"""

from __future__ import annotations

import logging
import os
import re
import traceback
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import Enum
from functools import wraps
from typing import Any, Literal

from mmre_demo.data.schema import InputError

log = logging.getLogger(__name__)


class Output(str, Enum):
    """Every output component of the page (the value is the component's name in the layout)."""

    TAB = "tab"  # the per-tab `TabState` (gr.State)
    STATUS = "status"  # `Status`
    PREVIEW = "preview"  # the image as the model reads it
    ENTITIES_HL = "entities_hl"  # caption segments highlighted by entity type
    ENTITIES_DF = "entities_df"  # the editable entity table
    RELATIONS_DF = "relations_df"  # one row per entity pair
    PAIR = "pair"  # `Choices` of the pair to explain / annotate
    EVIDENCE_IMG = "evidence_img"  # heatmap panels
    EVIDENCE_MD = "evidence_md"  # the evidence in words
    WORDS = "words"  # caption words with their weights
    CONCEPTS = "concepts"  # visual concepts {name: probability}
    IMAGE_TEXT_IMG = "image_text_img"  # the image with the text read in it boxed
    IMAGE_TEXT_MD = "image_text_md"  # the lines read, the entities grounded in them
    ALSO_IN_IMAGE = "also_in_image"  # `Choices` of the names found only in the image
    CAPTION = "caption"  # the caption (changed when names from the image are added to it)
    GRAPH = "graph"  # plotly figure of the tab's graph
    NODE = "node"  # `Choices` of the graph's entity nodes
    FILES = "files"  # exported graph files
    SUGGESTIONS_DF = "suggestions_df"  # suggested links table
    SUGGESTION = "suggestion"  # `Choices` of the suggestion to add
    DECISIONS_DF = "decisions_df"  # stored annotator decisions
    ANNOTATIONS_FILE = "annotations_file"  # the MNRE export of the decisions
    EDGE = "edge"  # `Choices` of the drawn edges, to trace one to its posts
    PROVENANCE = "provenance"  # HTML: the posts a node or an edge came from
    POLL = "poll"  # bool: the timer that fetches suggestions while the embedding trains runs
    HOPS = "hops"  # the focus radio ("whole graph", "1 hop", "2 hops")
    RELATION_FILTER = "relation_filter"  # the graph's filters (reset by "back to the whole graph")
    TYPE_FILTER = "type_filter"
    SOURCE_FILTER = "source_filter"
    NEW_LABEL = "new_label"  # `Choices` of the relations a relabel of the chosen pair may pick (none chosen)
    ANNOTATOR_NAME = "annotator_name"  # the annotator's name (set by signing in)
    REVIEW_QUEUES = "review_queues"  # `Choices` of the review queues in the store
    REVIEW_PROGRESS = "review_progress"  # "37 of 412 reviewed"
    REVIEW_ITEM = "review_item"  # the reviewed pair in words
    REVIEW_CAPTION = "review_caption"  # its caption, head and tail marked
    REVIEW_IMAGE = "review_image"  # its image
    REVIEW_EVIDENCE = "review_evidence"  # where the model looked, for that pair
    REVIEW_TEXT = "review_text"  # the text read in its image
    REVIEW_ALTERNATIVES = "review_alternatives"  # the model's alternatives and their keys
    REVIEW_LABELS = "review_labels"  # `Choices` of the relabel targets that fit the pair
    AGREEMENT_DF = "agreement_df"  # agreement between annotators


Update = dict[Output, Any]
ProgressFn = Callable[..., Any] | None  # gradio's progress bar (None: no progress shown)
StatusKind = Literal["ok", "warn", "error", "info"]
_ICONS: dict[str, str] = {"ok": "✅", "warn": "⚠️", "error": "❌", "info": "ℹ️"}


@dataclass(frozen=True)
class Status:
    """The status line: what happened (`ok`, `info`) or what went wrong (`warn`: bad input, `error`: a bug)."""

    kind: StatusKind
    message: str  # one line per fact

    @classmethod
    def of(cls, kind: StatusKind, lines: Iterable[str]) -> Status:
        return cls(kind, "\n".join(ln for ln in lines if ln))

    @property
    def is_problem(self) -> bool:
        return self.kind in ("warn", "error")

    def markdown(self) -> str:
        """The status line as shown (and as gradio_client receives it): each line with its icon."""
        return "\n".join(f"{_ICONS[self.kind]} {ln}" for ln in self.message.split("\n") if ln)


@dataclass(frozen=True)
class Choices:
    """New options of a dropdown and the chosen one (`(label, value)` pairs or plain values)."""

    choices: list[Any]
    value: str | None = None


# ---- which outputs each family of callbacks may change (order = the API's output order) ----------
EXTRACTION: tuple[Output, ...] = (  # run, rerun, refilter
    Output.TAB, Output.STATUS, Output.ENTITIES_HL, Output.ENTITIES_DF, Output.RELATIONS_DF, Output.PAIR,
    Output.EVIDENCE_IMG, Output.EVIDENCE_MD, Output.WORDS, Output.CONCEPTS, Output.GRAPH, Output.NODE,
    Output.IMAGE_TEXT_IMG, Output.IMAGE_TEXT_MD, Output.ALSO_IN_IMAGE, Output.NEW_LABEL,
)
FROM_IMAGE: tuple[Output, ...] = (*EXTRACTION, Output.CAPTION)  # add names read in the image, then re-run
EVIDENCE: tuple[Output, ...] = (  # explain
    Output.TAB, Output.STATUS, Output.EVIDENCE_IMG, Output.EVIDENCE_MD, Output.WORDS, Output.NEW_LABEL,
)
GRAPH_PANEL: tuple[Output, ...] = (  # annotations (and what the graph tab's callbacks share with them)
    Output.TAB, Output.STATUS, Output.GRAPH, Output.NODE, Output.FILES, Output.SUGGESTIONS_DF, Output.SUGGESTION,
    Output.DECISIONS_DF, Output.ANNOTATIONS_FILE,
)
GRAPH_TAB: tuple[Output, ...] = (  # the graph tab: graph, search / focus / filters, provenance, suggestions
    *GRAPH_PANEL, Output.EDGE, Output.PROVENANCE, Output.POLL, Output.HOPS, Output.RELATION_FILTER,
    Output.TYPE_FILTER, Output.SOURCE_FILTER,
)
PREVIEW: tuple[Output, ...] = (Output.STATUS, Output.PREVIEW)  # upload
REVIEW: tuple[Output, ...] = (  # the review queue, the decisions and agreement tables, signing in
    Output.TAB, Output.STATUS, Output.REVIEW_QUEUES, Output.REVIEW_PROGRESS, Output.REVIEW_ITEM,
    Output.REVIEW_CAPTION, Output.REVIEW_IMAGE, Output.REVIEW_EVIDENCE, Output.REVIEW_TEXT, Output.REVIEW_ALTERNATIVES,
    Output.REVIEW_LABELS, Output.DECISIONS_DF, Output.AGREEMENT_DF, Output.ANNOTATIONS_FILE, Output.ANNOTATOR_NAME,
)


def callback(outputs: tuple[Output, ...]) -> Callable[[Callable[..., Update]], Callable[..., Update]]:
    """Declare the outputs a callback may change, and turn any exception into a status message (never a
    stack trace in the UI). Returning an undeclared output is a programming error and raises."""

    def decorate(fn: Callable[..., Update]) -> Callable[..., Update]:
        @wraps(fn)
        def wrapper(ctl: Any, *args: Any, **kwargs: Any) -> Update:
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
