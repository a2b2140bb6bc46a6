"""Plain data types shared by the pipeline, the app, the graph and the readers."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from mmre_demo.data.text import is_invisible


class InputError(ValueError):
    """Bad user input (image, caption, entity spans, data line); the message says what was wrong."""


MAX_CAPTION_CHARS = 2000
FLOAT_DIGITS = 6  # decimals kept in every file written (exports, extract records, `to_dict`)

Span = tuple[int, int]  # [start, end) character offsets of a caption
Box = tuple[int, int, int, int]  # (x0, y0, x1, y1) original-image pixels


def plain_value(value: Any) -> Any:
    """The JSON / GraphML form of a value a prediction or a graph may hold: numpy arrays and scalars as lists
    and numbers, floats rounded to `FLOAT_DIGITS`; anything else unchanged (the one rule for every file)."""
    if hasattr(value, "tolist"):
        value = value.tolist()
    if isinstance(value, float):
        return round(value, FLOAT_DIGITS)
    return value


@dataclass(frozen=True)
class Entity:
    """An entity mention: a character span `[start, end)` of the caption."""

    text: str
    start: int
    end: int
    type: str = ""  # PER / ORG / LOC / MISC, or "" when unknown (MNRE lines carry no types)
    confidence: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Entity:
        try:
            start, end = int(d["start"]), int(d["end"])
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"entity {d!r} needs integer 'start' and 'end'") from exc
        etype = str(d.get("type") or "").upper()
        conf = d.get("confidence")
        return cls(str(d.get("text", "")), start, end, etype, None if conf is None else float(conf))


def check_caption(caption: str | None) -> str:
    """Refuse empty, invisible-only or over-long captions with a clear message."""
    if caption is None or not caption.strip():
        raise InputError("The caption is empty: type or paste the text that goes with the image.")
    if all(ch.isspace() or is_invisible(ch) for ch in caption):
        raise InputError("The caption has no visible text (only invisible characters such as zero-width spaces "
                         "or direction marks): type or paste the text that goes with the image.")
    if len(caption) > MAX_CAPTION_CHARS:
        raise InputError(
            f"The caption has {len(caption)} characters; the limit is {MAX_CAPTION_CHARS} "
            "(the model reads at most 128 word pieces). Shorten it to the sentence that matters."
        )
    return caption


def check_entities(caption: str, entities: list[Entity]) -> list[Entity]:
    """Validate spans against the caption: in range, non-empty, not overlapping.

    An entity whose `text` is empty takes the caption's text of its span; a `text` that
    disagrees with the span is refused (a sign of offsets computed on another string).
    """
    checked: list[Entity] = []
    for e in entities:
        if not (0 <= e.start < e.end <= len(caption)):
            raise InputError(
                f"Entity {e.text!r} has span [{e.start}, {e.end}) outside the caption "
                f"(length {len(caption)})."
            )
        span_text = caption[e.start : e.end]
        if e.text and e.text != span_text:
            raise InputError(
                f"Entity text {e.text!r} does not match the caption at [{e.start}, {e.end}) "
                f"which reads {span_text!r}."
            )
        checked.append(Entity(span_text, e.start, e.end, e.type, e.confidence))
    ordered = sorted(checked, key=lambda x: (x.start, x.end))
    for a, b in zip(ordered, ordered[1:]):
        if b.start < a.end:
            raise InputError(
                f"Entities {a.text!r} [{a.start}, {a.end}) and {b.text!r} [{b.start}, {b.end}) "
                "overlap; remove or shorten one of them."
            )
    return checked
