"""A caption as typed and as the models read it: Unicode NFC, without invisible characters.

Pasted text carries characters nobody sees: zero-width spaces inside names ("Tr\u200bump"), bidi marks,
soft hyphens, control characters. The tagger then splits the name and the relation model relates the
fragments. `clean_caption` removes them and composes characters (NFC), and keeps, for every character it
keeps, the span of the typed caption it came from, so entities found in the clean text get offsets into
the caption the user typed (`CleanCaption.to_typed`) and entities given on the typed caption are moved
onto the clean one (`CleanCaption.to_clean`).
"""

from __future__ import annotations

import unicodedata
from collections import Counter
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mmre_demo.data.schema import Entity

KEPT_CONTROLS = frozenset("\t\n\r")  # whitespace the tokenizers treat as spaces
# Hangul vowel and final jamo have combining class 0 but compose with the syllable before them (NFC)
_HANGUL_JAMO_VT = range(0x1161, 0x11C3)


def is_invisible(char: str) -> bool:
    """Format characters (zero-width, bidi marks, soft hyphen, BOM: category Cf), control characters
    (Cc, except tab and line breaks), unassigned code points and surrogates (Cn, Cs)."""
    category = unicodedata.category(char)
    return category in ("Cf", "Cn", "Cs") or (category == "Cc" and char not in KEPT_CONTROLS)


@dataclass(frozen=True)
class CleanCaption:
    """`text` (what the models read) and, for each of its characters, the typed caption's `[start, end)`."""

    typed: str
    text: str
    starts: tuple[int, ...]
    ends: tuple[int, ...]

    @property
    def changed(self) -> bool:
        return self.text != self.typed

    def typed_span(self, start: int, end: int) -> tuple[int, int]:
        """A span of `text` -> the span of the typed caption that holds the same characters."""
        if start >= end:
            pos = self.starts[start] if start < len(self.starts) else len(self.typed)
            return pos, pos
        return self.starts[start], self.ends[end - 1]

    def clean_span(self, start: int, end: int) -> tuple[int, int]:
        """A span of the typed caption -> the clean characters that came from inside it."""
        inside = [k for k, (a, b) in enumerate(zip(self.starts, self.ends, strict=True)) if start <= a and b <= end]
        if not inside:
            return 0, 0
        return inside[0], inside[-1] + 1

    def to_typed(self, entity: Entity) -> Entity:
        """An entity of the clean text, with its offsets moved onto the typed caption (its text stays clean)."""
        if not self.changed:
            return entity
        start, end = self.typed_span(entity.start, entity.end)
        return replace(entity, start=start, end=end)

    def to_clean(self, entity: Entity) -> Entity:
        """An entity given on the typed caption, moved onto the clean text (its text read there)."""
        if not self.changed:
            return entity
        start, end = self.clean_span(entity.start, entity.end)
        return replace(entity, text=self.text[start:end], start=start, end=end)


def _clusters(text: str) -> list[tuple[int, int]]:
    """Spans that NFC may compose into fewer characters: a character and the combining marks after it."""
    spans: list[tuple[int, int]] = []
    for i, ch in enumerate(text):
        joins = unicodedata.combining(ch) or ord(ch) in _HANGUL_JAMO_VT
        if spans and joins and spans[-1][1] == i:
            spans[-1] = (spans[-1][0], i + 1)
        else:
            spans.append((i, i + 1))
    return spans


READ_SCRIPTS = frozenset({"LATIN"})  # what the tagger and the relation model read: they learnt on English posts
_SCRIPT_NAMES = {"CJK": "Chinese", "HIRAGANA": "Japanese", "KATAKANA": "Japanese", "HANGUL": "Korean"}


def _script(char: str) -> str:
    """The Unicode script of a letter, as the first word of its name ("LATIN", "CJK", "ARABIC", ...)."""
    name = unicodedata.name(char, "")
    return "LATIN" if "LATIN" in name else (name.split(" ", 1)[0] or "UNKNOWN")


def unread_script(text: str) -> str | None:
    """The script most of `text`'s letters are written in, named for a reader ("Chinese", "Arabic"), where
    the models do not read it (`READ_SCRIPTS`); None for a text mostly in a script they read, or without
    letters. Japanese: CJK ideographs with kana among them."""
    counts = Counter(_script(c) for c in text if c.isalpha())
    read = sum(counts.pop(s, 0) for s in READ_SCRIPTS)
    if sum(counts.values()) <= read:
        return None
    script = counts.most_common(1)[0][0]
    if script == "CJK" and (counts["HIRAGANA"] or counts["KATAKANA"]):
        script = "HIRAGANA"
    return _SCRIPT_NAMES.get(script, script.title())


def clean_caption(typed: str) -> CleanCaption:
    """Remove invisible characters and normalise to NFC, keeping each clean character's typed span."""
    if typed.isascii() and typed.isprintable():
        n = len(typed)
        return CleanCaption(typed, typed, tuple(range(n)), tuple(range(1, n + 1)))
    out: list[str] = []
    starts: list[int] = []
    ends: list[int] = []
    for a, b in _clusters(typed):
        kept = "".join(ch for ch in typed[a:b] if not is_invisible(ch))
        if not kept:
            continue
        composed = unicodedata.normalize("NFC", kept)
        out.append(composed)
        starts += [a] * len(composed)
        ends += [b] * len(composed)
    return CleanCaption(typed, "".join(out), tuple(starts), tuple(ends))
