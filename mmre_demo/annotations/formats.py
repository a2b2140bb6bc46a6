"""Exchange formats of the annotators' decisions (pure functions; `mmre annotations export/import`).

- **JSONL**: one decision per line, every field of `Decision` (the pair with its types, the prediction
  and its probability, the decision, the relation that holds, who, when, where from).
- **Label Studio** (JSON export of a relation-extraction project, labelstud.io/guide/task_format):
  one task per caption (and image): `data.text` is the caption, `data.image` the image (`data.img_id`
  its MNRE image id); one annotation per annotator, named in the task's `meta` (Label Studio accepts
  only its own users' e-mails in `completed_by`; `label_studio_tasks`): the
  pair's entities as span regions (`type: "labels"`, labelled PER/ORG/LOC/MISC, or UNTYPED) and the
  decision as a relation between them (`type: "relation"`, `direction: "right"` = head -> tail) labelled with the MNRE
  relation name. A rejected pair is a relation labelled **"None"** (the annotator says no relation
  holds; a pair with no relation at all was not decided). The model's prediction on each pair goes in
  the task's `predictions` (model_version "mmre_demo") and its meta, so the import tells accept from relabel.
  Offsets are Python string indices (code points), which Label Studio uses for `Text` since 1.6.
  The ML backend (`ls_backend.py`: the model's pre-annotations) builds its results with the same builders
  (`label_studio_result`, `span_region`, `relation_item`: the same region ids).

The import checks every decision as the app does (`Candidate.decide` and `Candidate.check`) and names
the task and the result id of the first bad one; nothing of a refused file is stored (the caller passes
the tuples to `AnnotationStore.add_many`).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from xml.sax.saxutils import quoteattr

from mmre_demo.annotations.store import Candidate, Decision, DecisionKind
from mmre_demo.data.labels import ENTITY_TYPES, NONE_LABEL, RELATIONS
from mmre_demo.data.schema import Entity, InputError

FORMATS = ("mnre", "jsonl", "label-studio")
LS_LABELS = "label"  # the config's <Labels name=...>: span regions' from_name
LS_TEXT = "text"  # the config's <Text name=...>: span regions' to_name (and the task's data key)
LS_IMAGE = "image"  # the config's <Image name=...> and its data key
LS_MODEL_VERSION = "mmre_demo"
LS_LOCAL_FILES = "/data/local-files/?d=images/"  # Label Studio's URL of images/<img_id> under its local-files root
LS_META = "mmre_demo"  # the task's meta key holding annotator names and the model's predictions
LS_NO_RELATION = NONE_LABEL  # the relation label of a rejected pair
LS_UNTYPED = "UNTYPED"  # the span label of an entity whose type is unknown (the store allows it; it constrains nothing)
SPAN_LABELS: tuple[str, ...] = (*ENTITY_TYPES, LS_UNTYPED)
_DIRECTIONS = ("right", "left")  # head -> tail as drawn, or drawn from the tail; "bi" is refused

Imported = tuple[Candidate, str, str | None, str]  # what AnnotationStore.add_many takes


# ---- JSONL ---------------------------------------------------------------------------------------
def _entity_dict(e: Entity) -> dict[str, Any]:
    return {"text": e.text, "start": e.start, "end": e.end, "type": e.type}


def decision_record(d: Decision) -> dict[str, Any]:
    """One decision as a JSON object (field names as in the store)."""
    c = d.candidate
    return {"id": d.id, "created": d.created, "annotator": d.annotator, "caption": c.caption, "img_id": c.img_id,
            "head": _entity_dict(c.head), "tail": _entity_dict(c.tail), "predicted": c.predicted,
            "probability": c.probability, "decision": d.decision, "relation": d.relation, "source": d.source,
            "undone": d.undone, "item_key": c.key}


def jsonl_text(decisions: Iterable[Decision]) -> str:
    return "".join(json.dumps(decision_record(d), ensure_ascii=False) + "\n" for d in decisions)


# ---- Label Studio: export ------------------------------------------------------------------------
def region_id(e: Entity) -> str:
    """Stable, readable ids: the span and its type (the same span typed twice is two regions)."""
    return f"{e.start}-{e.end}-{e.type or 'untyped'}"


def span_region(e: Entity, score: float | None = None, from_name: str = LS_LABELS,
                to_name: str = LS_TEXT) -> dict[str, Any]:
    """One entity as a span region (`from_name` / `to_name`: the config's <Labels> and <Text> names)."""
    label = e.type if e.type in ENTITY_TYPES else LS_UNTYPED
    region: dict[str, Any] = {"id": region_id(e), "from_name": from_name, "to_name": to_name, "type": "labels",
                              "value": {"start": e.start, "end": e.end, "text": e.text, "labels": [label]}}
    if score is not None:
        region["score"] = score
    return region


def relation_item(head: Entity, tail: Entity, label: str, score: float | None = None) -> dict[str, Any]:
    """A relation head -> tail between the span regions of `head` and `tail`."""
    item: dict[str, Any] = {"from_id": region_id(head), "to_id": region_id(tail), "type": "relation",
                            "direction": "right", "labels": [label]}
    if score is not None:
        item["score"] = score
    return item


LabelledPair = tuple[Entity, Entity, str, float | None]  # head, tail, relation label, its score (None: none)


def label_studio_result(entities: Iterable[Entity], relations: Sequence[LabelledPair],
                        span_score: Callable[[Entity], float | None] = lambda e: None,
                        from_name: str = LS_LABELS, to_name: str = LS_TEXT) -> list[dict[str, Any]]:
    """Span regions (`entities` and the relations' ends, each span once, in caption order) then one relation
    item per (head, tail, label, score): an annotation's or a prediction's `result`."""
    spans: dict[str, Entity] = {}
    for e in [*entities, *(end for head, tail, _, _ in relations for end in (head, tail))]:
        spans.setdefault(region_id(e), e)
    regions = [span_region(e, span_score(e), from_name, to_name)
               for e in sorted(spans.values(), key=lambda e: (e.start, e.end, e.type))]
    return regions + [relation_item(head, tail, label, score) for head, tail, label, score in relations]


def _result(pairs: Sequence[tuple[Candidate, str, float | None]]) -> list[dict[str, Any]]:
    """The decided (or predicted) pairs: their spans, then one relation per pair."""
    return label_studio_result((), [(c.head, c.tail, label, score) for c, label, score in pairs])


def _iso(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def _pair_key(head: Entity, tail: Entity) -> str:
    """A pair as the ids of its span regions: how the task's meta names it."""
    return f"{region_id(head)}>{region_id(tail)}"


def label_studio_tasks(decisions: Sequence[Decision], image_prefix: str = "", annotator_names: bool = True,
                       completed_by: bool = False) -> list[dict[str, Any]]:
    """Label Studio tasks, one per (caption, image), from standing decisions (`AnnotationStore.current()`).

    `image_prefix` goes before each img_id in `data.image` (e.g. "/data/local-files/?d=images/" for
    Label Studio's local storage). Label Studio refuses an annotation whose `completed_by.email` is not
    one of its users' and exports predictions as bare ids, so what the import needs goes in the task's
    `meta` (kept as it is by Label Studio's import and export): `meta.mmre_demo.annotators` names each
    annotation's annotator by its id (Label Studio keeps our id as `import_id`) and
    `meta.mmre_demo.predicted` the model's label and probability per pair. `completed_by` (off by
    default) also writes the name as `completed_by.email`, for annotators who are Label Studio users."""
    tasks: dict[tuple[str, str | None], dict[str, list[Decision]]] = {}
    for d in decisions:
        c = d.candidate
        tasks.setdefault((c.caption, c.img_id), {}).setdefault(d.annotator, []).append(d)
    out = []
    for n, ((caption, img_id), by_annotator) in enumerate(tasks.items(), start=1):
        annotations, predicted, names = [], {}, {}
        for who, ds in by_annotator.items():
            ann: dict[str, Any] = {"id": n * 1000 + len(annotations) + 1,
                                   "result": _result([(d.candidate, d.relation, None) for d in ds]),
                                   "was_cancelled": False, "ground_truth": False,
                                   "created_at": _iso(max(d.created for d in ds)),
                                   "updated_at": _iso(max(d.created for d in ds))}
            if annotator_names:
                names[str(ann["id"])] = who
                if completed_by:
                    ann["completed_by"] = {"email": who}
            annotations.append(ann)
            for d in ds:
                predicted.setdefault(d.candidate.key, (d.candidate, d.candidate.predicted, d.candidate.probability))
        meta: dict[str, Any] = {"predicted": {_pair_key(c.head, c.tail): [label, p]
                                              for c, label, p in predicted.values()}}
        if names:
            meta["annotators"] = names
        data = {LS_TEXT: caption, LS_IMAGE: f"{image_prefix}{img_id}" if img_id else "", "img_id": img_id or ""}
        out.append({"id": n, "data": data, "meta": {LS_META: meta}, "annotations": annotations,
                    "predictions": [{"model_version": LS_MODEL_VERSION, "result": _result(list(predicted.values()))}]})
    return out


def label_studio_config() -> str:
    """The labeling config (Settings -> Labeling Interface -> Code) that reads and writes these tasks."""
    from mmre_demo.graph.figure import TYPE_COLOURS, UNKNOWN_TYPE_COLOUR

    colour = {t: quoteattr(TYPE_COLOURS.get(t, UNKNOWN_TYPE_COLOUR)) for t in SPAN_LABELS}
    labels = "\n".join(f"    <Label value={quoteattr(t)} background={colour[t]}/>" for t in SPAN_LABELS)
    relations = "\n".join(f"    <Relation value={quoteattr(r)}/>" for r in RELATIONS)
    return (f'<View>\n  <Image name="{LS_IMAGE}" value="${LS_IMAGE}" maxWidth="640px"/>\n'
            f"  <!-- relations: head -> tail; \"None\" = the annotator decided that no relation holds -->\n"
            f'  <Relations>\n{relations}\n  </Relations>\n'
            f'  <Labels name="{LS_LABELS}" toName="{LS_TEXT}">\n{labels}\n  </Labels>\n'
            f'  <Text name="{LS_TEXT}" value="${LS_TEXT}"/>\n</View>\n')


# ---- Label Studio: import ------------------------------------------------------------------------
@dataclass(frozen=True)
class Where:
    """Where in a Label Studio file a problem is: the message's prefix."""

    file: str
    task: int  # 1-based position in the file's list
    task_id: Any = None
    result_id: Any = None

    def fail(self, reason: str) -> InputError:
        at = f"{self.file}: task {self.task}" + (f" (id {self.task_id})" if self.task_id is not None else "")
        if self.result_id is not None:
            at += f", result id {self.result_id}"
        return InputError(f"{at}: {reason}")


def parse_json(text: str, name: str) -> list[dict[str, Any]]:
    """The file's tasks (a JSON list, or one task object); not JSON -> `file:line:column: reason`."""
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"{name}:{exc.lineno}:{exc.colno}: not JSON ({exc.msg})") from None
    tasks = [raw] if isinstance(raw, dict) else raw
    if not isinstance(tasks, list):
        raise InputError(f"{name}: expected a JSON list of Label Studio tasks, got {type(raw).__name__}")
    for i, t in enumerate(tasks, start=1):
        if not isinstance(t, dict):
            raise InputError(f"{name}: task {i}: expected an object, got {type(t).__name__}")
    return tasks


def _one_label(item: dict[str, Any], labels: Any, allowed: Sequence[str], what: str, where: Where) -> str:
    if not (isinstance(labels, list) and len(labels) == 1 and isinstance(labels[0], str)):
        raise where.fail(f"a {what} needs exactly one label, got {labels!r}")
    if labels[0] not in allowed:
        raise where.fail(f"unknown {what} label {labels[0]!r} (known: {', '.join(allowed)})")
    return labels[0]


def _span(item: dict[str, Any], text: str, where: Where) -> Entity:
    value = item.get("value")
    if not isinstance(value, dict):
        raise where.fail("a span region needs a 'value' object")
    start, end = value.get("start"), value.get("end")
    if not (isinstance(start, int) and isinstance(end, int) and not isinstance(start, bool)):
        raise where.fail(f"span start and end must be integers, got {start!r} and {end!r}")
    if not 0 <= start < end <= len(text):
        raise where.fail(f"span [{start}, {end}) is outside the text (length {len(text)})")
    if "text" in value and value["text"] != text[start:end]:
        raise where.fail(f"span [{start}, {end}) reads {text[start:end]!r} in the text, not {value['text']!r} "
                         "(offsets counted in another unit, or another text)")
    etype = _one_label(item, value.get("labels"), SPAN_LABELS, "span", where)
    return Entity(text[start:end], start, end, "" if etype == LS_UNTYPED else etype)


def _relation(item: dict[str, Any], spans: dict[str, Entity], where: Where) -> tuple[Entity, Entity, str]:
    ends = []
    for key in ("from_id", "to_id"):
        ref = item.get(key)
        if ref not in spans:
            raise where.fail(f"relation {key} {ref!r} is not a span region of this annotation")
        ends.append(spans[ref])
    direction = item.get("direction", "right")
    if direction not in _DIRECTIONS:
        raise where.fail(f"relation direction {direction!r}: use right (from -> to) or left; "
                         "draw one relation per direction")
    head, tail = ends if direction == "right" else ends[::-1]
    if (head.start, head.end) == (tail.start, tail.end):
        raise where.fail("a relation from a span to itself")
    label = _one_label(item, item.get("labels"), RELATIONS, "relation", where)
    return head, tail, label


def _regions(result: list[Any], text: str, where: Where) -> tuple[dict[str, Entity], list[tuple[Where, dict]]]:
    """The span regions by id (checked) and the relation items with their location."""
    spans: dict[str, Entity] = {}
    relations = []
    for item in result:
        if not isinstance(item, dict):
            raise where.fail(f"a result item must be an object, got {type(item).__name__}")
        kind = item.get("type")
        if kind == "relation":
            rid = f"{item.get('from_id')}->{item.get('to_id')}"  # relations have no id of their own
            relations.append((Where(where.file, where.task, where.task_id, rid), item))
            continue
        at = Where(where.file, where.task, where.task_id, item.get("id"))
        if kind != "labels":
            raise at.fail(f"result type {kind!r}: only span regions ('labels') and relations are read")
        if not isinstance(item.get("id"), (str, int)) or item["id"] in spans:
            raise at.fail("a span region needs an id of its own")
        spans[item["id"]] = _span(item, text, at)
    return spans, relations


def _pairs(result: Any, text: str, where: Where) -> list[tuple[Where, Entity, Entity, str]]:
    if not isinstance(result, list):
        raise where.fail("'result' must be a list")
    spans, relations = _regions(result, text, where)
    out, seen = [], set()
    for at, item in relations:
        head, tail, label = _relation(item, spans, at)
        pair = (head.start, head.end, tail.start, tail.end)
        if pair in seen:
            raise at.fail(f"two relations from {head.text!r} to {tail.text!r}: one decision per pair")
        seen.add(pair)
        out.append((at, head, tail, label))
    return out


def _meta(task: dict[str, Any], where: Where) -> dict[str, Any]:
    """This project's part of the task's meta (`label_studio_tasks`); {} for tasks made elsewhere."""
    meta = task.get("meta")
    ours = meta.get(LS_META) if isinstance(meta, dict) else None
    if ours is None:
        return {}
    if not isinstance(ours, dict):
        raise where.fail(f"meta.{LS_META} must be an object")
    return ours


def _span_of_region_id(rid: str) -> tuple[int, int]:
    start, end, _ = rid.split("-", 2)
    return int(start), int(end)


def _meta_predictions(ours: dict[str, Any], where: Where) -> dict[tuple[int, int, int, int], tuple[str, Any]]:
    """The model's label and probability per pair as `label_studio_tasks` wrote them in the meta."""
    out: dict[tuple[int, int, int, int], tuple[str, Any]] = {}
    predicted = ours.get("predicted") or {}
    if not isinstance(predicted, dict):
        raise where.fail(f"meta.{LS_META}.predicted must map pairs to [label, probability]")
    for key, value in predicted.items():
        try:
            head, tail = key.split(">")
            pair = (*_span_of_region_id(head), *_span_of_region_id(tail))
            label, score = value
        except (ValueError, TypeError):
            raise where.fail(f"meta.{LS_META}.predicted: {key!r}: expected 'start-end-TYPE>start-end-TYPE' "
                             f"mapped to [label, probability]") from None
        if label not in RELATIONS:
            raise where.fail(f"meta.{LS_META}.predicted: {key!r}: unknown relation label {label!r}")
        out[pair] = (label, float(score) if isinstance(score, (int, float)) else None)
    return out


def _predictions(task: dict[str, Any], ours: dict[str, Any], text: str,
                 where: Where) -> dict[tuple[int, int, int, int], tuple[str, Any]]:
    """What the model predicted per pair (spans): the meta's record of it (`ours`; Label Studio's export lists
    predictions by id only), else the task's first prediction (checked like annotations)."""
    out: dict[tuple[int, int, int, int], tuple[str, Any]] = _meta_predictions(ours, where)
    for pred in task.get("predictions") or []:
        if not isinstance(pred, dict):
            continue  # some Label Studio exports list prediction ids only: nothing to read
        spans, relations = _regions(pred.get("result") or [], text, where)
        for at, item in relations:
            head, tail, label = _relation(item, spans, at)
            score = item.get("score")
            out.setdefault((head.start, head.end, tail.start, tail.end),
                           (label, float(score) if isinstance(score, (int, float)) else None))
    return out


def _img_id(data: dict[str, Any]) -> str | None:
    if data.get("img_id"):
        return str(data["img_id"])
    image = data.get(LS_IMAGE)
    if isinstance(image, str) and image:
        return re.split(r"[/=]", image.split("?", 1)[-1] if "?" in image else image)[-1] or None
    return None


def _annotator(ann: dict[str, Any], override: str | None, names: dict[str, Any]) -> str:
    """`--annotator` wins; else the name the meta gives the annotation (by the id we exported it with, which
    Label Studio keeps as `import_id`); else Label Studio's completed_by (an e-mail, or a user id)."""
    if override:
        return override
    for key in ("import_id", "id"):
        name = names.get(str(ann.get(key)))
        if isinstance(name, str) and name:
            return name
    who = ann.get("completed_by")
    if isinstance(who, dict):
        return str(who.get("email") or who.get("username") or who.get("id") or "")
    if isinstance(who, (int, str)) and not isinstance(who, bool):
        return f"label-studio-user-{who}" if isinstance(who, int) else who
    return ""


def _decision(predicted: str, relation: str) -> tuple[str, str | None]:
    if relation == predicted:
        return DecisionKind.ACCEPT.value, None
    if relation == LS_NO_RELATION:
        return DecisionKind.REJECT.value, None
    return DecisionKind.RELABEL.value, relation


def _task_decisions(task: dict[str, Any], where: Where, annotator: str | None) -> list[Imported]:
    data = task.get("data")
    if not isinstance(data, dict) or not isinstance(data.get(LS_TEXT), str) or not data[LS_TEXT].strip():
        raise where.fail(f"the task needs its caption as a non-empty string in data.{LS_TEXT}")
    text, img_id = data[LS_TEXT], _img_id(data)
    annotations = task.get("annotations", [])
    if not isinstance(annotations, list):
        raise where.fail("'annotations' must be a list")
    ours = _meta(task, where)
    predicted = _predictions(task, ours, text, where)
    names = ours.get("annotators") or {}
    if not isinstance(names, dict):
        raise where.fail(f"meta.{LS_META}.annotators must map annotation ids to names")
    out: list[Imported] = []
    for ann in annotations:
        if not isinstance(ann, dict):
            raise where.fail("an annotation must be an object")
        if ann.get("was_cancelled"):
            continue  # skipped in Label Studio: no decision
        who = _annotator(ann, annotator, names)
        for at, head, tail, relation in _pairs(ann.get("result", []), text, where):
            label, score = predicted.get((head.start, head.end, tail.start, tail.end), (NONE_LABEL, None))
            cand = Candidate(text, img_id, head, tail, label, score)
            decision, new_label = _decision(label, relation)
            try:
                cand.decide(decision, new_label)
                cand.check()
            except InputError as exc:
                raise at.fail(str(exc)) from None
            out.append((cand, decision, new_label, who))
    return out


def label_studio_decisions(text: str, name: str, annotator: str | None = None) -> list[Imported]:
    """Every decision of a Label Studio JSON export, checked; the first bad one raises InputError naming
    the task and the result id."""
    out: list[Imported] = []
    for i, task in enumerate(parse_json(text, name), start=1):
        out.extend(_task_decisions(task, Where(name, i, task.get("id")), annotator))
    return out
