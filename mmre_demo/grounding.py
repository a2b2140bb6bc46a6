"""Grounding: a caption entity whose name is *read in the image* gets that text's box as evidence.

Pure Python (no torch): `ground_entities` matches entity names against the lines from
`mmre_demo.encoders.ocr`; `also_in_image` lists the names an NER tagger finds in the image text
that the caption does not mention.

Matching rule (tests/test_grounding.py holds the cases behind each part):

* Names are compared with `normalise_name` (case, `@`, `#`, punctuation and spaces ignored), so
  "SPOTIFY", "@Spotify" and "#spotify" all equal "Spotify"; a possessive "'s" on a line word is
  dropped ("PAIGE'S" reads as "PAIGE").
* A line is split into *pieces* at spaces and punctuation, and at camel-case joins of real words
  ("SentosaIsland" -> "Sentosa" "Island"). An entity matches a contiguous run of pieces, so it can
  sit inside a longer line ("Standard Chartered" in "Standard Chartered Bank") and OCR's missing or
  extra spaces do not matter ("STANDARDCHARTERED", "Spoti fy"). Two neighbouring lines (a shirt's
  "standard" above "Chartered") are also tried as one phrase.
* OCR slips are allowed as character edits (Levenshtein) on the normalised strings: none for names
  of 3-4 characters, 1 for 5-9, 2 for 10-14, 3 from 15 on (about one slip in five characters).
  "STOCKEXICM" vs "Stock Exchange" is 6 edits (budget 2): no match.
* Names shorter than 3 characters never match (a jersey's "UT" is not Utah).
* OCR often drops the spaces of capitalised text ("PRESIDENTDONALDTRUMP"): a name of 5+
  characters may also match *exactly* inside one long piece (13+ characters, at least 4 more than
  the name: few single English words are that long); such matches say so
  (`how="inside merged text"`) and score lower.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal, Protocol

from mmre_demo.data.names import normalise_name
from mmre_demo.data.schema import Box, Entity
from mmre_demo.encoders.ocr import ImageText, TextLine

MIN_NAME_CHARS = 3
MERGED_MIN_NAME = 5
MERGED_MIN_PIECE = 13  # shorter pieces are too often real words ("PARISHIONERS" is not Paris)
MERGED_MIN_EXTRA = 4
MERGED_SCORE_FACTOR = 0.9
ALSO_MIN_CONFIDENCE = 0.8  # tagger confidence for a name "also in the image" (see also_in_image)
NEIGHBOUR_GAP = 0.8  # two lines are neighbours when their boxes, grown by this x text height, touch

_PIECE_RE = re.compile(r"[^\W_]+(?:['’][sS](?![^\W_]))?")  # alnum runs; a trailing possessive 's kept to drop it
_CAMEL_RE = re.compile(r"(?<=[a-z]{3})(?=[A-Z][a-z]{2})")


def edit_budget(n: int) -> int:
    """Character edits allowed for a normalised name of length n (0 for 3-4, then one per five)."""
    return 0 if n < 5 else min(3, n // 5)


def levenshtein(a: str, b: str, limit: int | None = None) -> int:
    """Edit distance; stops early (returns limit + 1) once it must exceed `limit`."""
    if abs(len(a) - len(b)) > (limit if limit is not None else len(a) + len(b)):
        return (limit or 0) + 1
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        if limit is not None and min(cur) > limit:
            return limit + 1
        prev = cur
    return prev[-1]


# ---- line text -> pieces with their place on the image ---------------------------------------
@dataclass(frozen=True)
class _Piece:
    norm: str
    line: int  # index into the phrase's lines
    start: int  # character span in that line's text
    end: int


def _pieces(text: str, line: int) -> list[_Piece]:
    """Alphanumeric pieces of an OCR line, split at camel-case joins, possessive 's dropped."""
    out = []
    for m in _PIECE_RE.finditer(text):
        word, offset = m.group(), m.start()
        if re.search(r"['’][sS]$", word):
            word = word[:-2]
        cuts = [0] + [c.start() for c in _CAMEL_RE.finditer(word)] + [len(word)]
        for a, b in zip(cuts, cuts[1:]):
            norm = normalise_name(word[a:b])
            if norm:
                out.append(_Piece(norm, line, offset + a, offset + b))
    return out


def _sub_polygon(line: TextLine, start: int, end: int) -> tuple[tuple[float, float], ...]:
    """The part of a line's polygon covering characters [start, end) (characters assumed even width)."""
    n = max(1, len(line.text))
    a, b = start / n, end / n
    (x0, y0), (x1, y1), (x2, y2), (x3, y3) = line.polygon

    def lerp(p: tuple[float, float], q: tuple[float, float], t: float) -> tuple[float, float]:
        return p[0] + (q[0] - p[0]) * t, p[1] + (q[1] - p[1]) * t

    top, bottom = ((x0, y0), (x1, y1)), ((x3, y3), (x2, y2))
    return lerp(*top, a), lerp(*top, b), lerp(*bottom, b), lerp(*bottom, a)


def _box_of(points: Iterable[tuple[float, float]]) -> Box:
    pts = list(points)
    xs, ys = [p[0] for p in pts], [p[1] for p in pts]
    return int(min(xs)), int(min(ys)), round(max(xs)), round(max(ys))


def _height(line: TextLine) -> float:
    (x0, y0), (x1, y1), (x2, y2), (x3, y3) = line.polygon
    return max(1.0, (((x3 - x0) ** 2 + (y3 - y0) ** 2) ** 0.5 + ((x2 - x1) ** 2 + (y2 - y1) ** 2) ** 0.5) / 2)


def _neighbours(a: TextLine, b: TextLine) -> bool:
    """Lines of similar text height whose boxes, grown by NEIGHBOUR_GAP x height, overlap."""
    ha, hb = _height(a), _height(b)
    if max(ha, hb) > 2 * min(ha, hb):
        return False
    g = NEIGHBOUR_GAP * min(ha, hb)
    return not (a.box[2] + g < b.box[0] or b.box[2] + g < a.box[0]
                or a.box[3] + g < b.box[1] or b.box[3] + g < a.box[1])


def _phrases(lines: Sequence[TextLine]) -> list[tuple[TextLine, ...]]:
    """Each line alone, then each pair of neighbouring lines in reading order."""
    singles = [(line,) for line in lines]
    pairs = [(a, b) for i, a in enumerate(lines) for b in lines[i + 1:] if _neighbours(a, b)]
    return singles + pairs


# ---- matching ----------------------------------------------------------------------------------
# how the name was read: exactly, with a few edits, or inside a run of merged text (scored lower)
GroundingHow = Literal["exact", "fuzzy", "inside merged text"]


@dataclass(frozen=True)
class Grounding:
    """A caption entity found in the text read in the image: the box is *read-in-the-image* evidence."""

    entity: Entity
    line_text: str  # the OCR line (or two neighbouring lines, joined by " / ") it was read in
    matched_text: str  # the part of that text that matched the name
    box: Box  # (x0, y0, x1, y1) original-image pixels of the matched part
    ocr_confidence: float  # recognition confidence of the line (lowest of two lines)
    score: float  # 1 - edits / name length; x 0.9 for a match inside merged text
    how: GroundingHow

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["entity"] = self.entity.to_dict()
        d["box"] = list(self.box)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Grounding:
        """Inverse of `to_dict` (a grounding read back from `posts.jsonl`)."""
        return cls(**{**d, "entity": Entity.from_dict(d["entity"]), "box": tuple(d["box"])})


@dataclass(frozen=True)
class _Match:
    score: float
    how: GroundingHow
    phrase: tuple[TextLine, ...]
    spans: tuple[tuple[int, int, int], ...]  # (line index, char start, char end) per line touched


def _run_spans(run: Sequence[_Piece], start: int | None = None,
               end: int | None = None) -> tuple[tuple[int, int, int], ...]:
    """Character spans per line covered by a run of pieces (optionally a slice inside one piece)."""
    by_line: dict[int, list[int]] = {}
    for p in run:
        by_line.setdefault(p.line, []).extend([p.start, p.end])
    if start is not None and end is not None and len(run) == 1:  # inside merged text: scale the slice
        p = run[0]
        width = p.end - p.start
        a = p.start + round(width * start / len(p.norm))
        b = p.start + round(width * end / len(p.norm))
        return ((p.line, a, b),)
    return tuple((ln, min(v), max(v)) for ln, v in sorted(by_line.items()))


def _best_in_phrase(name: str, phrase: tuple[TextLine, ...]) -> _Match | None:
    pieces = [p for i, line in enumerate(phrase) for p in _pieces(line.text, i)]
    budget = edit_budget(len(name))
    best: _Match | None = None
    for i in range(len(pieces)):
        key = ""
        for j in range(i, len(pieces)):
            key += pieces[j].norm
            if len(key) > len(name) + budget:
                break
            if len(key) < len(name) - budget:
                continue
            d = levenshtein(name, key, budget)
            if d <= budget:
                m = _Match(1.0 - d / len(name), "exact" if d == 0 else "fuzzy", phrase, _run_spans(pieces[i:j + 1]))
                if best is None or m.score > best.score:
                    best = m
    if best is None and len(name) >= MERGED_MIN_NAME:
        for p in pieces:
            if len(p.norm) >= max(MERGED_MIN_PIECE, len(name) + MERGED_MIN_EXTRA) and name in p.norm:
                k = p.norm.index(name)
                return _Match(MERGED_SCORE_FACTOR, "inside merged text", phrase, _run_spans([p], k, k + len(name)))
    return best


def _grounding(entity: Entity, m: _Match) -> Grounding:
    polys = [pt for ln, a, b in m.spans for pt in _sub_polygon(m.phrase[ln], a, b)]
    matched = " ".join(m.phrase[ln].text[a:b] for ln, a, b in m.spans)
    return Grounding(
        entity=entity,
        line_text=" / ".join(line.text for line in m.phrase),
        matched_text=matched,
        box=_box_of(polys),
        ocr_confidence=min(line.confidence for line in m.phrase),
        score=round(m.score, 4),
        how=m.how,
    )


def _match_name(name: str, lines: Sequence[TextLine]) -> _Match | None:
    """Best match of one raw name in the lines (single lines preferred over neighbour pairs on ties)."""
    norm = normalise_name(name)
    if len(norm) < MIN_NAME_CHARS:
        return None
    best: _Match | None = None
    for phrase in _phrases(lines):
        m = _best_in_phrase(norm, phrase)
        if m is None:
            continue
        key = (m.score, -len(m.spans), min(line.confidence for line in phrase))
        if best is None or key > (best.score, -len(best.spans), min(line.confidence for line in best.phrase)):
            best = m
    return best


def ground_entities(entities: Sequence[Entity], image_text: ImageText | None) -> list[Grounding]:
    """One Grounding per entity whose name is read in the image (best match), in entity order."""
    if image_text is None or not image_text.lines:
        return []
    out = []
    for ent in entities:
        m = _match_name(ent.text, image_text.lines)
        if m is not None:
            out.append(_grounding(ent, m))
    return out


# ---- names only in the image -------------------------------------------------------------------
class Tagger(Protocol):
    """What the pipeline and the grounding need of an entity tagger (`NerTagger`, a test's fake)."""

    def tag_batch(self, captions: Sequence[str]) -> list[list[Entity]]:
        """The entities of each caption, offsets into it."""
        ...

    def tag(self, caption: str) -> list[Entity]:
        """The entities of one caption."""
        ...


@dataclass(frozen=True)
class ImageEntity:
    """A name the tagger found in the image text and the caption does not mention."""

    text: str
    type: str
    confidence: float | None  # the tagger's
    line: TextLine  # where it was read; `start`/`end` index `line.text`
    start: int
    end: int
    box: Box

    def to_dict(self) -> dict[str, Any]:
        return {"text": self.text, "type": self.type, "confidence": self.confidence, "line": self.line.to_dict(),
                "start": self.start, "end": self.end, "box": list(self.box)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ImageEntity:
        """Inverse of `to_dict`."""
        return cls(d["text"], d["type"], d["confidence"], TextLine.from_dict(d["line"]), d["start"], d["end"],
                   tuple(d["box"]))


def _taggable(text: str) -> bool:
    return sum(ch.isalpha() for ch in text) >= 2


def _mentions(text: str, name: str) -> bool:
    """Whether `name` is read in `text` by the grounding rule (used as a one-line phrase)."""
    norm = normalise_name(name)
    if len(norm) < MIN_NAME_CHARS or not text.strip():
        return False
    probe = TextLine(text, (0, 0, 1, 1), ((0, 0), (1, 0), (1, 1), (0, 1)), 1.0)
    return _best_in_phrase(norm, (probe,)) is not None


def _in_caption(caption: str, name: str) -> bool:
    """Generous test for "the caption already names it": the grounding rule, or (4+ characters) the
    normalised name inside the normalised caption, so "PAIGE" is in ".@RealPaigeWWE has ...".
    A wrong "yes" only hides a suggestion; a wrong "no" would offer a name the caption has."""
    norm = normalise_name(name)
    return _mentions(caption, name) or (len(norm) >= 4 and norm in normalise_name(caption))


def also_in_image(tagger: Tagger, image_text: ImageText | None, caption_entities: Sequence[Entity],
                  caption: str | None = None, min_confidence: float = ALSO_MIN_CONFIDENCE) -> list[ImageEntity]:
    """Names the tagger finds in the lines read in the image that the caption does not mention.

    "Mentioned" uses the grounding rule in both directions: the image name matches a caption entity,
    or a caption entity matches inside the image name ("Standard Chartered" in "Standard Chartered
    Bank"); with `caption`, also a name found anywhere in the caption text (`_in_caption`), so a
    name the caption's tagger missed is not offered again. Tagger confidence below
    `min_confidence` is dropped (OCR fragments such as "STOCKEXCM" or "PEOPIE" get 0.5-0.76 on the
    sample images, real names 0.83-0.99). One entry per normalised name, in reading order.
    """
    if image_text is None or not image_text.lines:
        return []
    lines = [line for line in image_text.lines if _taggable(line.text)]
    if not lines:
        return []
    tagged = tagger.tag_batch([line.text for line in lines])
    seen: set[str] = set()
    out: list[ImageEntity] = []
    for line, ents in zip(lines, tagged):
        for e in ents:
            norm = normalise_name(e.text)
            if len(norm) < MIN_NAME_CHARS or norm in seen:
                continue
            if e.confidence is not None and e.confidence < min_confidence:
                continue
            seen.add(norm)
            if caption is not None and _in_caption(caption, e.text):
                continue
            if any(_mentions(c.text, e.text) or _mentions(e.text, c.text) for c in caption_entities):
                continue
            out.append(ImageEntity(e.text, e.type, e.confidence, line, e.start, e.end,
                                   _box_of(_sub_polygon(line, e.start, e.end))))
    return out
