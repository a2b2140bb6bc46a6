"""The review queue: a corpus's entity pairs presented one at a time to an annotator, the ones where a
decision is worth the most first, resumable, shared by annotators working at the same time.

Worth (`worth`): how near the pair's probability is to the threshold (the decision most likely flips
the output), raised when the model's two directions of the pair disagree; pairs below the threshold
come too, as candidates for missed relations, after the uncertain ones above it.

The queue lives in the annotation store's SQLite file (tables `review_*`), so closing the browser or
restarting the app loses nothing: an annotator's next item is the first, in queue order, that they
have not decided and nobody else holds. Handing out an item *claims* it for that annotator for
`CLAIM_SECONDS`, so two annotators are never given the same item at the same time; a decision is only
taken from the annotator holding the claim, in the transaction that releases it, so it is stored once.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

from mmre_demo.annotations.store import ANONYMOUS, AnnotationStore, Candidate, Decision, clean_annotator
from mmre_demo.data.labels import NONE_LABEL, fitting_relations
from mmre_demo.data.schema import Entity, InputError
from mmre_demo.prediction import shows

CLAIM_SECONDS = 600.0  # an item handed out stays its annotator's this long without a decision
DISAGREE_BONUS = 0.25  # worth added when the pair's two directions prefer different relations

_SCHEMA = """
CREATE TABLE IF NOT EXISTS review_queues (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, created REAL NOT NULL, threshold REAL NOT NULL, items INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS review_items (
    queue_id TEXT NOT NULL, position INTEGER NOT NULL, item_key TEXT NOT NULL, payload TEXT NOT NULL,
    PRIMARY KEY (queue_id, position));
CREATE TABLE IF NOT EXISTS review_claims (
    queue_id TEXT NOT NULL, position INTEGER NOT NULL, annotator TEXT NOT NULL, until REAL NOT NULL,
    PRIMARY KEY (queue_id, position));
CREATE TABLE IF NOT EXISTS review_skips (
    queue_id TEXT NOT NULL, position INTEGER NOT NULL, annotator TEXT NOT NULL,
    PRIMARY KEY (queue_id, position, annotator));
"""


class Reason(str, Enum):
    """Why an item is in the queue (shown beside it)."""

    NEAR_THRESHOLD = "shown as a relation, near the threshold"
    DIRECTIONS_DISAGREE = "its two directions disagree"
    MISSED = "below the threshold: a missed relation?"


@dataclass(frozen=True)
class ReviewItem:
    """One pair of one post, as the reviewer sees it: the model's best relation for it (shown or not)."""

    post_id: str
    caption: str
    img_id: str | None
    entities: tuple[Entity, ...]
    head: Entity
    tail: Entity
    label: str  # the model's most probable relation for the pair (the one accept confirms)
    probability: float
    threshold: float
    top_k: tuple[tuple[str, float], ...] = ()
    reverse: tuple[str, float] | None = None  # the other direction's best (relation, probability)
    reason: Reason = Reason.NEAR_THRESHOLD
    worth: float = 0.0
    image_text: tuple[str, ...] = ()  # lines read in the image

    @property
    def key(self) -> str:
        return self.candidate().key

    @property
    def shown(self) -> bool:
        return shows(self.label, self.probability, self.threshold)

    def candidate(self) -> Candidate:
        return Candidate(self.caption, self.img_id, self.head, self.tail, self.label, self.probability)

    def relabel_choices(self) -> list[str]:
        """The relations a relabel may choose: those fitting the pair's types, the model's alternatives first."""
        fitting = fitting_relations(self.head.type, self.tail.type)
        ranked = [lab for lab, _ in self.top_k if lab in fitting and lab != self.label]
        return ranked + [lab for lab in fitting if lab not in ranked and lab != self.label]

    def to_json(self) -> str:
        d = {"post_id": self.post_id, "caption": self.caption, "img_id": self.img_id,
             "entities": [e.to_dict() for e in self.entities], "head": self.head.to_dict(),
             "tail": self.tail.to_dict(), "label": self.label, "probability": self.probability,
             "threshold": self.threshold, "top_k": [list(t) for t in self.top_k],
             "reverse": list(self.reverse) if self.reverse else None, "reason": self.reason.name,
             "worth": self.worth, "image_text": list(self.image_text)}
        return json.dumps(d, ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> ReviewItem:
        d = json.loads(text)
        return cls(d["post_id"], d["caption"], d["img_id"], tuple(Entity.from_dict(e) for e in d["entities"]),
                   Entity.from_dict(d["head"]), Entity.from_dict(d["tail"]), d["label"], float(d["probability"]),
                   float(d["threshold"]), tuple((str(a), float(b)) for a, b in d["top_k"]),
                   tuple(d["reverse"]) if d["reverse"] else None, Reason[d["reason"]], float(d["worth"]),
                   tuple(d["image_text"]))


def worth(label: str, probability: float, threshold: float, reverse: tuple[str, float] | None) -> tuple[float, Reason]:
    """How much a decision on a pair is worth, and why it is asked: 1 at the threshold, falling to 0 at
    the far end of [0, 1]; pairs below the threshold rank after every pair above it."""
    span = max(threshold, 1.0 - threshold, 1e-6)
    value = 1.0 - abs(probability - threshold) / span
    disagree = reverse is not None and reverse[0] not in (NONE_LABEL, label)
    if disagree:
        return value + DISAGREE_BONUS, Reason.DIRECTIONS_DISAGREE
    if shows(label, probability, threshold):
        return value, Reason.NEAR_THRESHOLD
    return value - 1.0, Reason.MISSED


@dataclass(frozen=True)
class ReviewPost:
    """A classified post a queue is built from: its id, its prediction and its image's id in the store."""

    post_id: str
    prediction: Any  # a `mmre_demo.prediction.Prediction`
    img_id: str | None = None
    image_path: str | None = None
    image_text: tuple[str, ...] | None = None  # lines read in the image (None: those of the prediction)


def review_items(posts: Iterable[ReviewPost], threshold: float) -> list[ReviewItem]:
    """Every classified pair of every post (pairs with no possible relation left out), most worth first
    (ties: corpus order)."""
    items: list[ReviewItem] = []
    for post in posts:
        pred = post.prediction
        lines = post.image_text if post.image_text is not None else (
            tuple(ln.text for ln in pred.image_text.lines) if pred.image_text is not None else ())
        for p in pred.pairs:
            if p.label == NONE_LABEL:
                continue
            value, reason = worth(p.label, float(p.probability), threshold, p.reverse)
            items.append(ReviewItem(post.post_id, pred.caption, post.img_id, tuple(pred.entities), p.head, p.tail,
                                    p.label, float(p.probability), threshold,
                                    tuple((lab, float(pr)) for lab, pr in p.top_k),
                                    (p.reverse[0], float(p.reverse[1])) if p.reverse else None, reason, value, lines))
    order = sorted(range(len(items)), key=lambda i: (-items[i].worth, i))
    return [items[i] for i in order]


@dataclass(frozen=True)
class QueueInfo:
    id: str
    name: str
    items: int
    threshold: float
    created: float


@dataclass(frozen=True)
class Progress:
    reviewed: int  # items this annotator decided
    total: int
    everyone: int  # items anybody decided

    def text(self) -> str:
        return f"{self.reviewed} of {self.total} reviewed" + (f" ({self.everyone} by anyone)"
                                                               if self.everyone != self.reviewed else "")


@dataclass(frozen=True)
class Claimed:
    """The item handed to an annotator (claimed for them), where it stands in the queue, and progress."""

    queue_id: str
    position: int
    item: ReviewItem
    progress: Progress


def queue_id_for(name: str, items: Sequence[ReviewItem]) -> str:
    """The same corpus opened again is the same queue (so progress is kept): an id from its items."""
    digest = hashlib.sha1(name.encode("utf-8"))
    for it in items:
        digest.update(it.key.encode("ascii"))
    return digest.hexdigest()[:12]


class ReviewQueues:
    """The review queues of one annotation store."""

    def __init__(self, store: AnnotationStore, claim_seconds: float = CLAIM_SECONDS):
        self.store, self.claim_seconds = store, claim_seconds
        store.ensure_schema(_SCHEMA)

    def create(self, name: str, items: Sequence[ReviewItem]) -> QueueInfo:
        """Store a queue (or find the same one stored before: its progress is kept)."""
        if not items:
            raise InputError(f"{name}: no entity pairs to review (no post has two entities).")
        qid = queue_id_for(name, items)
        with self.store.transaction() as con:
            if con.execute("SELECT 1 FROM review_queues WHERE id = ?", (qid,)).fetchone() is None:
                con.execute("INSERT INTO review_queues VALUES (?,?,?,?,?)",
                            (qid, name, time.time(), items[0].threshold, len(items)))
                con.executemany("INSERT INTO review_items VALUES (?,?,?,?)",
                                [(qid, i, it.key, it.to_json()) for i, it in enumerate(items)])
        return self.info(qid)

    def list(self) -> list[QueueInfo]:
        rows = self.store.read("SELECT id, name, items, threshold, created FROM review_queues ORDER BY created DESC")
        return [QueueInfo(*r) for r in rows]

    def info(self, queue_id: str) -> QueueInfo:
        rows = self.store.read("SELECT id, name, items, threshold, created FROM review_queues WHERE id = ?",
                               (queue_id,))
        if not rows:
            raise InputError(f"There is no review queue {queue_id!r} in this annotation store.")
        return QueueInfo(*rows[0])

    def item(self, queue_id: str, position: int) -> ReviewItem:
        rows = self.store.read("SELECT payload FROM review_items WHERE queue_id = ? AND position = ?",
                               (queue_id, position))
        if not rows:
            raise InputError(f"Item {position + 1} is not in this review queue.")
        return ReviewItem.from_json(rows[0][0])

    def progress(self, queue_id: str, annotator: str | None) -> Progress:
        who = _named(annotator)
        total = self.info(queue_id).items
        decided = ("SELECT COUNT(DISTINCT i.position) FROM review_items i JOIN decisions d ON d.item_key = i.item_key"
                   " WHERE i.queue_id = ? AND d.undone IS NULL")
        mine = self.store.read(decided + " AND d.annotator = ?", (queue_id, who))[0][0]
        anyone = self.store.read(decided, (queue_id,))[0][0]
        return Progress(int(mine), total, int(anyone))

    def undecided(self, queue_id: str, annotator: str | None) -> int:
        """How many items the annotator has not decided (held by others right now included)."""
        p = self.progress(queue_id, annotator)
        return p.total - p.reviewed

    def next(self, queue_id: str, annotator: str | None) -> Claimed | None:
        """The annotator's next item, claimed for them (their earlier claim in this queue released);
        None when nothing is left for them now: every item decided (`undecided` is 0) or the rest held
        by others at the moment."""
        who = _named(annotator)
        self.info(queue_id)
        now = time.time()
        with self.store.transaction() as con:
            con.execute("DELETE FROM review_claims WHERE queue_id = ? AND (annotator = ? OR until < ?)",
                        (queue_id, who, now))
            position = _first_open(con, queue_id, who)
            if position is None:
                return None
            con.execute("INSERT INTO review_claims VALUES (?,?,?,?)",
                        (queue_id, position, who, now + self.claim_seconds))
        return self._claimed(queue_id, position, who)

    def held(self, queue_id: str, annotator: str | None) -> Claimed | None:
        """The item the annotator holds now (a reload of the page shows it again), if any."""
        who = _named(annotator)
        rows = self.store.read("SELECT position FROM review_claims WHERE queue_id = ? AND annotator = ? AND until >= ?",
                               (queue_id, who, time.time()))
        return self._claimed(queue_id, rows[0][0], who) if rows else None

    def decide(self, queue_id: str, position: int, annotator: str | None, decision: str,
               new_label: str | None = None) -> Decision:
        """Store the annotator's decision on the item they hold (checked like every decision) and release it."""
        who = _named(annotator)
        item = self.item(queue_id, position)
        with self.store.transaction() as con:
            held = con.execute("SELECT annotator FROM review_claims WHERE queue_id = ? AND position = ?",
                               (queue_id, position)).fetchone()
            if held is None or held[0] != who:
                raise InputError(f"Item {position + 1} is not yours to decide now (it was decided, skipped or "
                                 "handed to someone else): press Next for your next item.")
            d = self.store.record(con, item.candidate(), decision, new_label, who, source=f"review:{queue_id}")
            con.execute("DELETE FROM review_claims WHERE queue_id = ? AND position = ?", (queue_id, position))
            con.execute("DELETE FROM review_skips WHERE queue_id = ? AND position = ? AND annotator = ?",
                        (queue_id, position, who))
        return d

    def skip(self, queue_id: str, position: int, annotator: str | None) -> None:
        """Put the item after every not-yet-skipped one, for this annotator, and release it."""
        who = _named(annotator)
        with self.store.transaction() as con:
            con.execute("INSERT OR IGNORE INTO review_skips VALUES (?,?,?)", (queue_id, position, who))
            con.execute("DELETE FROM review_claims WHERE queue_id = ? AND position = ? AND annotator = ?",
                        (queue_id, position, who))

    def undo(self, queue_id: str, annotator: str | None) -> Claimed:
        """Take back the annotator's last decision in this queue and hand its item to them again."""
        who = _named(annotator)
        undone = self.store.undo_last(who, source=f"review:{queue_id}", elsewhere="Your last decision was not "
                                      "made in this queue; undo it where you made it.").undone
        found = self.store.read("SELECT position FROM review_items WHERE queue_id = ? AND item_key = ? LIMIT 1",
                                (queue_id, undone.candidate.key))
        position = int(found[0][0])
        with self.store.transaction() as con:
            con.execute("DELETE FROM review_claims WHERE queue_id = ? AND (annotator = ? OR position = ?)",
                        (queue_id, who, position))
            con.execute("INSERT INTO review_claims VALUES (?,?,?,?)",
                        (queue_id, position, who, time.time() + self.claim_seconds))
        return self._claimed(queue_id, position, who)

    def _claimed(self, queue_id: str, position: int, who: str) -> Claimed:
        return Claimed(queue_id, position, self.item(queue_id, position), self.progress(queue_id, who))


def _named(annotator: str | None) -> str:
    who = clean_annotator(annotator)
    if who == ANONYMOUS:
        raise InputError("Enter your annotator name first: the review queue keeps each annotator's progress.")
    return who


def _first_open(con: sqlite3.Connection, queue_id: str, who: str) -> int | None:
    """First item in queue order that `who` has not decided and nobody holds; skipped ones last."""
    row = con.execute(
        "SELECT i.position FROM review_items i"
        " LEFT JOIN review_skips s ON s.queue_id = i.queue_id AND s.position = i.position AND s.annotator = ?"
        " WHERE i.queue_id = ?"
        " AND NOT EXISTS (SELECT 1 FROM decisions d WHERE d.item_key = i.item_key AND d.annotator = ?"
        "                 AND d.undone IS NULL)"
        " AND NOT EXISTS (SELECT 1 FROM review_claims c WHERE c.queue_id = i.queue_id AND c.position = i.position)"
        " ORDER BY (s.position IS NOT NULL), i.position LIMIT 1", (who, queue_id, who)).fetchone()
    return None if row is None else int(row[0])
