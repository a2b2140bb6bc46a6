"""Pure formatting for the page: a prediction, a pair's evidence, suggestions -> table rows, highlighted
segments, dropdown choices, overlay images and text. No state, no model, no gradio."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from PIL import Image

from mmre_demo.data.labels import ENTITY_TYPES, short_name
from mmre_demo.data.schema import Entity
from mmre_demo.explain.overlay import GROUNDED_COLOUR, READ_COLOUR, boxes_panel, evidence_panels, side_by_side
from mmre_demo.graph.figure import TYPE_COLOURS, UNKNOWN_TYPE_COLOUR
from mmre_demo.grounding import Grounding
from mmre_demo.prediction import DEFAULT_TOP_K, PairPrediction, Prediction, TokenWeight
from mmre_demo.ui.outputs import Choices, Output, Update

if TYPE_CHECKING:  # the app runs without mmre_demo.kge (no link suggestions then)
    from mmre_demo.kge.predict import Suggestion
    from mmre_demo.kge.suggest import SuggesterStatus

ENTITY_HEADERS = ["text", "type", "start", "end"]
RELATION_HEADERS = ["#", "head", "relation", "tail", "probability", f"top-{DEFAULT_TOP_K} alternatives",
                    "image influence"]
SUGGESTION_HEADERS = ["rank", "head", "relation", "tail", "embedding quality (held out)"]
DECISION_HEADERS = ["id", "time", "annotator", "head", "predicted", "tail", "decision", "relation", "caption", "img_id"]
ALTERNATIVE_HEADERS = ["key", "relation", "probability"]
# entity highlighting: the graph's colours of the four entity types, "?" for an entity without a type
ENTITY_COLOURS = {**{t: TYPE_COLOURS[t] for t in ENTITY_TYPES}, "?": UNKNOWN_TYPE_COLOUR}
MAX_CONCEPTS_SHOWN = 8
MAX_LINES_LISTED = 12


# ---- entities ----------------------------------------------------------------------------------
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


# ---- relations ---------------------------------------------------------------------------------
def visible_pairs(pred: Prediction, threshold: float, show_none: bool) -> list[tuple[int, PairPrediction]]:
    """(index, pair) of the pairs the table shows: the relations at `threshold`; with `show_none`, every
    pair (those below the threshold read as None)."""
    return [(i, p) for i, p in enumerate(pred.pairs) if show_none or p.is_shown(threshold)]


def pair_label(i: int, p: PairPrediction, threshold: float) -> str:
    label, prob = p.shown(threshold)
    return f"#{i + 1} {p.head.text} → {p.tail.text}: {short_name(label)} ({prob:.2f})"


def pair_choices(visible: list[tuple[int, PairPrediction]], chosen: int | None, threshold: float) -> Choices:
    """The pair dropdown: one option per visible pair, valued by its 1-based number."""
    return Choices([(pair_label(i, p, threshold), str(i + 1)) for i, p in visible],
                   None if chosen is None else str(chosen + 1))


def relation_rows(pred: Prediction, threshold: float, show_none: bool) -> list[list[Any]]:
    rows = []
    for i, p in visible_pairs(pred, threshold, show_none):
        label, prob = p.shown(threshold)
        alts = ", ".join(f"{short_name(lab)} {pr:.2f}" for lab, pr in p.top_k if lab != label)
        rows.append([i + 1, f"{p.head.text} ({p.head.type or '?'})", label, f"{p.tail.text} ({p.tail.type or '?'})",
                     round(prob, 3), alts, p.influence_text()])
    return rows


def concept_scores(pred: Prediction) -> dict[str, float] | None:
    """The visual concepts for gr.Label (None without an image)."""
    return {name: float(p) for name, p in pred.concepts[:MAX_CONCEPTS_SHOWN]} if pred.concepts else None


# ---- evidence ----------------------------------------------------------------------------------
def word_segments(caption: str, token_weights: list[TokenWeight]) -> list[tuple[str, float | None]]:
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


def evidence(pred: Prediction | None, pair_index: int | None, image: Image.Image | None) -> Update:
    """The evidence outputs for one pair: heatmap panels, the explanation in words, word weights."""
    if pred is None or pair_index is None or not (0 <= pair_index < len(pred.pairs)):
        return {Output.EVIDENCE_IMG: None, Output.WORDS: [(pred.caption, None)] if pred else None,
                Output.EVIDENCE_MD: "Choose a pair to see where the model looked."}
    p = pred.pairs[pair_index]
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
    grounded = [g for g in (p.head_grounding, p.tail_grounding) if g is not None]
    if image is not None and grounded and pred.image_size:
        md.append("**Read in the image** (grounded evidence: the text recognised in the image, a box you can "
                  "check): " + "; ".join(grounding_text(g) for g in grounded) + ".")
    if image is not None and p.image_heatmap is not None:
        img = evidence_panels(image, [("attention: pair", p.image_heatmap),
                                      (f"attention: {p.head.text}", p.head_heatmap),
                                      (f"attention: {p.tail.text}", p.tail_heatmap)])
        if grounded and pred.image_size:
            read = boxes_panel(image, [(g.box, g.entity.text, GROUNDED_COLOUR) for g in grounded], pred.image_size,
                               title="read in the image")
            img = side_by_side(read, img)
        without = p.probability - (p.image_influence or 0.0)
        md.append(f"The image changed this pair's label probability by {p.influence_text()} "
                  f"({without:.2f} from the caption alone, {p.probability:.2f} with the image).")
        if pred.image_weight == 0:
            md.append("The model's image gate is closed: its dev data held too few images to show that the image "
                      "helps, so the caption decides (docs/evaluation.md, \"The image gate\").")
        md.append("Attention heatmaps: where the entity words attended in the image (relative to this image). "
                  "The shipped model learnt this attention from few images (49 training lines with an image): "
                  "read it as a hint, not as evidence.")
    else:
        md.append("No image was given, so there is no image heatmap: the caption alone was used.")
    return {Output.EVIDENCE_IMG: img, Output.WORDS: word_segments(pred.caption, p.token_weights),
            Output.EVIDENCE_MD: "\n\n".join(md)}


def grounding_text(g: Grounding) -> str:
    """One grounded entity in words: what was read where, and how sure the reading is."""
    where = f"“{g.matched_text}”" + (f" in “{g.line_text}”" if g.line_text != g.matched_text else "")
    return f"**{g.entity.text}** read as {where} ({g.how}, OCR confidence {g.ocr_confidence:.2f})"


# ---- text read in the image --------------------------------------------------------------------
def image_text_view(pred: Prediction | None, image: Image.Image | None) -> Update:
    """The text read in the image: the image with every line boxed (caption entities it grounds in the
    graph's "shows text of" colour), the lines and groundings in words, and the names found only there."""
    if pred is None or not pred.has_image:
        return {Output.IMAGE_TEXT_IMG: None, Output.IMAGE_TEXT_MD: "No image: nothing to read.",
                Output.ALSO_IN_IMAGE: Choices([], None)}
    it = pred.image_text
    if it is None:
        return {Output.IMAGE_TEXT_IMG: None, Output.IMAGE_TEXT_MD: "Reading the text in the image is switched off.",
                Output.ALSO_IN_IMAGE: Choices([], None)}
    md = [f"**{len(it.lines)} line{'s' if len(it.lines) != 1 else ''} read** in {it.seconds * 1000:.0f} ms"
          + (f" ({it.note})" if it.note else "") + (":" if it.lines else ".")]
    md += [f"- “{ln.text}” ({ln.confidence:.2f})" for ln in it.lines[:MAX_LINES_LISTED]]
    if len(it.lines) > MAX_LINES_LISTED:
        md.append(f"- … and {len(it.lines) - MAX_LINES_LISTED} more (all boxed on the image)")
    if pred.groundings:
        md.append("\n**Caption entities read in the image** (→ “shows text of” edges in the graph): "
                  + "; ".join(grounding_text(g) for g in pred.groundings) + ".")
    if pred.also_in_image:
        md.append("\n**Also in the image** (names read there that the caption does not mention): "
                  + ", ".join(f"{e.text} ({e.type})" for e in pred.also_in_image)
                  + ". Tick them below to add them to the entities.")
    img = None
    if image is not None and it.lines and pred.image_size:
        grounded = {g.box for g in pred.groundings}
        boxes = [(ln.box, "", READ_COLOUR) for ln in it.lines]
        boxes += [(g.box, g.entity.text, GROUNDED_COLOUR) for g in pred.groundings]
        boxes += [(e.box, e.text, READ_COLOUR) for e in pred.also_in_image
                  if e.box not in grounded]
        img = boxes_panel(image, boxes, pred.image_size, longest=448)
    names = [f"{e.text} ({e.type})" for e in pred.also_in_image]
    return {Output.IMAGE_TEXT_IMG: img, Output.IMAGE_TEXT_MD: "\n".join(md),
            Output.ALSO_IN_IMAGE: Choices([(n, str(i)) for i, n in enumerate(names)], None)}


# ---- suggested links ---------------------------------------------------------------------------
def suggestion_rows(suggestions: list[Suggestion], quality: str = "") -> list[list[Any]]:
    """Rank, triple and the embedding's held-out quality: the KGE score orders the candidates but is no
    probability (a model of a few dozen triples gives 0.99 to nonsense), so it is not shown."""
    return [[_rank(r, i), r.head, r.relation, r.tail, quality] for i, r in enumerate(suggestions)]


def _rank(r: Suggestion, i: int) -> int:
    return r.rank if r.rank is not None else i + 1


def suggestion_choices(suggestions: list[Suggestion], with_score: bool = True) -> Choices:
    """The 'suggestion to add' dropdown, valued by 1-based number; the first one chosen."""
    def label(r: Suggestion, i: int) -> str:
        text = f"{r.head} → {short_name(r.relation)} → {r.tail}"
        return f"#{_rank(r, i)} {text}" if with_score else text

    return Choices([(label(r, i), str(i + 1)) for i, r in enumerate(suggestions)], "1" if suggestions else None)


def training_text(status: SuggesterStatus) -> str:
    """The suggester's progress while it trains, in words."""
    elapsed, budget = status.elapsed_s or 0.0, status.budget_s
    of = f" of at most {budget:.0f} s" if budget else ""
    relations = status.relations if status.relations is not None else "?"
    return (f"Embedding the graph ({relations} relations): {elapsed:.0f} s{of}… "
            "the suggestions appear here when it is done.")


# ---- provenance --------------------------------------------------------------------------------
def thumbnail_uri(image: Image.Image, longest: int = 160) -> str:
    """A small JPEG of the image as a data URI (kept per post in the tab, shown in provenance)."""
    import base64
    import io

    small = image.convert("RGB")
    small.thumbnail((longest, longest))
    buf = io.BytesIO()
    small.save(buf, format="JPEG", quality=80)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _highlighted(caption: str, spans: tuple[tuple[int, int, str], ...], names: tuple[str, ...]) -> str:
    """The caption as HTML with its entities marked in their type colours (the traced ones bold)."""
    from html import escape

    if not spans:  # no recorded spans: mark the traced names where they occur
        found = []
        for name in names:
            i = caption.find(name) if name else -1
            if i >= 0:
                found.append((i, i + len(name), ""))
        spans = tuple(sorted(found))
    out, pos = [], 0
    for a, b, t in sorted(spans):
        if a < pos or b > len(caption):
            continue
        text = caption[a:b]
        colour = TYPE_COLOURS.get(t, UNKNOWN_TYPE_COLOUR)
        weight = "700" if text in names else "400"
        out.append(escape(caption[pos:a]))
        out.append(f'<mark style="background:{colour}33;border-bottom:2px solid {colour};font-weight:{weight}">'
                   f"{escape(text)}<sup>{escape(t)}</sup></mark>")
        pos = b
    out.append(escape(caption[pos:]))
    return "".join(out)


def provenance_html(prov: Any, thumbnails: dict[str, str] | None = None, decisions: list[str] | None = None) -> str:
    """Where a node or an edge came from: each post's caption with the entities highlighted, its image
    thumbnail when the tab has one (else the image's name), the probability there, and any
    annotator decisions on the pair."""
    from html import escape

    if prov is None:
        return "<p>Pick an edge or search a node to see the posts it came from.</p>"
    thumbnails = thumbnails or {}
    head = f"<h4 style='margin:0.2em 0'>{escape(prov.title)}</h4>"
    facts = []
    if prov.kind == "edge":
        what = ("an annotator's decision" if prov.source == "annotated" else
                "a suggested link (knowledge-graph embedding, not read in any post)" if prov.source == "suggested"
                else "read in the image (OCR)" if prov.source == "read in the image" else "predicted by the model")
        facts.append(f"source: {what}")
        if prov.source != "suggested" and prov.score is not None:
            facts.append(f"probability {prov.score:.2f} (the highest of its posts)")
    else:
        facts.append(f"{prov.count} edge{'s' if prov.count != 1 else ''}")
    facts.append(f"{prov.n_posts} post{'s' if prov.n_posts != 1 else ''}"
                 + (f", the first {len(prov.evidence)} listed" if prov.n_posts > len(prov.evidence) else ""))
    parts = [head, f"<p style='margin:0.2em 0;color:#555'>{escape(' · '.join(facts))}</p>"]
    for d in decisions or []:
        parts.append(f"<p style='margin:0.2em 0'>🖊️ {escape(d)}</p>")
    rows = []
    for ev in prov.evidence:
        thumb = thumbnails.get(ev.post_id or "")
        img = (f"<img src='{thumb}' alt='image of the post' style='max-width:120px;max-height:120px;"
               "border-radius:4px'>" if thumb else
               f"<span style='color:#777'>image: {escape(ev.image)}</span>" if ev.image else
               "<span style='color:#777'>no image</span>")
        meta = " · ".join(x for x in (f"post {escape(ev.post_id)}" if ev.post_id else "",
                                       f"probability {ev.probability:.2f}" if ev.probability is not None else "")
                          if x)
        rows.append("<div class='prov-post' style='display:flex;gap:0.8em;align-items:flex-start;padding:0.4em 0;"
                    "border-top:1px solid #e5e7eb;flex-wrap:wrap'>"
                    f"<div style='flex:0 0 auto'>{img}</div><div style='flex:1 1 220px;min-width:0;"
                    f"overflow-wrap:anywhere'>{_highlighted(ev.caption, ev.spans, prov.names)}"
                    f"<br><small style='color:#666'>{meta}</small></div></div>")
    if not rows:
        rows.append("<p style='color:#777'>No post recorded for it (a suggested link, or an export without "
                    "captions).</p>")
    return "<div id='provenance-body'>" + "".join(parts + rows) + "</div>"


# ---- device --------------------------------------------------------------------------------------
def device_markdown(device: str, override: str | None, engine: str | None = None) -> str:
    return (f"**Device:** `{device}`" + (f" (from MMRE_DEVICE={override})" if override else
                                         " (auto: cuda > mps > cpu; set MMRE_DEVICE to override)")
            + (f" · **engine:** `{engine}`" if engine else ""))


# ---- annotating and reviewing --------------------------------------------------------------------
def relation_choices(labels: list[str]) -> Choices:
    """The relations a relabel may choose, numbered for the keyboard (1-9), none chosen: a relabel is
    always an explicit choice."""
    return Choices([(f"{i}. {lab}" if i <= 9 else lab, lab) for i, lab in enumerate(labels, start=1)], None)


def review_segments(item: Any) -> list[tuple[str, str | None]]:
    """The reviewed post's caption: the pair's head and tail marked, its other entities by type."""
    marked = []
    for e in item.entities:
        if (e.start, e.end) == (item.head.start, item.head.end):
            marked.append(Entity(e.text, e.start, e.end, f"head · {e.type or '?'}"))
        elif (e.start, e.end) == (item.tail.start, item.tail.end):
            marked.append(Entity(e.text, e.start, e.end, f"tail · {e.type or '?'}"))
        else:
            marked.append(e)
    return entity_segments(item.caption, marked)


def review_markdown(item: Any, position: int) -> str:
    """What is asked about the item, in words: the relation proposed, how sure the model is, why it is asked."""
    verdict = "shown as a relation" if item.shown else f"below the threshold {item.threshold:.2f}, not shown"
    lines = [f"**Item {position + 1}** — {item.reason.value}",
             f"### {item.head.text} ({item.head.type or '?'}) → `{item.label}` → {item.tail.text} "
             f"({item.tail.type or '?'})",
             f"Probability {item.probability:.2f} ({verdict}).",
             "**A** accept (the relation holds) · **R** reject (no relation) · **1–9** relabel to that relation · "
             "**S** skip · **U** undo your last decision."]
    if not item.relabel_choices():
        lines.insert(3, f"No other relation fits a {item.head.type or '?'} → {item.tail.type or '?'} pair: "
                        "accept or reject it.")
    if item.reverse is not None:
        lines.insert(3, f"The other direction ({item.tail.text} → {item.head.text}) read `{item.reverse[0]}` "
                        f"({item.reverse[1]:.2f}).")
    return "\n\n".join(lines)


def alternative_rows(item: Any, labels: list[str]) -> list[list[Any]]:
    """The model's alternatives for the pair, with the key that relabels to each (when it fits the types)."""
    keys = {lab: str(i) for i, lab in enumerate(labels[:9], start=1)}
    return [[keys.get(lab, "A" if lab == item.label else ""), lab, round(pr, 3)] for lab, pr in item.top_k]


def image_text_lines(lines: tuple[str, ...], has_image: bool = True) -> str:
    if not has_image:
        return "This post has no image."
    if not lines:
        return "No text was read in the image."
    shown = ", ".join(f"“{ln}”" for ln in lines[:MAX_LINES_LISTED])
    more = f" and {len(lines) - MAX_LINES_LISTED} more" if len(lines) > MAX_LINES_LISTED else ""
    return f"**Text read in the image:** {shown}{more}."
