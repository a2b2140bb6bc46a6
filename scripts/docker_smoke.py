"""Checks for scripts/docker_ci.sh: what the running container answers, and what it left in its volume.

    python scripts/docker_smoke.py text-image OUT.png [--text SPOTIFY]
    python scripts/docker_smoke.py app URL --image IMG --caption TEXT --annotator NAME
    python scripts/docker_smoke.py cli OUTPUT.json --read TEXT
    python scripts/docker_smoke.py db DB.sqlite3 --annotator NAME --caption TEXT

Each prints one JSON line of what it saw and exits 1 with the reason when a check fails.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
from pathlib import Path
from typing import Any


class CheckFailed(Exception):
    pass


def check(ok: bool, message: str) -> None:
    if not ok:
        raise CheckFailed(message)


def text_image(out: Path, text: str) -> dict[str, Any]:
    """A white image with `text` in big black letters (as tests/test_ocr.py draws them)."""
    import matplotlib
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.truetype(str(Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans-Bold.ttf"), 64)
    img = Image.new("RGB", (640, 200), "white")
    ImageDraw.Draw(img).text((40, 60), text, fill="black", font=font)
    img.save(out)
    return {"image": str(out), "text": text}


def app(url: str, image: str, caption: str, annotator: str) -> dict[str, Any]:
    """One /predict (image + caption) and one /annotate through gradio_client, as a user's script would."""
    from gradio_client import Client, handle_file

    client = Client(url, verbose=False)
    res = client.predict(handle_file(image), caption, 0.5, False, api_name="/predict")
    status, entities, relations, text_md = res[0], res[2], res[3], res[12]
    check(status.startswith("✅"), f"/predict status: {status!r}")
    names = [row[0] for row in entities["data"]]
    check(len(names) >= 2, f"/predict found fewer than two entities: {names}")
    check(all(name in caption for name in names), f"entities not in the caption: {names}")
    rows = relations["data"]
    check(bool(rows), "/predict returned no relation rows")
    check("OCR unavailable" not in text_md, f"the OCR engine did not load in the container: {text_md!r}")
    out = client.predict("1", "accept", None, annotator, 0.5, api_name="/annotate")
    check(out[0].startswith("✅"), f"/annotate status: {out[0]!r}")
    exported = client.predict(0.5, api_name="/export_graph")
    files = [f if isinstance(f, str) else f["path"] for f in exported[3] or []]
    check(any(f.endswith(".json") and Path(f).is_file() for f in files), f"/export_graph gave no graph.json: {files}")
    return {"status": status, "entities": names, "relations": rows, "image_text": text_md.splitlines()[0],
            "annotate": out[0], "exported": [Path(f).name for f in files]}


def cli(output: Path, read: str) -> dict[str, Any]:
    """`mmre predict --json` output (its last line): entities and pairs found, `read` read in the image."""
    lines = output.read_text(encoding="utf-8").strip().splitlines()
    check(bool(lines), f"{output} is empty")
    pred = json.loads(lines[-1])
    names = [e["text"] for e in pred["entities"]]
    check(len(names) >= 2, f"mmre predict found fewer than two entities: {names}")
    check(all(name in pred["caption"] for name in names), f"entities not in the caption: {names}")
    check(bool(pred["pairs"]), "mmre predict returned no pairs")
    check(all(0.0 <= p["probability"] <= 1.0 for p in pred["pairs"]), "a probability outside [0, 1]")
    check(pred["has_image"], "mmre predict did not see the image")
    read_lines = [ln["text"] for ln in (pred.get("image_text") or {}).get("lines", [])]
    check(any(read.lower() in t.lower() for t in read_lines), f"{read!r} not read in the image: {read_lines}")
    return {"entities": names, "pairs": [[p["head"]["text"], p["label"], p["tail"]["text"]] for p in pred["pairs"]],
            "read": read_lines, "device": pred["device"]}


def db(path: Path, annotator: str, caption: str) -> dict[str, Any]:
    """The annotation store written by the container holds the decision sent to /annotate."""
    check(path.is_file(), f"no annotation store at {path}")
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        rows = con.execute("SELECT caption, decision, relation FROM decisions WHERE annotator = ?",
                           (annotator,)).fetchall()
    finally:
        con.close()
    check(len(rows) == 1, f"expected one decision by {annotator!r} in {path}, found {len(rows)}")
    check(rows[0][0] == caption and rows[0][1] == "accept", f"unexpected decision: {rows[0]}")
    exports = sorted(p.name for p in (path.parent.parent / "exports").rglob("*graph.json"))
    check(bool(exports), f"no exported graph JSON under {path.parent.parent / 'exports'}")
    return {"db": str(path), "decision": list(rows[0]), "exports": exports}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("text-image")
    p.add_argument("out", type=Path)
    p.add_argument("--text", default="SPOTIFY")
    p = sub.add_parser("app")
    p.add_argument("url")
    p.add_argument("--image", required=True)
    p.add_argument("--caption", required=True)
    p.add_argument("--annotator", required=True)
    p = sub.add_parser("cli")
    p.add_argument("output", type=Path)
    p.add_argument("--read", required=True)
    p = sub.add_parser("db")
    p.add_argument("path", type=Path)
    p.add_argument("--annotator", required=True)
    p.add_argument("--caption", required=True)
    args = parser.parse_args(argv)
    try:
        if args.command == "text-image":
            seen = text_image(args.out, args.text)
        elif args.command == "app":
            seen = app(args.url, args.image, args.caption, args.annotator)
        elif args.command == "cli":
            seen = cli(args.output, args.read)
        else:
            seen = db(args.path, args.annotator, args.caption)
    except CheckFailed as exc:
        print(f"docker_smoke {args.command}: FAILED: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(seen, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
