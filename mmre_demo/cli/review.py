"""`mmre review open FOLDER`, `mmre review list`, `mmre review walk QUEUE --annotator NAME`: the app's
review queue from a terminal (the same queues, the same store: start here, continue in the app)."""

from __future__ import annotations

import argparse
import sys
from typing import TextIO


def register(sub: argparse._SubParsersAction) -> None:
    r = sub.add_parser("review", help="review queues over an `mmre extract` folder (shared with the app's Review tab)")
    rsub = r.add_subparsers(dest="review_command", required=True)

    o = rsub.add_parser("open", help="classify an extract folder's posts again (every pair) and store its queue")
    o.add_argument("folder", help="an `mmre extract` output folder (or its posts.jsonl)")
    o.add_argument("--db", help="annotation store (default: $MMRE_ANNOTATIONS_DB or runs/annotations/...)")
    o.add_argument("--images", nargs="*", default=None, help="image files the posts name (default: the folder's "
                                                                "images setting)")
    o.add_argument("--weights", help="weights folder (default: the shipped weights)")
    o.set_defaults(handler=cmd_open)

    ls = rsub.add_parser("list", help="the queues in the store, with your progress when --annotator is given")
    ls.add_argument("--db")
    ls.add_argument("--annotator")
    ls.set_defaults(handler=cmd_list)

    w = rsub.add_parser("walk", help="decide a queue's items in the terminal: a accept, r reject, 1-9 relabel, "
                                     "s skip, u undo, q quit")
    w.add_argument("queue", help="queue id (see `mmre review list`)")
    w.add_argument("--annotator", required=True)
    w.add_argument("--db")
    w.set_defaults(handler=cmd_walk)


def _queues(db: str | None):
    from mmre_demo.annotations import AnnotationStore
    from mmre_demo.annotations.review import ReviewQueues

    return ReviewQueues(AnnotationStore(db))


def cmd_open(args: argparse.Namespace) -> int:
    from pathlib import Path

    from mmre_demo.annotations.review import review_items
    from mmre_demo.annotations.sources import extract_posts
    from mmre_demo.pipeline import Pipeline

    queues = _queues(args.db)
    pipe = Pipeline.load(weights=args.weights, device="auto")

    def progress(done: int, total: int) -> None:
        print(f"\r{done} of {total} posts classified", end="", file=sys.stderr, flush=True)

    posts = list(extract_posts(args.folder, pipe, queues.store, args.images, progress=progress))
    print(file=sys.stderr)
    info = queues.create(f"{Path(args.folder).name} ({len(posts)} posts)", review_items(posts, pipe.threshold))
    print(f"queue {info.id}: {info.items} pairs of {len(posts)} posts ({info.name}); "
          f"walk it with `mmre review walk {info.id} --annotator NAME` or in the app's Review tab")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    queues = _queues(args.db)
    listed = queues.list()
    if not listed:
        print("no review queues in this store")
    for q in listed:
        mine = f"  {queues.progress(q.id, args.annotator).text()}" if args.annotator else ""
        print(f"{q.id}  {q.items:6d} pairs  {q.name}{mine}")
    return 0


def _show(claimed, out: TextIO) -> list[str]:
    item = claimed.item
    labels = item.relabel_choices()[:9]
    print(f"\n[{claimed.progress.text()}] item {claimed.position + 1}: {item.reason.value}", file=out)
    print(f"  {item.caption}", file=out)
    print(f"  {item.head.text} ({item.head.type or '?'}) -> {item.label} -> {item.tail.text} ({item.tail.type or '?'})"
          f"  p={item.probability:.2f} (threshold {item.threshold:.2f})", file=out)
    if item.image_text:
        print(f"  read in the image: {'; '.join(item.image_text[:6])}", file=out)
    print("  relabel: " + ("  ".join(f"{i}={lab}" for i, lab in enumerate(labels, start=1)) or
                           f"no other relation fits a {item.head.type or '?'} -> {item.tail.type or '?'} pair"),
          file=out)
    return labels


def cmd_walk(args: argparse.Namespace, stdin: TextIO | None = None, out: TextIO | None = None) -> int:
    """One key per line on stdin; ends at q, at the end of input, or when nothing is left."""
    from mmre_demo.data.schema import InputError

    stdin, out = stdin or sys.stdin, out or sys.stdout
    queues = _queues(args.db)
    qid, who = args.queue, args.annotator
    claimed = queues.held(qid, who) or queues.next(qid, who)
    while claimed is not None:
        labels = _show(claimed, out)
        print("  [a]ccept [r]eject [1-9] relabel [s]kip [u]ndo [q]uit > ", end="", file=out, flush=True)
        key = stdin.readline().strip().lower()
        try:
            if key in ("", "q"):
                break
            if key == "a":
                queues.decide(qid, claimed.position, who, "accept")
            elif key == "r":
                queues.decide(qid, claimed.position, who, "reject")
            elif key.isdigit() and 1 <= int(key) <= len(labels):
                queues.decide(qid, claimed.position, who, "relabel", labels[int(key) - 1])
            elif key == "s":
                queues.skip(qid, claimed.position, who)
            elif key.isdigit():
                print(f"  no relation numbered {key} fits this pair (choose from the relabel line)", file=out)
                continue
            elif key == "u":
                claimed = queues.undo(qid, who)
                continue
            else:
                print(f"  unknown key {key!r}", file=out)
                continue
        except InputError as exc:
            print(f"  {exc}", file=out)
            continue
        claimed = queues.next(qid, who)
    print(f"\n{queues.progress(qid, who).text()}", file=out)
    return 0
