"""Twitter-2015/2017 CoNLL reader (the UMT release of the multimodal NER data sets).

Format: a line `IMGID:<id>` starts a tweet, then one `token<TAB>BIO-tag` line per token, and a
blank line between tweets. Twitter-2015 writes OTHER where Twitter-2017 writes MISC; the reader
maps OTHER to MISC so both years share one tag set. A malformed line raises `DataFormatError`
naming the file and the line.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from mmre_demo.data.mnre import DataFormatError

ENTITY_TYPES = ("PER", "LOC", "ORG", "MISC")
TYPE_ALIASES = {"OTHER": "MISC"}
TAGS = ("O",) + tuple(f"{p}-{t}" for t in ENTITY_TYPES for p in ("B", "I"))


@dataclass(frozen=True)
class TaggedSentence:
    """One tweet: its tokens and BIO tags (OTHER already mapped to MISC)."""

    tokens: tuple[str, ...]
    tags: tuple[str, ...]
    img_id: str | None = None
    line_no: int = 0  # line of the first token (or of the IMGID line)


def normalise_tag(tag: str) -> str:
    """`B-OTHER` -> `B-MISC`; raises ValueError for anything outside the BIO tag set."""
    if tag == "O":
        return tag
    prefix, sep, etype = tag.partition("-")
    etype = TYPE_ALIASES.get(etype, etype)
    if not sep or prefix not in ("B", "I") or etype not in ENTITY_TYPES:
        raise ValueError(f"unknown tag {tag!r} (expected O or B-/I- with {', '.join(ENTITY_TYPES)}, OTHER)")
    return f"{prefix}-{etype}"


def _parse_token_line(line: str) -> tuple[str, str]:
    parts = line.split("\t")
    if len(parts) != 2:
        parts = line.split()  # tolerate a space instead of the tab, but not extra columns
    if len(parts) != 2 or not parts[0]:
        raise ValueError(f"expected 'token<TAB>tag', got {line!r}")
    return parts[0], normalise_tag(parts[1].strip())


def bio_spans(tags: Sequence[str]) -> list[tuple[int, int, str]]:
    """`[(first_word, end_word_exclusive, type)]` with the seqeval (non-strict) convention:
    an I- that does not continue an entity of its type starts a new one."""
    spans: list[tuple[int, int, str]] = []
    start, etype = None, None
    for i, tag in enumerate(list(tags) + ["O"]):
        prefix, _, t = tag.partition("-")
        continues = prefix == "I" and start is not None and t == etype
        if start is not None and not continues:
            spans.append((start, i, etype))
            start, etype = None, None
        if prefix in ("B", "I") and not continues:
            start, etype = i, t
    return spans


def parse_conll(lines: list[str], path: str | Path = "<string>") -> list[TaggedSentence]:
    """Parse CoNLL lines into sentences; blank lines and IMGID lines separate tweets."""
    sentences: list[TaggedSentence] = []
    tokens: list[str] = []
    tags: list[str] = []
    img_id: str | None = None
    start_line = 0

    def flush() -> None:
        nonlocal tokens, tags, img_id
        if tokens:
            sentences.append(TaggedSentence(tuple(tokens), tuple(tags), img_id, start_line))
        tokens, tags, img_id = [], [], None

    for line_no, raw in enumerate(lines, start=1):
        line = raw.rstrip("\r\n")
        if not line.strip():
            flush()
            continue
        if line.startswith("IMGID:"):
            flush()
            img_id, start_line = line[len("IMGID:"):].strip() or None, line_no
            continue
        try:
            token, tag = _parse_token_line(line)
        except ValueError as exc:
            raise DataFormatError(f"{path}:{line_no}: {exc}") from None
        if not tokens and img_id is None:
            start_line = line_no
        tokens.append(token)
        tags.append(tag)
    flush()
    return sentences


def read_conll(path: str | Path) -> list[TaggedSentence]:
    """Read one Twitter CoNLL file (UTF-8)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such data file: {path}")
    with path.open(encoding="utf-8") as f:
        return parse_conll(f.readlines(), path)


def twitter_ner_files(root: str | Path, split: str) -> list[Path]:
    """Both years' files of one split (`train` or `valid`) under `root` (= shared_data_dir())."""
    base = Path(root) / "twitter_ner"
    return [base / "twitter2015" / f"{split}.txt", base / "twitter2017" / f"{split}.txt"]
