"""`mmre annotations export | import | stats | label-studio-config`: the annotators' decisions in and out
of the store (formats in `mmre_demo/annotations/formats.py`; docs/annotations.md)."""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    from mmre_demo.annotations.formats import FORMATS, LS_LOCAL_FILES

    a = sub.add_parser("annotations", help="export, import and count the annotators' decisions")
    asub = a.add_subparsers(dest="annotations_command", required=True)

    e = asub.add_parser("export", help="the standing decisions as MNRE lines, JSONL or Label Studio tasks")
    e.add_argument("--db", required=True, help="annotation store (SQLite)")
    e.add_argument("--format", choices=FORMATS, required=True)
    e.add_argument("--annotator", help="only this annotator's decisions (default: everyone's)")
    e.add_argument("--history", action="store_true",
                   help="jsonl only: every decision ever made, superseded and undone ones included")
    e.add_argument("--image-prefix", default=LS_LOCAL_FILES,
                   help="label-studio: put this before each img_id in data.image (default: %(default)s: Label "
                        "Studio serves images/<img_id> under its LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT through a "
                        "local storage on that images folder; docs/annotations.md)")
    e.add_argument("--no-annotator-names", action="store_true",
                   help="label-studio: leave the annotators' names out (the import then takes Label Studio's users)")
    e.add_argument("--completed-by", action="store_true",
                   help="label-studio: also name each annotator as completed_by.email (only when the names are "
                        "e-mails of the Label Studio project's users: it refuses any other)")
    e.add_argument("-o", "--out", required=True, help="file to write")
    e.set_defaults(handler=cmd_export)

    i = asub.add_parser("import", help="add the decisions of a Label Studio JSON export to the store "
                                       "(all checked first: a bad file stores nothing)")
    i.add_argument("file", help="Label Studio JSON export (tasks with annotations)")
    i.add_argument("--format", choices=["label-studio"], default="label-studio")
    i.add_argument("--db", required=True, help="annotation store (created when missing)")
    i.add_argument("--annotator", help="record every decision under this name (default: completed_by)")
    i.set_defaults(handler=cmd_import)

    s = asub.add_parser("stats", help="decisions per annotator, decision and relation; agreement (Cohen's kappa)")
    s.add_argument("--db", required=True, help="annotation store (SQLite)")
    s.add_argument("--json", action="store_true", help="one JSON object instead of tables")
    s.set_defaults(handler=cmd_stats)

    c = asub.add_parser("label-studio-config", help="print the Label Studio labeling config for these exports")
    c.set_defaults(handler=cmd_config)


def _existing_store(db: str):
    """A store that must already exist: a typo in --db must not create an empty one and export nothing."""
    from mmre_demo.annotations import AnnotationStore
    from mmre_demo.data.schema import InputError

    if not Path(db).is_file():
        raise InputError(f"--db {db}: no such annotation store")
    return AnnotationStore(db)


def cmd_export(args: argparse.Namespace) -> int:
    from mmre_demo.annotations import formats
    from mmre_demo.annotations.store import mnre_text
    from mmre_demo.data.schema import InputError

    store = _existing_store(args.db)
    if args.history and args.format != "jsonl":
        raise InputError("--history is for --format jsonl (the other formats hold the standing decisions)")
    if args.history:
        decisions = [d for d in store.all() if args.annotator is None or d.annotator == args.annotator]
    else:
        decisions = store.current(args.annotator)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if args.format == "mnre":
        out.write_text(mnre_text(decisions), encoding="utf-8")
    elif args.format == "jsonl":
        out.write_text(formats.jsonl_text(decisions), encoding="utf-8")
    else:
        tasks = formats.label_studio_tasks(decisions, args.image_prefix, not args.no_annotator_names,
                                           args.completed_by)
        out.write_text(json.dumps(tasks, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    print(json.dumps({"format": args.format, "decisions": len(decisions), "out": str(out)}))
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    from mmre_demo.annotations import AnnotationStore
    from mmre_demo.annotations.formats import label_studio_decisions
    from mmre_demo.data.schema import InputError

    path = Path(args.file)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    decisions = label_studio_decisions(text, str(path), args.annotator)  # every one checked before any is stored
    stored = AnnotationStore(args.db).add_many(decisions, source=f"import:{path.name}") if decisions else 0
    print(json.dumps({"imported": stored, "by_decision": dict(Counter(d[1] for d in decisions)),
                      "annotators": sorted({d[3] for d in decisions}), "db": args.db}))
    return 0


def stats(store) -> dict:
    """Counts of the standing decisions (per annotator, decision, relation), the history's size and the
    agreement of every pair of annotators on the pairs both decided."""
    from mmre_demo.annotations.agreement import agreement, agreement_rows

    current = store.current()
    return {"decisions_standing": len(current), "decisions_ever": store.count(),
            "per_annotator": dict(Counter(d.annotator for d in current).most_common()),
            "per_decision": dict(Counter(d.decision for d in current).most_common()),
            "per_relation": dict(Counter(d.relation for d in current).most_common()),
            "agreement": agreement_rows(agreement(current))}


def _table(headers: list[str], rows: list[list]) -> str:
    """A plain fixed-width table (numbers right-aligned) for a terminal."""
    cells = [[("-" if v is None else str(v)) for v in r] for r in rows]
    widths = [max(len(h), *(len(r[k]) for r in cells)) if cells else len(h) for k, h in enumerate(headers)]
    numeric = [all(isinstance(r[k], (int, float)) or r[k] is None for r in rows) and rows for k in range(len(headers))]

    def line(values: list[str]) -> str:
        return "  ".join(v.rjust(w) if numeric[k] else v.ljust(w) for k, (v, w) in enumerate(zip(values, widths)))

    return "\n".join([line(headers), line(["-" * w for w in widths]), *(line(r) for r in cells)])


def cmd_stats(args: argparse.Namespace) -> int:
    from mmre_demo.annotations.agreement import AGREEMENT_HEADERS

    result = stats(_existing_store(args.db))
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"{result['decisions_standing']} standing decisions ({result['decisions_ever']} ever made, "
          "superseded and undone included)\n")
    for title, key in (("annotator", "per_annotator"), ("decision", "per_decision"), ("relation", "per_relation")):
        print(_table([title, "decisions"], [[k, v] for k, v in result[key].items()]) + "\n")
    if result["agreement"]:
        print("agreement on the pairs two annotators both decided (per relation: that relation against the rest)")
        print(_table(AGREEMENT_HEADERS, result["agreement"]))
    else:
        print("agreement: no pair was decided by two annotators")
    sys.stdout.flush()
    return 0


def cmd_config(args: argparse.Namespace) -> int:
    from mmre_demo.annotations.formats import label_studio_config

    print(label_studio_config(), end="")
    return 0
