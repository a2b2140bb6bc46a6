"""Annotator decisions on predicted triples: SQLite (standard library), durable and safe for concurrent
writers (WAL, one short transaction per write, busy timeout), exported as MNRE lines.

Decisions are append-only: nothing is overwritten, so two annotators (or two app processes) writing at
once lose nothing; `latest()` gives the last decision per (example, pair, annotator).

Decision semantics for the MNRE export:
  accept  -> the predicted relation is right            -> relation = predicted label
  reject  -> no relation holds between head and tail    -> relation = "None"
  relabel -> another relation holds                     -> relation = the new label
"""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
import time
from collections.abc import Iterable
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mmre_demo.data.images import image_id
from mmre_demo.data.labels import LABEL_TO_ID, NONE_LABEL
from mmre_demo.data.mnre import example_to_mnre_line
from mmre_demo.data.schema import Entity, InputError

DECISIONS = ("accept", "reject", "relabel")
DEFAULT_DB = Path("runs") / "annotations" / "annotations.sqlite3"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS decisions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created REAL NOT NULL,
    annotator TEXT NOT NULL,
    caption TEXT NOT NULL,
    img_id TEXT,
    head TEXT NOT NULL, head_start INTEGER NOT NULL, head_end INTEGER NOT NULL, head_type TEXT,
    tail TEXT NOT NULL, tail_start INTEGER NOT NULL, tail_end INTEGER NOT NULL, tail_type TEXT,
    predicted TEXT NOT NULL, probability REAL,
    decision TEXT NOT NULL CHECK (decision IN ('accept', 'reject', 'relabel')),
    relation TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS decisions_item ON decisions (caption, img_id, head_start, head_end, tail_start, tail_end);
"""


def default_db_path() -> Path:
    return Path(os.environ.get("MMRE_ANNOTATIONS_DB", str(DEFAULT_DB)))


Span = tuple[int, int]


def tokenize_for_mnre(caption: str, spans: Iterable[Span]) -> tuple[list[str], dict[Span, Span]]:
    """Whitespace words, split further at every entity boundary, so each span is whole tokens.

    Returns the tokens and, per character span, its token span [start, end).
    """
    spans = list(spans)
    cuts = sorted({c for s in spans for c in s})
    pieces: list[tuple[int, int]] = []
    for m in re.finditer(r"\S+", caption):
        s, e = m.start(), m.end()
        inner = [c for c in cuts if s < c < e]
        bounds = [s, *inner, e]
        pieces.extend((a, b) for a, b in zip(bounds, bounds[1:]) if b > a)
    tokens = [caption[a:b] for a, b in pieces]
    index: dict[tuple[int, int], tuple[int, int]] = {}
    for s, e in spans:
        inside = [i for i, (a, b) in enumerate(pieces) if a >= s and b <= e]
        if not inside or pieces[inside[0]][0] != s or pieces[inside[-1]][1] != e:
            raise InputError(f"span [{s}, {e}) of the caption is not a sequence of words")
        index[(s, e)] = (inside[0], inside[-1] + 1)
    return tokens, index


@dataclass(frozen=True)
class Candidate:
    """A predicted triple an annotator judges: the caption, its image and the pair with its label."""

    caption: str
    img_id: str | None
    head: Entity
    tail: Entity
    predicted: str
    probability: float | None = None

    def check(self) -> None:
        """Refuse spans that do not match the caption or cannot be exported as MNRE tokens."""
        for e in (self.head, self.tail):
            if not (0 <= e.start < e.end <= len(self.caption)) or self.caption[e.start : e.end] != e.text:
                raise InputError(f"entity {e.text!r} [{e.start}, {e.end}) does not match the caption")
        tokenize_for_mnre(self.caption, [_span(self.head), _span(self.tail)])


@dataclass
class Decision:
    """One stored judgement of a candidate; `relation` is what the MNRE export says holds."""

    candidate: Candidate
    annotator: str
    decision: str
    relation: str
    created: float = 0.0
    id: int | None = None

    def key(self) -> tuple:
        """What a later decision replaces: same caption, image, spans and annotator."""
        c = self.candidate
        return c.caption, c.img_id, _span(c.head), _span(c.tail), self.annotator

    def mnre_line(self) -> str:
        c = self.candidate
        tokens, idx = tokenize_for_mnre(c.caption, [_span(c.head), _span(c.tail)])
        hs, he = idx[_span(c.head)]
        ts, te = idx[_span(c.tail)]
        return example_to_mnre_line(tokens, (" ".join(tokens[hs:he]), hs, he), (" ".join(tokens[ts:te]), ts, te),
                                    self.relation, c.img_id)


def _span(e: Entity) -> Span:
    return e.start, e.end


def final_relation(decision: str, predicted: str, new_label: str | None = None) -> str:
    if decision not in DECISIONS:
        raise InputError(f"decision must be one of {', '.join(DECISIONS)}; got {decision!r}")
    if decision == "accept":
        return predicted
    if decision == "reject":
        return NONE_LABEL
    if not new_label or new_label not in LABEL_TO_ID:
        raise InputError(f"relabel needs one of the {len(LABEL_TO_ID)} MNRE relation names; got {new_label!r}")
    return new_label


class AnnotationStore:
    """SQLite file of decisions. Every method opens its own connection: safe across threads and processes."""

    def __init__(self, path: str | Path | None = None, image_dir: str | Path | None = None):
        self.path = Path(path) if path else default_db_path()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.image_dir = Path(image_dir) if image_dir else self.path.parent / "images"
        with closing(self._connect()) as con, con:
            con.executescript(_SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        con = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
        con.execute("PRAGMA journal_mode=WAL")
        con.execute("PRAGMA synchronous=FULL")
        con.execute("PRAGMA busy_timeout=30000")
        return con

    def store_image(self, image_path: str | Path | None) -> str | None:
        """Copy an annotated image next to the database (content-addressed); return its img_id."""
        if not image_path:
            return None
        p = Path(image_path)
        if not p.is_file():
            return p.name
        img_id = image_id(p)
        self.image_dir.mkdir(parents=True, exist_ok=True)
        target = self.image_dir / img_id
        if not target.exists():
            tmp = target.with_suffix(target.suffix + f".{os.getpid()}.tmp")
            shutil.copyfile(p, tmp)
            os.replace(tmp, target)
        return img_id

    def add(self, candidate: Candidate, decision: str, new_label: str | None = None,
            annotator: str | None = None) -> Decision:
        """Record one decision on `candidate` (validated); returns it with its id."""
        relation = final_relation(decision, candidate.predicted, new_label)
        candidate.check()
        d = Decision(candidate, (annotator or "anonymous").strip()[:80] or "anonymous", decision, relation, time.time())
        c, h, t = candidate, candidate.head, candidate.tail
        with closing(self._connect()) as con:
            con.execute("BEGIN IMMEDIATE")
            try:
                cur = con.execute(
                    "INSERT INTO decisions (created, annotator, caption, img_id, head, head_start, head_end, head_type,"
                    " tail, tail_start, tail_end, tail_type, predicted, probability, decision, relation)"
                    " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    (d.created, d.annotator, c.caption, c.img_id, h.text, h.start, h.end, h.type, t.text, t.start,
                     t.end, t.type, c.predicted, c.probability, decision, relation))
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise
        d.id = cur.lastrowid
        return d

    def all(self) -> list[Decision]:
        with closing(self._connect()) as con:
            rows = con.execute("SELECT id, created, annotator, caption, img_id, head, head_start, head_end, head_type,"
                               " tail, tail_start, tail_end, tail_type, predicted, probability, decision, relation"
                               " FROM decisions ORDER BY id").fetchall()
        return [Decision(Candidate(r[3], r[4], Entity(r[5], r[6], r[7], r[8] or ""),
                                   Entity(r[9], r[10], r[11], r[12] or ""), r[13], r[14]),
                         r[2], r[15], r[16], r[1], r[0]) for r in rows]

    def latest(self) -> list[Decision]:
        """The last decision per (caption, image, head span, tail span, annotator)."""
        last: dict[tuple, Decision] = {}
        for d in self.all():
            last[d.key()] = d
        return sorted(last.values(), key=lambda d: d.id or 0)

    def count(self) -> int:
        with closing(self._connect()) as con:
            return int(con.execute("SELECT COUNT(*) FROM decisions").fetchone()[0])

    def export_mnre(self, path: str | Path | None = None, latest_only: bool = True) -> str:
        """MNRE lines (one per decision); written to `path` when given. Returns the text."""
        lines = [d.mnre_line() for d in (self.latest() if latest_only else self.all())]
        text = "\n".join(lines) + ("\n" if lines else "")
        if path:
            Path(path).write_text(text, encoding="utf-8")
        return text

    def rows(self, limit: int = 200) -> list[list[Any]]:
        """Recent decisions as table rows (newest first)."""
        out = []
        for d in reversed(self.all()[-limit:]):
            c = d.candidate
            out.append([d.id, time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(d.created)), d.annotator,
                        c.head.text, c.predicted, c.tail.text, d.decision, d.relation, c.img_id or ""])
        return out
