"""Annotator decisions on predicted triples: SQLite (standard library), durable and safe for concurrent
writers (WAL, one short transaction per write, busy timeout).

Decisions are append-only: the store keeps the whole history. What *holds* is the **current**
decision per (item, annotator): the latest one not undone. A later decision on the same pair replaces
the earlier one everywhere it shows (tables, exports, the graph) and undo brings the earlier one back.

Decision semantics (the MNRE export's `relation`):
  accept  -> the predicted relation is right            -> relation = predicted label
  reject  -> no relation holds between head and tail    -> relation = "None"
  relabel -> another relation holds                     -> relation = the label chosen (no default)
Every final relation must fit the pair's entity types (`data.labels.relation_fits`).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import sqlite3
import time
from collections.abc import Iterable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

from mmre_demo.data.images import image_id
from mmre_demo.data.labels import LABEL_TO_ID, NONE_LABEL, relation_fits, relation_types
from mmre_demo.data.mnre import example_to_mnre_line
from mmre_demo.data.schema import Entity, InputError, Span


class DecisionKind(str, Enum):
    ACCEPT = "accept"
    REJECT = "reject"
    RELABEL = "relabel"


DECISIONS: tuple[str, ...] = tuple(d.value for d in DecisionKind)
DEFAULT_DB = Path("runs") / "annotations" / "annotations.sqlite3"
ANONYMOUS = "anonymous"
MAX_NAME_CHARS = 80

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
# columns added after the first release: (name, SQL type); existing stores gain them on open
_ADDED_COLUMNS = (("item_key", "TEXT"), ("undone", "REAL"), ("source", "TEXT"))


def default_db_path() -> Path:
    return Path(os.environ.get("MMRE_ANNOTATIONS_DB", str(DEFAULT_DB)))



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


def item_key(caption: str, img_id: str | None, head: Span, tail: Span) -> str:
    """The identity of a judged pair (caption, image, ordered spans): what a later decision replaces
    and what a review queue's item is."""
    raw = json.dumps([caption, img_id or "", list(head), list(tail)], ensure_ascii=False)
    return hashlib.sha1(raw.encode("utf-8")).hexdigest()[:16]


@dataclass(frozen=True)
class Candidate:
    """A predicted triple an annotator judges: the caption, its image and the pair with its label."""

    caption: str
    img_id: str | None
    head: Entity
    tail: Entity
    predicted: str
    probability: float | None = None

    @property
    def key(self) -> str:
        return item_key(self.caption, self.img_id, _span(self.head), _span(self.tail))

    def check(self) -> None:
        """Refuse spans that do not match the caption or cannot be exported as MNRE tokens."""
        for e in (self.head, self.tail):
            if not (0 <= e.start < e.end <= len(self.caption)) or self.caption[e.start : e.end] != e.text:
                raise InputError(f"entity {e.text!r} [{e.start}, {e.end}) does not match the caption")
        tokenize_for_mnre(self.caption, [_span(self.head), _span(self.tail)])

    def check_fits(self, relation: str) -> None:
        """Refuse a relation whose type rule breaks the pair's entity types (the message names both)."""
        if relation != NONE_LABEL and relation not in LABEL_TO_ID:
            raise InputError(f"{relation!r} is not one of the {len(LABEL_TO_ID)} MNRE relation names.")
        if not relation_fits(relation, self.head.type, self.tail.type):
            want_head, want_tail = relation_types(relation) or ("", "")
            raise InputError(f"{relation} needs a {want_head} head and a {want_tail} tail; "
                             f"{self.head.text} is {self.head.type} and {self.tail.text} is {self.tail.type}. "
                             "Choose a relation that fits the pair's types.")

    def decide(self, decision: str, new_label: str | None = None) -> str:
        """The relation that holds after `decision` (checked against the pair's types)."""
        relation = final_relation(decision, self.predicted, new_label)
        self.check_fits(relation)
        return relation


@dataclass
class Decision:
    """One stored judgement of a candidate; `relation` is what holds after it (the MNRE export's label)."""

    candidate: Candidate
    annotator: str
    decision: str
    relation: str
    created: float = 0.0
    id: int | None = None
    undone: float | None = None  # when its annotator undid it (None: it stands)
    source: str | None = None  # where it was made: "app", a review queue's id, "import:<file>"
    replaces: Decision | None = field(default=None, repr=False)  # the annotator's decision it superseded

    def key(self) -> tuple[str, str]:
        """What a later decision replaces: the same item, by the same annotator."""
        return self.candidate.key, self.annotator

    def mnre_line(self) -> str:
        c = self.candidate
        tokens, idx = tokenize_for_mnre(c.caption, [_span(c.head), _span(c.tail)])
        hs, he = idx[_span(c.head)]
        ts, te = idx[_span(c.tail)]
        return example_to_mnre_line(tokens, (" ".join(tokens[hs:he]), hs, he), (" ".join(tokens[ts:te]), ts, te),
                                    self.relation, c.img_id)


@dataclass(frozen=True)
class Undo:
    """What an undo did: the decision taken back and the one that holds again (None: none before it)."""

    undone: Decision
    restored: Decision | None


def _span(e: Entity) -> Span:
    return e.start, e.end


def final_relation(decision: str, predicted: str, new_label: str | None = None) -> str:
    if decision not in DECISIONS:
        raise InputError(f"decision must be one of {', '.join(DECISIONS)}; got {decision!r}")
    if decision == DecisionKind.ACCEPT:
        return predicted
    if decision == DecisionKind.REJECT:
        return NONE_LABEL
    if not new_label:
        raise InputError("Relabel needs the new relation: choose it from the list first.")
    if new_label not in LABEL_TO_ID or new_label == NONE_LABEL:
        raise InputError(f"relabel needs one of the {len(LABEL_TO_ID) - 1} MNRE relation names; got {new_label!r}")
    return new_label


def clean_annotator(name: str | None) -> str:
    """An annotator's name as stored: trimmed, at most 80 characters, "anonymous" when blank."""
    return (name or "").strip()[:MAX_NAME_CHARS] or ANONYMOUS


_COLUMNS = ("id, created, annotator, caption, img_id, head, head_start, head_end, head_type, tail, tail_start, "
            "tail_end, tail_type, predicted, probability, decision, relation, undone, source")


def _decision_of(r: tuple) -> Decision:
    cand = Candidate(r[3], r[4], Entity(r[5], r[6], r[7], r[8] or ""), Entity(r[9], r[10], r[11], r[12] or ""),
                     r[13], r[14])
    return Decision(cand, r[2], r[15], r[16], r[1], r[0], r[17], r[18])


class AnnotationStore:
    """SQLite file of decisions. Every method opens its own connection: safe across threads and processes."""

    def __init__(self, path: str | Path | None = None, image_dir: str | Path | None = None):
        self.path = Path(path) if path else default_db_path()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.image_dir = Path(image_dir) if image_dir else self.path.parent / "images"
        with closing(self._connect()) as con:
            con.executescript(_SCHEMA)
            have = {row[1] for row in con.execute("PRAGMA table_info(decisions)")}
            for name, sql_type in _ADDED_COLUMNS:
                if name not in have:
                    con.execute(f"ALTER TABLE decisions ADD COLUMN {name} {sql_type}")
            self._fill_item_keys(con)
            con.execute("CREATE INDEX IF NOT EXISTS decisions_key ON decisions (item_key, annotator)")

    def _connect(self) -> sqlite3.Connection:
        con = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
        con.execute("PRAGMA journal_mode=WAL")
        con.execute("PRAGMA synchronous=FULL")
        con.execute("PRAGMA busy_timeout=30000")
        return con

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (BEGIN IMMEDIATE: writers queue, readers go on); other rooms (the
        review queue) write their tables through it."""
        with closing(self._connect()) as con:
            con.execute("BEGIN IMMEDIATE")
            try:
                yield con
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise

    def ensure_schema(self, sql: str) -> None:
        """Create another room's tables in this file (idempotent `CREATE ... IF NOT EXISTS` script)."""
        with closing(self._connect()) as con:
            con.executescript(sql)

    def read(self, sql: str, params: tuple = ()) -> list[tuple]:
        with closing(self._connect()) as con:
            return con.execute(sql, params).fetchall()

    @staticmethod
    def _fill_item_keys(con: sqlite3.Connection) -> None:
        """Stores written before item keys existed get them (once)."""
        rows = con.execute("SELECT id, caption, img_id, head_start, head_end, tail_start, tail_end FROM decisions "
                           "WHERE item_key IS NULL").fetchall()
        for r in rows:
            con.execute("UPDATE decisions SET item_key = ? WHERE id = ?",
                        (item_key(r[1], r[2], (r[3], r[4]), (r[5], r[6])), r[0]))

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

    def image_path(self, img_id: str | None) -> Path | None:
        """The stored copy of an annotated image (None: no image or not stored here)."""
        if not img_id:
            return None
        p = self.image_dir / Path(img_id).name
        return p if p.is_file() else None

    def add(self, candidate: Candidate, decision: str, new_label: str | None = None,
            annotator: str | None = None, source: str | None = "app") -> Decision:
        """Record one decision on `candidate` (validated: spans, decision, the relation's types); returns
        it with its id and `replaces`: the annotator's current decision on the same pair before it."""
        with self.transaction() as con:
            return self.record(con, candidate, decision, new_label, annotator, source)

    def record(self, con: sqlite3.Connection, candidate: Candidate, decision: str, new_label: str | None,
               annotator: str | None, source: str | None) -> Decision:
        """`add` inside a caller's transaction (the review queue releases its claim in the same one)."""
        relation = candidate.decide(decision, new_label)
        candidate.check()
        d = Decision(candidate, clean_annotator(annotator), str(decision), relation, time.time(), source=source)
        d.replaces = self._current_in(con, candidate.key, d.annotator)
        d.id = self._insert(con, d)
        return d

    def add_many(self, decisions: Iterable[tuple[Candidate, str, str | None, str]], source: str) -> int:
        """Store (candidate, decision, new label, annotator) tuples in one transaction: all or nothing
        (a refused one rolls the transaction back). Returns how many."""
        stored = 0
        with self.transaction() as con:
            for cand, decision, label, who in decisions:
                self.record(con, cand, decision, label, who, source)
                stored += 1
        return stored

    @staticmethod
    def _insert(con: sqlite3.Connection, d: Decision) -> int:
        c, h, t = d.candidate, d.candidate.head, d.candidate.tail
        cur = con.execute(
            "INSERT INTO decisions (created, annotator, caption, img_id, head, head_start, head_end, head_type,"
            " tail, tail_start, tail_end, tail_type, predicted, probability, decision, relation, item_key, source)"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (d.created, d.annotator, c.caption, c.img_id, h.text, h.start, h.end, h.type, t.text, t.start,
             t.end, t.type, c.predicted, c.probability, d.decision, d.relation, c.key, d.source))
        return int(cur.lastrowid)

    @staticmethod
    def _current_in(con: sqlite3.Connection, key: str, annotator: str) -> Decision | None:
        row = con.execute(f"SELECT {_COLUMNS} FROM decisions WHERE item_key = ? AND annotator = ? AND undone IS NULL"
                          " ORDER BY id DESC LIMIT 1", (key, annotator)).fetchone()
        return _decision_of(row) if row else None

    def undo_last(self, annotator: str | None, source: str | None = None,
                  elsewhere: str = "Your last decision was made elsewhere; undo it where you made it.") -> Undo:
        """Take back the annotator's latest standing decision; the one it replaced (if any) holds again.
        With `source`, only when that decision was made there (else `elsewhere` is the refusal), checked in
        the same transaction."""
        who = clean_annotator(annotator)
        with self.transaction() as con:
            row = con.execute(f"SELECT {_COLUMNS} FROM decisions WHERE annotator = ? AND undone IS NULL "
                              "ORDER BY id DESC LIMIT 1", (who,)).fetchone()
            if row is None:
                raise InputError(f"{who} has no decision to undo.")
            undone = _decision_of(row)
            if source is not None and undone.source != source:
                raise InputError(elsewhere)
            undone.undone = time.time()
            con.execute("UPDATE decisions SET undone = ? WHERE id = ?", (undone.undone, undone.id))
            restored = self._current_in(con, undone.candidate.key, who)
        return Undo(undone, restored)

    def all(self) -> list[Decision]:
        """Every decision ever made (the history), undone ones included, oldest first."""
        return [_decision_of(r) for r in self.read(f"SELECT {_COLUMNS} FROM decisions ORDER BY id")]

    def current(self, annotator: str | None = None) -> list[Decision]:
        """The decisions that hold: per (pair, annotator) the latest not undone; one annotator's when given.
        One query on the (item_key, annotator) index, not a read of the whole history."""
        where, args = ("AND annotator = ? ", (annotator,)) if annotator is not None else ("", ())
        return [_decision_of(r) for r in self.read(
            f"SELECT {_COLUMNS} FROM decisions WHERE id IN (SELECT MAX(id) FROM decisions WHERE undone IS NULL "
            f"{where}GROUP BY item_key, annotator) ORDER BY id", args)]

    def count(self, annotator: str | None = None) -> int:
        if annotator is None:
            return int(self.read("SELECT COUNT(*) FROM decisions")[0][0])
        return int(self.read("SELECT COUNT(*) FROM decisions WHERE annotator = ?", (annotator,))[0][0])

    def export_mnre(self, path: str | Path | None = None, annotator: str | None = None) -> str:
        """MNRE lines, one per standing decision (everyone's, or one annotator's); written to `path` when
        given. Returns the text."""
        text = mnre_text(self.current(annotator))
        if path:
            Path(path).write_text(text, encoding="utf-8")
        return text

    def rows(self, annotator: str | None = None, limit: int = 200) -> list[list[Any]]:
        """Standing decisions as table rows, newest first (one annotator's when given)."""
        return decision_rows(self.current(annotator), limit)


def mnre_text(decisions: list[Decision]) -> str:
    """MNRE lines of `decisions`, one per line."""
    return "".join(d.mnre_line() + "\n" for d in decisions)


def decided_at(d: Decision) -> str:
    """When a decision was made, in the server's local time (as the decisions table shows it)."""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(d.created))


def decision_rows(decisions: list[Decision], limit: int = 200) -> list[list[Any]]:
    """Decisions (oldest first, as `current()` gives them) as the decisions table's rows, newest first."""
    out = []
    for d in reversed(decisions[-limit:]):
        c = d.candidate
        out.append([d.id, decided_at(d), d.annotator,
                    c.head.text, c.predicted, c.tail.text, d.decision, d.relation, c.caption, c.img_id or ""])
    return out
