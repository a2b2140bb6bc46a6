"""Text in the image on the 34 MNRE sample images: OCR time per image, and what gets grounded.

Usage (run by hand; numbers depend on the machine and its load):
  .venv/bin/python benchmarks/bench_ocr.py [--max-side 800 960 1280] [--repeats 3] [--threads 2] [--stages]
  .venv/bin/python benchmarks/bench_ocr.py --table [--tagger]     # markdown table for docs/image_text.md
  .venv/bin/python benchmarks/bench_ocr.py --bad-input             # the issue's bad inputs

Timing: each image is read `--repeats` times with the cache cleared (engine loaded and warmed up
first); median and p90 are over all reads: wall-clock ms, and CPU ms of the process (all threads;
less sensitive to other jobs on a shared machine: with 1 thread it is close to the idle wall time).
`--threads` defaults to the reader's own (TextReader.threads). `--stages` adds each stage's median
and mean ms: resize (the rest of a read), detect, classify (orientation), recognise; it also times
an engine without `last_stages` (an older commit, run from a git worktree) by wrapping RapidOCR's
stage methods.
The table pairs each image with its MNRE caption(s)
(train + val lines whose img_id is the image) and their gold head/tail names, and lists which
names `ground_entities` grounds; `--tagger` adds the grounding of the entities the NER tagger finds
in the caption (what the app grounds) and the names it finds only in the image.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mmre_demo.data.paths import shared_data_dir
from mmre_demo.data.schema import Entity
from mmre_demo.encoders.ocr import DEFAULT_MAX_SIDE, ImageText, TextReader
from mmre_demo.grounding import also_in_image, ground_entities


def captions_by_image(mnre_dir: Path, images: set[str]) -> dict[str, list[tuple[str, list[str]]]]:
    """img_id -> [(caption, [gold names of that caption's lines])] from train + val."""
    out: dict[str, dict[str, list[str]]] = {}
    for split in ("train", "val"):
        for line in (mnre_dir / f"mnre_{split}.txt").read_text(encoding="utf-8").splitlines():
            d = ast.literal_eval(line)
            if d["img_id"] not in images:
                continue
            names = out.setdefault(d["img_id"], {}).setdefault(" ".join(d["token"]), [])
            for key in ("h", "t"):
                if d[key]["name"] not in names:
                    names.append(d[key]["name"])
    return {k: list(v.items()) for k, v in out.items()}


def percentile(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))]


STAGES = ("resize", "detect", "classify", "recognise")


def stage_clock(engine: Any) -> Callable[[], dict[str, float]]:
    """A function giving the ms of each engine stage in the engine's last call.

    The engine's own `last_stages` when it keeps them; otherwise (the engine before it did, run from
    a git worktree of an older commit) RapidOCR's stage callables are wrapped to time them.
    """
    if hasattr(engine, "last_stages"):
        return lambda: dict(engine.last_stages)
    ocr, spent = engine.ocr, {}

    def timed(run: Callable[..., Any], stage: str) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return run(*args, **kwargs)
            finally:
                spent[stage] = spent.get(stage, 0.0) + (time.perf_counter() - t0) * 1000
        return call

    for attr, stage in (("auto_text_det", "detect"), ("text_cls", "classify"), ("text_rec", "recognise")):
        setattr(ocr, attr, timed(getattr(ocr, attr), stage))

    def last() -> dict[str, float]:
        out = {stage: spent.get(stage, 0.0) for stage in STAGES[1:]}
        spent.clear()
        return out
    return last


def time_reads(paths: list[Path], max_side: int, repeats: int, threads: int | None, caps: dict,
               stages: bool = False) -> dict[str, Any]:
    reader = TextReader(max_side=max_side, threads=threads)
    t0 = time.perf_counter()
    reader.load()
    load_s = time.perf_counter() - t0
    clock = stage_clock(reader._engine) if stages else None
    times, cpu = [], []
    per_stage: dict[str, list[float]] = {stage: [] for stage in STAGES}
    for _ in range(repeats):
        reader.clear_cache()
        for p in paths:
            c0 = time.process_time()
            ms = reader.read(p).seconds * 1000
            times.append(ms)
            cpu.append((time.process_time() - c0) * 1000)
            if clock is not None:
                spent = clock()
                spent["resize"] = ms - sum(spent.values())  # the rest of the read: resizing, boxes
                for stage in STAGES:
                    per_stage[stage].append(spent.get(stage, 0.0))
    lines = sum(len(reader.read(p).lines) for p in paths)
    grounded = sorted({g.entity.text for p in paths for _, names in caps.get(p.name, [])
                       for g in ground_entities([Entity(n, 0, len(n)) for n in names], reader.read(p))})
    return {"max_side": max_side, "reads": len(times), "load_s": round(load_s, 2),
            "median_ms": round(statistics.median(times), 1), "p90_ms": round(percentile(times, 0.9), 1),
            "max_ms": round(max(times), 1), "median_cpu_ms": round(statistics.median(cpu), 1),
            "p90_cpu_ms": round(percentile(cpu, 0.9), 1), "lines_kept": lines, "gold_grounded": grounded,
            "loadavg_1min_after": round(os.getloadavg()[0], 2),
            **({"stage_median_ms": {k: round(statistics.median(v), 1) for k, v in per_stage.items()},
                "stage_mean_ms": {k: round(statistics.mean(v), 1) for k, v in per_stage.items()}}
               if stages else {})}


def short(text: str, n: int = 70) -> str:
    text = text.replace("\n", " / ").replace("|", "¦")
    return text if len(text) <= n else text[: n - 1] + "…"


def table(paths: list[Path], reader: TextReader, caps: dict, tagger) -> None:
    extra_cols = " tagger's caption entities grounded | also in the image (tagger) |" if tagger else ""
    print(f"| image | text read (conf. >= {reader.min_confidence:.2f}) | caption | gold names "
          f"| gold names grounded (matched text, how) |{extra_cols}")
    print("|---|---|---|---|---|" + ("---|---|" if tagger else ""))
    n_names = n_grounded = 0
    for p in paths:
        it: ImageText = reader.read(p)
        read = " / ".join(f"{line.text} ({line.confidence:.2f})" for line in it.lines) or "—"
        for caption, names in caps.get(p.name, [("(no caption)", [])]):
            ents = [Entity(n, 0, len(n)) for n in names]
            grounded = ground_entities(ents, it)
            n_names += len(names)
            n_grounded += len(grounded)
            g = "; ".join(f"**{x.entity.text}** ← {x.matched_text!r} ({x.how}, {x.score:.2f})" for x in grounded) or "—"
            row = f"| {p.stem[-22:]} | {short(read, 90)} | {short(caption)} | {', '.join(names)} | {g} |"
            if tagger:
                tagged = tagger.tag(caption)
                g2 = ground_entities(tagged, it)
                row += " " + ("; ".join(f"**{x.entity.text}** ← {x.matched_text!r}" for x in g2) or "—") + " |"
                extra = also_in_image(tagger, it, tagged, caption)
                row += " " + (", ".join(f"{e.text} ({e.type}, {e.confidence:.2f})" for e in extra) or "—") + " |"
            print(row)
    print(f"\n{n_grounded} of {n_names} gold names grounded.")


def bad_inputs() -> dict[str, object]:
    """The issue's bad inputs, made with PIL (DejaVu Sans from matplotlib)."""
    import io
    import struct
    import zlib

    import matplotlib
    import numpy as np
    from PIL import Image, ImageDraw, ImageFont

    font = str(Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans-Bold.ttf")

    def text_image(text: str = "SPOTIFY") -> Image.Image:
        img = Image.new("RGB", (640, 200), "white")
        ImageDraw.Draw(img).text((40, 60), text, fill="black", font=ImageFont.truetype(font, 64))
        return img

    def encoded(img: Image.Image, fmt: str, **kw) -> bytes:
        buf = io.BytesIO()
        img.save(buf, format=fmt, **kw)
        return buf.getvalue()

    page = Image.new("RGB", (960, 720), "white")
    draw, small = ImageDraw.Draw(page), ImageFont.truetype(font, 18)
    words = "the quick brown fox jumps over the lazy dog while Spotify plays".split()
    for i in range(25):  # 500 words
        draw.text((10, 10 + 28 * i), " ".join(words[(i + k) % len(words)] for k in range(20)), fill="black", font=small)
    png = encoded(Image.new("L", (4, 4)), "PNG")  # then its header rewritten to claim 20000 x 20000
    ihdr = b"IHDR" + struct.pack(">IIBBBBB", 20000, 20000, 8, 0, 0, 0, 0)
    bomb = png[:8] + struct.pack(">I", 13) + ihdr + struct.pack(">I", zlib.crc32(ihdr) & 0xFFFFFFFF) + png[33:]
    grey16 = Image.fromarray(np.asarray(text_image().convert("L"), dtype=np.uint16) * 257)
    frames = [text_image().convert("P"), text_image("BERLIN").convert("P")]
    return {
        "no text (flat colour)": Image.new("RGB", (640, 480), (120, 160, 200)),
        "500 words": page,
        "upside down": text_image().rotate(180),
        "quarter turn": text_image().rotate(90, expand=True),
        "CMYK JPEG": encoded(text_image().convert("CMYK"), "JPEG", quality=95),
        "16-bit PNG": encoded(grey16, "PNG"),
        "animated GIF (2nd frame BERLIN)": encoded(frames[0], "GIF", save_all=True, append_images=frames[1:]),
        "20000 x 20000 PNG": bomb,
        "4000 x 3": Image.new("RGB", (4000, 3), "white"),
    }


def run_bad_inputs(threads: int | None) -> None:
    from mmre_demo.data.schema import InputError

    reader = TextReader(threads=threads)
    reader.load()
    for name, image in bad_inputs().items():
        c0 = time.process_time()
        try:
            res = reader.read(image)
            out = {"lines": [line.text for line in res.lines][:3], "n_lines": len(res.lines), "note": res.note,
                   "wall_ms": round(res.seconds * 1000), "cpu_ms": round((time.process_time() - c0) * 1000)}
        except InputError as exc:
            out = {"InputError": str(exc)}
        print(json.dumps({"case": name, **out}, ensure_ascii=False))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=Path, default=shared_data_dir() / "mnre_images_sample")
    ap.add_argument("--mnre", type=Path, default=shared_data_dir() / "mnre")
    ap.add_argument("--max-side", type=int, nargs="+", default=[DEFAULT_MAX_SIDE])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=None, help="onnxruntime intra-op threads (default: the reader's)")
    ap.add_argument("--stages", action="store_true",
                    help="also print each stage's median / mean ms (resize, detect, classify, recognise)")
    ap.add_argument("--table", action="store_true", help="print the grounding table (first --max-side)")
    ap.add_argument("--tagger", action="store_true", help="with --table: also list names only in the image")
    ap.add_argument("--bad-input", action="store_true", help="read the issue's bad inputs (made with PIL) instead")
    args = ap.parse_args()

    if args.bad_input:
        run_bad_inputs(args.threads)
        return
    paths = sorted(args.images.glob("*.jpg"))
    if not paths:
        raise SystemExit(f"no images in {args.images}")
    if args.table:
        reader = TextReader(max_side=args.max_side[0], threads=args.threads)
        caps = captions_by_image(args.mnre, {p.name for p in paths})
        tagger = None
        if args.tagger:
            from mmre_demo.model.ner import NerTagger
            from mmre_demo.serving import serving_tagger

            tagger = serving_tagger(NerTagger.from_pretrained())
        table(paths, reader, caps, tagger)
        return
    print(json.dumps({"images": len(paths), "threads": args.threads, "cpus": os.cpu_count(),
                      "loadavg_1min": round(os.getloadavg()[0], 2)}))
    caps = captions_by_image(args.mnre, {p.name for p in paths})
    for side in args.max_side:
        print(json.dumps(time_reads(paths, side, args.repeats, args.threads, caps, args.stages)))


if __name__ == "__main__":
    main()
