"""App benchmarks against `python app.py` started as a subprocess on 127.0.0.1.

    .venv/bin/python benchmarks/bench_app.py [--port 7871] [--json out.json] [--clients 8 --requests 10]
        [--root CHECKOUT]   # serve another checkout's app.py (e.g. a `git worktree` of a baseline commit)
        [--client-nice 10]  # the clients (visitors elsewhere) run at a lower CPU priority than the server

Measures: app start -> first page (HTTP 200 on /), start -> model ready (first prediction), click -> full
results per example through gradio_client (median of 5), resident memory of the server after 50 requests,
and a load run (N concurrent gradio_client clients x M requests, every request a distinct image (one
pixel changed, so its text is read afresh) with its caption: errors, p50/p95 latency, requests/s).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def fresh_copy(path: str, k: int, folder: Path) -> str:
    """`path` with its top-left pixel nudged by `k`, saved in its own format under `folder`."""
    from PIL import Image

    img = Image.open(path).convert("RGB")
    r, g, b = img.getpixel((0, 0))
    img.putpixel((0, 0), ((r + k + 1) % 256, g, b))
    out = folder / f"{k}_{Path(path).name}"
    img.save(out, quality=95) if out.suffix.lower() in (".jpg", ".jpeg") else img.save(out)
    return str(out)


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q / 100 * (len(xs) - 1))))]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=7871)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--requests", type=int, default=10)
    ap.add_argument("--root", type=Path, default=ROOT, help="the checkout whose app.py is served")
    ap.add_argument("--client-nice", type=int, default=10,
                    help="CPU priority of the clients (this process) below the server's: the clients stand for "
                         "visitors on other machines (0: the same priority)")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()

    from gradio_client import Client, handle_file

    from mmre_demo.ui import examples

    env = dict(os.environ, GRADIO_SERVER_NAME="127.0.0.1", GRADIO_SERVER_PORT=str(args.port),
               GRADIO_ANALYTICS_ENABLED="False", HF_HUB_OFFLINE="1", HF_HUB_DISABLE_TELEMETRY="1",
               MMRE_ANNOTATIONS_DB=str(Path("/tmp") / f"mmre_bench_{os.getpid()}.sqlite3"))
    url = f"http://127.0.0.1:{args.port}/"
    tmp = tempfile.mkdtemp(prefix="mmre_bench_app_")
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, str(args.root / "app.py")], cwd=args.root, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.nice(args.client_nice)  # after the server started: it keeps the normal priority
    results: dict = {"root": str(args.root), "cpu_count": os.cpu_count(), "client_nice": args.client_nice}
    try:
        while True:
            try:
                with urllib.request.urlopen(url, timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None:
                raise SystemExit("app.py exited before serving")
            time.sleep(0.1)
        results["start_to_first_page_s"] = round(time.perf_counter() - t0, 2)
        client = Client(url, verbose=False)
        ex = examples()
        client.predict(None, ex[0]["caption"], 0.5, False, api_name="/predict")  # waits for the model
        results["start_to_model_ready_s"] = round(time.perf_counter() - t0, 2)

        per_example = {}
        n_requests = 1
        for e in ex:
            times = []
            for r in range(args.repeats):
                # a new file each click (one pixel changed): the app reads the image's text afresh, as for
                # a new upload, instead of answering from its per-image cache
                path = fresh_copy(e["path"], r, Path(tmp)) if e["path"] else None
                t = time.perf_counter()
                out = client.predict(handle_file(path) if path else None, e["caption"], 0.5, False,
                                     api_name="/predict")
                times.append(time.perf_counter() - t)
                n_requests += 1
                assert not out[0].startswith("❌"), out[0]
            per_example[e["image"] or "(no image)"] = round(statistics.median(times) * 1000)
        results[f"click_to_result_ms_median_of_{args.repeats}_fresh_uploads"] = per_example
        while n_requests < 50:
            e = ex[n_requests % len(ex)]
            client.predict(handle_file(e["path"]) if e["path"] else None, e["caption"], 0.5, False, api_name="/predict")
            n_requests += 1
        results["rss_mb_after_50_requests"] = round(rss_mb(proc.pid), 1)

        latencies: list[float] = []
        errors: list[str] = []
        lock = threading.Lock()

        def load_request(k: int, i: int) -> tuple[str | None, str]:
            e = ex[(k + i) % len(ex)]
            return (fresh_copy(e["path"], 100 + k * args.requests + i, Path(tmp)) if e["path"] else None), e["caption"]

        planned = [[load_request(k, i) for i in range(args.requests)] for k in range(args.clients)]

        def worker(k: int) -> None:
            c = Client(url, verbose=False)
            for path, caption in planned[k]:
                t = time.perf_counter()
                try:
                    out = c.predict(handle_file(path) if path else None, caption, 0.5, False,
                                    api_name="/predict")
                    ok = not out[0].startswith(("❌", "⚠️ The model"))
                    err = None if ok else out[0]
                except Exception as exc:  # noqa: BLE001
                    err = f"{type(exc).__name__}: {exc}"
                with lock:
                    latencies.append(time.perf_counter() - t)
                    if err:
                        errors.append(err)

        t = time.perf_counter()
        threads = [threading.Thread(target=worker, args=(k,)) for k in range(args.clients)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        wall = time.perf_counter() - t
        results["load"] = {"clients": args.clients, "requests_each": args.requests, "total": len(latencies),
                           "errors": len(errors), "error_samples": errors[:3],
                           "p50_ms": round(pct(latencies, 50) * 1000), "p95_ms": round(pct(latencies, 95) * 1000),
                           "throughput_rps": round(len(latencies) / wall, 2), "wall_s": round(wall, 1)}
        results["rss_mb_after_load"] = round(rss_mb(proc.pid), 1)
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
    print(json.dumps(results, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
