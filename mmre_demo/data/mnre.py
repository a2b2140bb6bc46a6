"""MNRE reader: one Python dict literal per line, parsed with `ast.literal_eval` (never `eval`)."""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

from mmre_demo.data.labels import LABEL_TO_ID
from mmre_demo.data.schema import Entity


class DataFormatError(ValueError):
    """A malformed data line; the message names the file and the line number."""


@dataclass(frozen=True)
class MnreExample:
    """One MNRE line as character spans over the caption (tokens joined by single spaces)."""

    caption: str
    head: Entity
    tail: Entity
    relation: str
    img_id: str | None
    tokens: tuple[str, ...]
    line_no: int = 0

    @property
    def label_id(self) -> int:
        return LABEL_TO_ID[self.relation]


def tokens_to_caption(tokens: list[str]) -> tuple[str, list[int]]:
    """Join tokens with spaces; return the caption and each token's character start."""
    starts, pos = [], 0
    for tok in tokens:
        starts.append(pos)
        pos += len(tok) + 1
    return " ".join(tokens), starts


def _token_span_to_entity(tokens: list[str], starts: list[int], pos: object, name: str) -> Entity:
    if not (isinstance(pos, (list, tuple)) and len(pos) == 2 and all(isinstance(p, int) for p in pos)):
        raise ValueError(f"'pos' must be [start, end), got {pos!r}")
    s, e = pos
    if not (0 <= s < e <= len(tokens)):
        raise ValueError(f"span {pos} out of range for {len(tokens)} tokens")
    start = starts[s]
    end = starts[e - 1] + len(tokens[e - 1])
    return Entity(" ".join(tokens[s:e]), start, end, "")  # MNRE lines carry no entity types


def parse_mnre_line(line: str, line_no: int = 0) -> MnreExample:
    """Parse one MNRE line; raises ValueError with the reason."""
    try:
        raw = ast.literal_eval(line)
    except (ValueError, SyntaxError) as exc:
        raise ValueError(f"not a Python dict literal ({exc.__class__.__name__})") from None
    if not isinstance(raw, dict):
        raise ValueError("not a dict")
    missing = [k for k in ("token", "h", "t", "relation") if k not in raw]
    if missing:
        raise ValueError(f"missing keys {missing}")
    tokens = raw["token"]
    if not (isinstance(tokens, list) and tokens and all(isinstance(t, str) and t for t in tokens)):
        raise ValueError("'token' must be a non-empty list of non-empty strings")
    relation = raw["relation"]
    if relation not in LABEL_TO_ID:
        raise ValueError(f"unknown relation {relation!r}")
    caption, starts = tokens_to_caption(tokens)
    try:
        head = _token_span_to_entity(tokens, starts, raw["h"].get("pos"), "h")
        tail = _token_span_to_entity(tokens, starts, raw["t"].get("pos"), "t")
    except AttributeError:
        raise ValueError("'h' and 't' must be dicts with 'pos'") from None
    if (head.start, head.end) == (tail.start, tail.end):
        raise ValueError("head and tail are the same span")  # nested spans do occur in MNRE and are kept
    img = raw.get("img_id")
    return MnreExample(caption, head, tail, relation, str(img) if img else None, tuple(tokens), line_no)


def read_mnre(path: str | Path, skip_bad: bool = False) -> tuple[list[MnreExample], int]:
    """Read an MNRE file. Returns (examples, number of skipped bad lines).

    Without `skip_bad` the first bad line raises DataFormatError naming file and line.
    """
    path = Path(path)
    if not path.is_file():
        raise DataFormatError(f"{path}: no such file")
    examples: list[MnreExample] = []
    skipped = 0
    with path.open(encoding="utf-8") as fh:
        for line_no, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                examples.append(parse_mnre_line(line, line_no))
            except ValueError as exc:
                if not skip_bad:
                    raise DataFormatError(f"{path}:{line_no}: {exc}") from None
                skipped += 1
    return examples, skipped


def example_to_mnre_line(tokens: list[str], head: tuple[str, int, int], tail: tuple[str, int, int],
                         relation: str, img_id: str | None) -> str:
    """Write one MNRE line (the inverse of `parse_mnre_line`); spans are token spans."""
    d = {
        "token": list(tokens),
        "h": {"name": head[0], "pos": [head[1], head[2]]},
        "t": {"name": tail[0], "pos": [tail[1], tail[2]]},
        "img_id": img_id or "",
        "relation": relation,
    }
    return repr(d)
