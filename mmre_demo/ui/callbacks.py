"""The app's callbacks as plain functions (no browser, no server needed to test them).

Every callback takes the per-user `Session` (or None on the first call) and returns a dict
`{output_name: value}` with only the outputs it changes, plus "session". The Gradio layer
(`mmre_demo.ui.layout`) maps missing outputs to "leave unchanged". Bad input never raises: the
`status` output says what was wrong and the rest of the page stays as it was.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import threading
import time
import traceback
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from functools import wraps
from pathlib import Path
from typing import Any, Callable

import networkx as nx
from PIL import Image

from mmre_demo import graph as kg
from mmre_demo.annotations import DECISIONS, AnnotationStore
from mmre_demo.data.images import load_image
from mmre_demo.data.labels import ENTITY_TYPES, NONE_LABEL, RELATIONS, short_name
from mmre_demo.data.schema import Entity, InputError, check_caption
from mmre_demo.heatmap import evidence_panels, fit

log = logging.getLogger("mmre_demo.ui")

ASSETS = Path(__file__).resolve().parents[2] / "assets"
MAX_PAIRS = 30
ENTITY_HEADERS = ["text", "type", "start", "end"]
RELATION_HEADERS = ["#", "head", "relation", "tail", "probability", "top-3 alternatives", "image influence"]
SUGGESTION_HEADERS = ["head", "relation", "tail", "score"]
DECISION_HEADERS = ["id", "time", "annotator", "head", "predicted", "tail", "decision", "relation", "img_id"]
TYPE_COLOURS = {"PER": "#1f77b4", "ORG": "#ff7f0e", "LOC": "#2ca02c", "MISC": "#9467bd", "?": "#8c8c8c"}
MAX_SESSIONS_WITH_SUGGESTER = 32

ProgressFn = Callable[..., Any] | None


# ------------------------------------------------------------------------------------------ state
@dataclass
class Session:
    """Everything one browser tab (or one gradio_client) accumulates."""

    sid: str = field(default_factory=lambda: uuid.uuid4().hex)
    graph: nx.MultiDiGraph = field(default_factory=kg.new_graph)
    positions: dict = field(default_factory=dict)
    prediction: Any = None  # mmre_demo.prediction.Prediction
    image: Image.Image | None = None  # small RGB copy for the overlays
    image_path: str | None = None
    image_id: str | None = None
    pair_index: int | None = None
    selected_node: str | None = None
    suggestions: list[dict] = field(default_factory=list)
    requests: int = 0


def examples(assets: Path = ASSETS) -> list[dict]:
    """assets/examples.json with image paths made absolute (None = caption only)."""
    items = json.loads((assets / "examples.json").read_text(encoding="utf-8"))
    for it in items:
        it["path"] = str(assets / it["image"]) if it.get("image") else None
    return items


class PipelineLoader:
    """Loads the model in a background thread so the page is served at once; the first request waits."""

    def __init__(self, factory: Callable[[], Any]):
        self._factory, self._pipe, self._error = factory, None, None
        self._done = threading.Event()
        threading.Thread(target=self._load, daemon=True, name="pipeline-load").start()

    def _load(self) -> None:
        try:
            self._pipe = self._factory()
        except Exception as exc:  # noqa: BLE001 - reported on the first request
            log.exception("model load failed")
            self._error = exc
        finally:
            self._done.set()

    def get(self, timeout: float = 300.0) -> Any:
        if not self._done.wait(timeout):
            raise InputError("The model is still loading; try again in a few seconds.")
        if self._error is not None:
            raise InputError(f"The model could not be loaded: {self._error}")
        return self._pipe

    @property
    def ready(self) -> bool:
        return self._done.is_set() and self._error is None


def _status(kind: str, lines: list[str]) -> str:
    icon = {"ok": "✅", "warn": "⚠️", "error": "❌", "info": "ℹ️"}[kind]
    return "\n".join(f"{icon} {ln}" for ln in lines if ln)


def guarded(fn: Callable[..., dict]) -> Callable[..., dict]:
    """Turn any exception into a status message (never a stack trace in the UI)."""

    @wraps(fn)
    def wrapper(self: "Controller", *args: Any, **kwargs: Any) -> dict:
        try:
            return fn(self, *args, **kwargs)
        except InputError as exc:
            return {"status": _status("warn", [str(exc)])}
        except Exception as exc:  # noqa: BLE001 - the app keeps serving
            ref = uuid.uuid4().hex[:8]
            log.error("callback %s failed [%s]\n%s", fn.__name__, ref, traceback.format_exc())
            return {"status": _status("error", [f"Something went wrong ({type(exc).__name__}: {str(exc)[:200]}). "
                                                f"The app is still running; reference {ref} is in the server log."])}

    return wrapper


# ------------------------------------------------------------------------------------- rendering
def entity_segments(caption: str, entities: list[Entity]) -> list[tuple[str, str | None]]:
    """Caption split into (text, type-or-None) for gr.HighlightedText."""
    out: list[tuple[str, str | None]] = []
    pos = 0
    for e in sorted(entities, key=lambda x: x.start):
        if e.start > pos:
            out.append((caption[pos:e.start], None))
        out.append((caption[e.start:e.end], e.type or "?"))
        pos = e.end
    if pos < len(caption):
        out.append((caption[pos:], None))
    return out


def entity_rows(entities: list[Entity]) -> list[list[Any]]:
    return [[e.text, e.type, e.start, e.end] for e in entities]


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
    for n, row in enumerate(rows, start=1):
        row = list(row) + [None] * (4 - len(row))
        text = "" if row[0] is None else str(row[0])
        if not text.strip() or text.strip().lower() == "nan":
            continue
        etype = "" if row[1] is None or str(row[1]).lower() == "nan" else str(row[1]).strip().upper()
        if etype and etype not in ENTITY_TYPES:
            raise InputError(f"Row {n} ({text!r}): type {etype!r} is not one of {', '.join(ENTITY_TYPES)}.")

        def as_int(v: Any) -> int | None:
            if v is None or (isinstance(v, str) and not v.strip()):
                return None
            try:
                f = float(v)
            except (TypeError, ValueError):
                raise InputError(f"Row {n} ({text!r}): start/end must be whole numbers, got {v!r}.") from None
            if f != f:  # NaN
                return None
            return int(f)

        start, end = as_int(row[2]), as_int(row[3])
        if start is None or end is None:
            needle = text.strip()
            idx = caption.find(needle)
            while idx >= 0 and any(idx < b and a < idx + len(needle) for a, b in used):
                idx = caption.find(needle, idx + 1)
            if idx < 0:
                raise InputError(f"Row {n}: {needle!r} does not occur in the caption (or every occurrence is "
                                 "already used); fix the text or give start and end.")
            start, end, text = idx, idx + len(needle), needle
        elif start < 0 or end > len(caption) or start >= end:
            raise InputError(f"Row {n} ({text!r}): span [{start}, {end}) is outside the caption "
                             f"(length {len(caption)}).")
        elif caption[start:end] != text:
            # be forgiving: the user typed the text but the offsets are stale -> trust the text if it is unique
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


def visible_pairs(pred: Any, threshold: float, show_none: bool) -> list[tuple[int, Any]]:
    """The relations at the threshold; with `show_none`, every pair (those below it read as None)."""
    return [(i, p) for i, p in enumerate(pred.pairs)
            if show_none or (p.is_relation and p.probability >= threshold)]


def pair_label(i: int, p: Any, threshold: float) -> str:
    label, prob = p.shown(threshold)
    return f"#{i + 1} {p.head.text} → {p.tail.text}: {short_name(label)} ({prob:.2f})"


def relation_rows(pred: Any, threshold: float, show_none: bool) -> list[list[Any]]:
    rows = []
    for i, p in visible_pairs(pred, threshold, show_none):
        label, prob = p.shown(threshold)
        alts = ", ".join(f"{short_name(lab)} {pr:.2f}" for lab, pr in p.top_k if lab != label)
        rows.append([i + 1, f"{p.head.text} ({p.head.type or '?'})", label, f"{p.tail.text} ({p.tail.type or '?'})",
                     round(prob, 3), alts, p.influence_text()])
    return rows


def word_segments(caption: str, token_weights: list) -> list[tuple[str, float | None]]:
    """Caption words with weights scaled to [0, 1] (max = 1) for gr.HighlightedText's colour scale."""
    if not token_weights:
        return [(caption, None)]
    top = max(t.weight for t in token_weights) or 1.0
    out: list[tuple[str, float | None]] = []
    pos = 0
    for t in token_weights:
        if t.start > pos:
            out.append((caption[pos:t.start], None))
        out.append((caption[t.start:t.end], round(t.weight / top, 3)))
        pos = t.end
    if pos < len(caption):
        out.append((caption[pos:], None))
    return out


# ------------------------------------------------------------------------------------- controller
class Controller:
    """Holds the shared resources (model, annotation store, link suggesters); callbacks are methods."""

    def __init__(self, pipeline: Any = None, pipeline_factory: Callable[[], Any] | None = None,
                 annotations: AnnotationStore | None = None, export_dir: str | Path | None = None,
                 suggester_factory: Callable[[], Any] | None | str = "auto"):
        if pipeline is None and pipeline_factory is None:
            from mmre_demo.pipeline import Pipeline

            pipeline_factory = lambda: Pipeline.load(weights=os.environ.get("MMRE_WEIGHTS") or None,  # noqa: E731
                                                     device="auto")
        self._pipe = pipeline
        self._loader = PipelineLoader(pipeline_factory) if pipeline is None else None
        self.annotations = annotations or AnnotationStore()
        self.export_dir = Path(export_dir or tempfile.mkdtemp(prefix="mmre_export_"))
        self.export_dir.mkdir(parents=True, exist_ok=True)
        self._suggester_factory = suggester_factory
        self._suggesters: OrderedDict[str, Any] = OrderedDict()
        self._suggesters_lock = threading.Lock()

    # ---- resources
    @property
    def pipe(self) -> Any:
        return self._pipe if self._pipe is not None else self._loader.get()

    def device_text(self) -> str:
        if self._pipe is not None:
            dev = self._pipe.device
        else:
            from mmre_demo.device import resolve_device

            try:
                dev = resolve_device("auto")
            except InputError as exc:
                dev = f"unavailable ({exc})"
        override = os.environ.get("MMRE_DEVICE")
        return f"**Device:** `{dev}`" + (f" (from MMRE_DEVICE={override})" if override else
                                          " (auto: cuda > mps > cpu; set MMRE_DEVICE to override)")

    def suggester(self, session: Session) -> Any | None:
        """This session's LinkSuggester, or None when mmre_demo.kge is missing / broken."""
        factory = self._suggester_factory
        if factory == "auto":
            try:
                from mmre_demo.kge.suggest import LinkSuggester
            except Exception as exc:  # noqa: BLE001 - the app works without link suggestions
                log.warning("link suggestions disabled: %s", exc)
                self._suggester_factory = factory = None
            else:
                self._suggester_factory = factory = LinkSuggester
        if factory is None:
            return None
        with self._suggesters_lock:
            s = self._suggesters.get(session.sid)
            if s is None:
                s = factory()
                self._suggesters[session.sid] = s
                while len(self._suggesters) > MAX_SESSIONS_WITH_SUGGESTER:
                    self._suggesters.popitem(last=False)
            self._suggesters.move_to_end(session.sid)
            return s

    # ---- shared rendering
    def _graph_outputs(self, s: Session, threshold: float) -> dict:
        fig, pos = kg.figure(s.graph, threshold, s.positions, highlight=s.selected_node,
                             suggestions=s.suggestions)
        s.positions = {k: tuple(float(x) for x in v) for k, v in pos.items()}
        nodes = kg.entity_nodes(s.graph)
        return {"graph": fig, "node": {"choices": nodes, "value": s.selected_node if s.selected_node in nodes else None}}

    def _prediction_outputs(self, s: Session, threshold: float, show_none: bool) -> dict:
        pred = s.prediction
        vis = visible_pairs(pred, threshold, show_none)
        choices = [(pair_label(i, p, threshold), str(i + 1)) for i, p in vis]
        if s.pair_index is None or all(i != s.pair_index for i, _ in vis):
            s.pair_index = vis[0][0] if vis else None
        out = {
            "entities_hl": entity_segments(pred.caption, pred.entities),
            "entities_df": entity_rows(pred.entities),
            "relations_df": relation_rows(pred, threshold, show_none),
            "pair": {"choices": choices, "value": None if s.pair_index is None else str(s.pair_index + 1)},
            "concepts": {name: float(p) for name, p in pred.concepts[:8]} if pred.concepts else None,
        }
        out.update(self._evidence_outputs(s))
        return out

    def _evidence_outputs(self, s: Session) -> dict:
        pred = s.prediction
        if pred is None or s.pair_index is None or not (0 <= s.pair_index < len(pred.pairs)):
            return {"evidence_img": None, "words": [(pred.caption, None)] if pred else None,
                    "evidence_md": "Choose a pair to see where the model looked."}
        p = pred.pairs[s.pair_index]
        md = [f"**{p.head.text}** → `{p.label}` → **{p.tail.text}** — probability {p.probability:.2f} (calibrated: "
              f"about {p.probability:.0%} of such predictions are right on MNRE validation)"]
        if p.probability < pred.threshold:
            md.append(f"Below the model's threshold ({pred.threshold:.2f}): the pair reads as no relation "
                      f"(P(None) = {p.none_probability or 0.0:.2f}); `{p.label}` is only its best guess.")
        if p.reverse is not None:
            md.append(f"The other direction ({p.tail.text} → {p.head.text}) read `{p.reverse[0]}` "
                      f"({p.reverse[1]:.2f}); only the more probable direction is shown.")
        if p.type_constrained:
            md.append("The label was changed by the entity-type constraint (the top raw label did not fit the types).")
        img = None
        if s.image is not None and p.image_heatmap is not None:
            img = evidence_panels(s.image, [("pair (head + tail)", p.image_heatmap),
                                            (f"head: {p.head.text}", p.head_heatmap),
                                            (f"tail: {p.tail.text}", p.tail_heatmap)])
            without = p.probability - (p.image_influence or 0.0)
            md.append(f"The image changed this pair's label probability by {p.influence_text()} "
                      f"({without:.2f} from the caption alone, {p.probability:.2f} with the image).")
            md.append("Heatmaps: where the entity words attended in the image (relative to this image). This "
                      "attention was not trained on MNRE images, which are not available here: read it as a "
                      "hint, not as evidence.")
        else:
            md.append("No image was given, so there is no image heatmap: the caption alone was used.")
        return {"evidence_img": img, "words": word_segments(pred.caption, p.token_weights), "evidence_md": "\n\n".join(md)}

    # ---- callbacks ------------------------------------------------------------------------------
    @guarded
    def preview(self, image_path: str | None, session: Session | None = None) -> dict:
        """On upload: show the image as the model will read it, or say why it cannot be read."""
        if not image_path:
            return {"preview": None, "status": _status("info", ["No image: the caption alone will be used."])}
        img = load_image(image_path, name=Path(image_path).name)
        w, h = img.size
        return {"preview": fit(img, 512), "status": _status("ok", [f"Image {Path(image_path).name}: {w} x {h} pixels."])}

    def default_threshold(self) -> float:
        """The model's own threshold (max end-to-end F1 on validation), read without waiting for the load."""
        if self._pipe is not None:
            return float(self._pipe.model.config.threshold)
        from mmre_demo.data.paths import weights_dir
        from mmre_demo.model.config import RelationConfig

        root = Path(os.environ.get("MMRE_WEIGHTS") or weights_dir())
        config = root / "relation" / "config.json" if (root / "relation").is_dir() else root / "config.json"
        try:
            return float(RelationConfig.load(config).threshold)
        except (OSError, ValueError):
            return RelationConfig().threshold

    @guarded
    def run(self, image_path: str | None, caption: str | None, threshold: float | None = None,
            show_none: bool = False, session: Session | None = None, entity_rows_in: Any = None,
            progress: ProgressFn = None) -> dict:
        """Extract: entities (detected, or the table's when `entity_rows_in` is given), relations, evidence,
        and merge the triples into the session graph. `threshold` None = the model's own."""
        t0 = time.perf_counter()
        s = session or Session()
        step = progress or (lambda *a, **k: None)
        step(0.05, desc="Checking the caption")
        caption = check_caption(caption)
        img = None
        if image_path:
            step(0.1, desc="Reading the image")
            img = load_image(image_path, name=Path(str(image_path)).name)
        pipe = self.pipe
        if threshold is None:
            threshold = float(pipe.model.config.threshold)
        if entity_rows_in is not None:
            ents = parse_entity_rows(caption, entity_rows_in)
            detected = False
        else:
            step(0.25, desc="Finding entities")
            ents = pipe.detect_entities(caption)
            detected = True
        n = len(ents)
        step(0.45, desc=f"Classifying {min(n * (n - 1) // 2, MAX_PAIRS // 2)} entity pairs, both directions")
        pred = pipe.predict(img, caption, entities=ents, max_pairs=MAX_PAIRS, top_k=3)
        pred.entities_detected = detected
        step(0.85, desc="Updating the knowledge graph")
        s.prediction, s.pair_index, s.requests = pred, None, s.requests + 1
        s.image = fit(img, 448) if img is not None else None
        s.image_path = str(image_path) if img is not None else None
        if img is not None:
            raw = Path(image_path).read_bytes()
            s.image_id = hashlib.sha1(raw).hexdigest()[:12] + "_" + Path(str(image_path)).name
        else:
            s.image_id = None
        kg.add_prediction(s.graph, pred, s.image_id, pred.image_feature,
                          Path(str(image_path)).name if img is not None else None)
        out = self._prediction_outputs(s, threshold, show_none)
        out.update(self._graph_outputs(s, threshold))
        msgs = list(pred.messages)
        if not ents:
            msgs.append("No entities found in the caption: add them in the entity table (text and type) and "
                        "press “Re-run with these entities”.")
        n_rel = sum(1 for p in pred.pairs if p.is_relation and p.probability >= threshold)
        msgs.append(f"{len(ents)} entities ({'detected' if detected else 'yours'}), {len(pred.pairs)} pairs, "
                    f"{n_rel} relations at ≥ {threshold:.2f}; done in {(time.perf_counter() - t0) * 1000:.0f} ms "
                    f"on {pred.device}.")
        out["status"] = _status("warn" if (pred.messages or not ents) else "ok", msgs)
        out["session"] = s
        step(1.0, desc="Done")
        return out

    def rerun(self, image_path: str | None, caption: str | None, rows: Any, threshold: float | None = None,
              show_none: bool = False, session: Session | None = None, progress: ProgressFn = None) -> dict:
        """Re-run with the user's entity table (add / remove / retype rows)."""
        return self.run(image_path, caption, threshold, show_none, session,
                        entity_rows_in=rows if rows is not None else [], progress=progress)

    @guarded
    def refilter(self, threshold: float, show_none: bool, session: Session | None) -> dict:
        """Threshold slider / None toggle: table, pair list and graph."""
        s = session or Session()
        out: dict = {"session": s}
        if s.prediction is not None:
            out.update(self._prediction_outputs(s, threshold, show_none))
        out.update(self._graph_outputs(s, threshold))
        return out

    @guarded
    def explain(self, pair: str | int | None, session: Session | None) -> dict:
        """Evidence for one pair (its 1-based number, as in the table's # column)."""
        s = session or Session()
        if s.prediction is None:
            raise InputError("Run an extraction first.")
        if pair in (None, ""):
            return {"session": s, **self._evidence_outputs(s)}
        try:
            idx = int(str(pair).lstrip("#").split()[0]) - 1
        except ValueError:
            raise InputError(f"Unknown pair {pair!r}: use the number in the # column.") from None
        if not 0 <= idx < len(s.prediction.pairs):
            raise InputError(f"Pair #{idx + 1} does not exist (there are {len(s.prediction.pairs)} pairs).")
        s.pair_index = idx
        return {"session": s, **self._evidence_outputs(s)}

    @guarded
    def clear_graph(self, threshold: float, session: Session | None) -> dict:
        s = session or Session()
        s.graph, s.positions, s.suggestions, s.selected_node = kg.new_graph(), {}, [], None
        out = {"session": s, "suggestions_df": [], "status": _status("ok", ["The knowledge graph was cleared."])}
        out.update(self._graph_outputs(s, threshold))
        return out

    @guarded
    def export_graph(self, threshold: float, session: Session | None) -> dict:
        s = session or Session()
        folder = self.export_dir / s.sid / time.strftime("%Y%m%d-%H%M%S")
        paths = kg.write_all(s.graph, folder, threshold)
        n = len(kg.triples(s.graph, threshold))
        return {"session": s, "files": paths,
                "status": _status("ok", [f"Exported {n} triples (threshold {threshold:.2f}) as JSON, CSV and GraphML."])}

    # ---- suggested links
    @guarded
    def suggest(self, node: str | None, k: int, threshold: float, session: Session | None) -> dict:
        s = session or Session()
        if not node:
            raise InputError("Choose a node of the graph first.")
        if node not in s.graph:
            raise InputError(f"{node!r} is not in this session's graph.")
        sug = self.suggester(s)
        s.selected_node = node
        if sug is None:
            s.suggestions = []
            msg = "Link suggestions are not available in this installation (mmre_demo.kge is missing)."
        else:
            sug.refresh(s.graph)  # background; returns at once
            rows, msg = sug.suggest_with_message(node, int(k))
            s.suggestions = [r for r in rows if r["head"] in s.graph and r["tail"] in s.graph]
        out = {"session": s, "suggestions_df": [[r["head"], r["relation"], r["tail"], round(float(r["score"]), 3)]
                                                for r in s.suggestions],
               "suggestion": {"choices": [(f"{r['head']} → {short_name(r['relation'])} → {r['tail']} ({r['score']:.2f})",
                                           str(i + 1)) for i, r in enumerate(s.suggestions)],
                              "value": "1" if s.suggestions else None},
               "status": _status("info" if not s.suggestions else "ok",
                                 [msg or f"{len(s.suggestions)} suggested links for {node} (dashed in the graph)."])}
        out.update(self._graph_outputs(s, threshold))
        return out

    @guarded
    def add_suggestion(self, which: str | int | None, threshold: float, session: Session | None) -> dict:
        s = session or Session()
        if not s.suggestions:
            raise InputError("No suggestions to add: choose a node and press “Suggest links”.")
        try:
            idx = int(which) - 1 if which not in (None, "") else 0
        except ValueError:
            raise InputError(f"Unknown suggestion {which!r}.") from None
        if not 0 <= idx < len(s.suggestions):
            raise InputError(f"Suggestion {idx + 1} does not exist.")
        r = s.suggestions.pop(idx)
        kg.add_relation(s.graph, r["head"], r["relation"], r["tail"], float(r["score"]), "suggested")
        out = {"session": s, "status": _status("ok", [f"Added {r['head']} → {r['relation']} → {r['tail']} "
                                                      "as a suggested (dashed) edge."]),
               "suggestions_df": [[x["head"], x["relation"], x["tail"], round(float(x["score"]), 3)] for x in s.suggestions],
               "suggestion": {"choices": [(f"{x['head']} → {short_name(x['relation'])} → {x['tail']}", str(i + 1))
                                          for i, x in enumerate(s.suggestions)],
                              "value": "1" if s.suggestions else None}}
        out.update(self._graph_outputs(s, threshold))
        return out

    @guarded
    def refresh_embedding(self, session: Session | None) -> dict:
        s = session or Session()
        sug = self.suggester(s)
        if sug is None:
            raise InputError("Link suggestions are not available in this installation (mmre_demo.kge is missing).")
        started = sug.refresh(s.graph)
        st = sug.status()
        text = st.get("message") or ("Embedding ready" + (f": {st.get('triples')} triples, {st.get('epochs')} epochs, "
                                                          f"{st.get('seconds')} s." if st.get("triples") else "."))
        return {"session": s, "status": _status("info", [("Started: " if started else "") + text])}

    # ---- annotator mode
    @guarded
    def annotate(self, pair: str | int | None, decision: str, new_label: str | None, annotator: str | None,
                 threshold: float, session: Session | None) -> dict:
        s = session or Session()
        if s.prediction is None:
            raise InputError("Run an extraction first, then judge its triples.")
        if pair in (None, ""):
            raise InputError("Choose a pair to judge.")
        if decision not in DECISIONS:
            raise InputError(f"Choose accept, reject or relabel (got {decision!r}).")
        idx = int(str(pair).lstrip("#").split()[0]) - 1
        if not 0 <= idx < len(s.prediction.pairs):
            raise InputError(f"Pair #{idx + 1} does not exist.")
        p = s.prediction.pairs[idx]
        shown, shown_p = p.shown(threshold)  # the annotator judges what the page showed
        img_id = self.annotations.store_image(s.image_path) if s.image_path else None
        d = self.annotations.add((annotator or "").strip() or "anonymous", s.prediction.caption, img_id,
                                 (p.head.text, p.head.start, p.head.end, p.head.type),
                                 (p.tail.text, p.tail.start, p.tail.end, p.tail.type),
                                 shown, float(shown_p), decision, new_label)
        h, t = kg.add_entity(s.graph, p.head.text, p.head.type), kg.add_entity(s.graph, p.tail.text, p.tail.type)
        if shown != NONE_LABEL and d.relation != shown:
            kg.remove_relation(s.graph, h, shown, t)
        if d.relation != NONE_LABEL:
            kg.add_relation(s.graph, h, d.relation, t, 1.0, "annotated", s.prediction.caption)
        out = {"session": s, "decisions_df": self.annotations.rows(),
               "status": _status("ok", [f"Saved decision {d.id}: {decision} → {p.head.text} {d.relation} {p.tail.text} "
                                        f"({self.annotations.count()} decisions in {self.annotations.path})."])}
        out.update(self._graph_outputs(s, threshold))
        return out

    @guarded
    def export_annotations(self, session: Session | None = None) -> dict:
        path = self.export_dir / f"annotations_{time.strftime('%Y%m%d-%H%M%S')}_{uuid.uuid4().hex[:6]}.txt"
        text = self.annotations.export_mnre(path)
        n = text.count("\n")
        return {"annotations_file": str(path), "decisions_df": self.annotations.rows(),
                "status": _status("ok", [f"Exported {n} decisions as MNRE lines (latest per pair and annotator)."])}

    def decisions(self) -> list[list[Any]]:
        return self.annotations.rows()


RELATION_CHOICES = [r for r in RELATIONS if r != NONE_LABEL]
