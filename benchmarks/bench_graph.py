"""Knowledge-graph view at corpus scale: layouts compared by measured overlap, the time to draw the
150-node view, and the time to open a 10,000-post corpus graph (issue 23).

    python benchmarks/bench_graph.py                      # all three, medians of --repeats
    python benchmarks/bench_graph.py --screenshot docs/graph_150.png   # also a picture of the 150-node view

The corpus is synthetic but shaped like `mmre extract`'s output (posts.jsonl + triples.jsonl with
entity spans, typed relations, a few hubs and many one-post pairs); graph.json is written from it by
`mmre_demo.extract.exports.write_exports`, the code `mmre extract` runs, and opened with the app's own
"Load graph" callback. Or pass --extract DIR: an `mmre extract` output folder to lay out instead.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from mmre_demo import graph as kg
from mmre_demo.graph.synthetic import synthetic_extract
from mmre_demo.logs import setup_logging

sys.path.insert(0, str(Path(__file__).resolve().parent))

from graph_layouts import LAYOUTS, layout_as, overlap_metrics  # noqa: E402

log = logging.getLogger("bench_graph")
def corpus_graph_json(folder: Path) -> Path:
    """graph.json of an extract folder, written by the code `mmre extract` runs."""
    from mmre_demo.extract.exports import GRAPH_JSON, write_exports

    write_exports(folder, threshold=0.0)
    return folder / GRAPH_JSON


def median_s(fn: Any, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def compare_layouts(g: Any, sizes: tuple[int, ...], repeats: int) -> list[dict[str, Any]]:
    rows = []
    for n in sizes:
        view, _ = kg.top_degree_view(g, n, 0.0, kinds=("entity",))  # the app's overview ranks entities
        names = {k: str(d.get("name", k)) for k, d in view.nodes(data=True)}
        deg = dict(view.degree())
        for method in LAYOUTS:
            for packed in (False, True):
                t = median_s(lambda v=view, m=method, p=packed: layout_as(v, m, p), repeats)
                m = overlap_metrics(layout_as(view, method, packed), names, deg)
                rows.append({"nodes": view.number_of_nodes(), "layout": method, "packed": packed,
                             **{k: round(v, 3) for k, v in m.items()}, "seconds": round(t, 3)})
                log.info("%s", rows[-1])
    return rows


def screenshot(fig: Any, out: Path, width: int = 1300) -> None:
    """The figure as a PNG, drawn by chromium from plotly's own HTML (no kaleido needed)."""
    from playwright.sync_api import sync_playwright

    html = Path(tempfile.mkdtemp()) / "graph.html"
    fig.write_html(str(html), include_plotlyjs=True, full_html=True, config={"displayModeBar": False})
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=shutil.which("chromium"),
                                    args=["--no-sandbox", "--disable-gpu", "--no-first-run"])
        page = browser.new_page(viewport={"width": width, "height": int(fig.layout.height or 640) + 40})
        page.goto(html.as_uri())
        page.wait_for_selector(".main-svg")
        page.screenshot(path=str(out), full_page=True)
        browser.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--posts", type=int, default=10_000, help="posts of the synthetic corpus (default 10,000)")
    ap.add_argument("--extract", help="an `mmre extract` output folder to compare the layouts on as well")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--screenshot", help="write a PNG of the 150-node view here")
    ap.add_argument("--json", action="store_true", help="print the results as JSON (last stdout line)")
    args = ap.parse_args()
    setup_logging()
    import torch  # noqa: F401 - loaded before timing, as in the app

    from mmre_demo.annotations import AnnotationStore
    from mmre_demo.ui import graph as gt
    from mmre_demo.ui import outputs
    from mmre_demo.ui.controller import Controller

    tmp = Path(tempfile.mkdtemp(prefix="bench_graph_"))
    results: dict[str, Any] = {}
    folder = synthetic_extract(tmp / "extract", args.posts)
    path = corpus_graph_json(folder)
    full = kg.read_graph(path)
    results["corpus"] = {"posts": args.posts, "nodes": full.number_of_nodes(), "edges": full.number_of_edges(),
                         "graph_json_mb": round(path.stat().st_size / 2**20, 1)}
    log.info("corpus %s", results["corpus"])
    results["layouts_synthetic"] = compare_layouts(full, (40, 150), args.repeats)
    if args.extract:
        results["layouts_extract"] = compare_layouts(kg.read_graph(corpus_graph_json(Path(args.extract))),
                                                     (40, 150), args.repeats)
    view150, note = kg.top_degree_view(full, 150, 0.0, kinds=("entity",))
    results["draw_150_s"] = round(median_s(lambda: kg.figure(view150, 0.0, title=note), args.repeats), 3)
    ctl = Controller(pipeline=object(), annotations=AnnotationStore(tmp / "a.sqlite3"), export_dir=tmp / "exp",
                     suggester_factory=None)
    out = {}

    def open_corpus() -> None:
        out.update(gt.load_graph(ctl, str(path), 0.5, None))

    results["open_10k_s"] = round(median_s(open_corpus, args.repeats), 3)
    s = out[outputs.Output.TAB]
    results["session_keeps"] = {"nodes": s.graph.number_of_nodes(), "edges": s.graph.number_of_edges()}
    results["status"] = out[outputs.Output.STATUS].message
    if args.screenshot:
        fig, _ = kg.figure(view150, 0.0, title=note)
        screenshot(fig, Path(args.screenshot))
        results["screenshot"] = args.screenshot
    for k, v in results.items():
        if not k.startswith("layouts"):
            print(f"{k}: {v}")
    for key in ("layouts_synthetic", "layouts_extract"):
        for r in results.get(key, []):
            print(f"{key}: {r}")
    if args.json:
        print(json.dumps(results))
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
