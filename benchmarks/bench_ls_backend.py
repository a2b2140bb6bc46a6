"""Latency of `mmre label-studio-backend` per task, through HTTP /predict (run by hand, not a test).

    python benchmarks/bench_ls_backend.py [--n 20] [--port 0]

Starts the backend as Label Studio would find it (`mmre label-studio-backend`, its own process, on a free
127.0.0.1 port), waits for /health, then posts the first N distinct MNRE val captions (`../shared/data` or
$MMRE_DATA_DIR), text only, one task per /predict request as Label Studio's one-by-one retrieval sends them
(with the project's labeling config), after one warm-up request; then all N in one request. Reports the
median, p90 and max seconds per single-task request, the batch's seconds per task, and how many relations the
tasks got. Quote the load of the machine.
"""

from __future__ import annotations

import argparse
import ast
import json
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from mmre_demo.annotations.formats import label_studio_config  # noqa: E402
from mmre_demo.data.paths import shared_data_dir  # noqa: E402


def captions(n: int) -> list[str]:
    out: list[str] = []
    for line in (shared_data_dir() / "mnre" / "mnre_val.txt").read_text(encoding="utf-8").splitlines():
        text = " ".join(ast.literal_eval(line)["token"])
        if text not in out:
            out.append(text)
        if len(out) == n:
            break
    return out


def post(url: str, body: dict) -> dict:
    req = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=120) as resp:
        return json.load(resp)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=20)
    ap.add_argument("--port", type=int, default=0, help="0: a free one")
    args = ap.parse_args()
    port = args.port or free_port()
    base = f"http://127.0.0.1:{port}"
    cmd = [sys.executable, "-m", "mmre_demo", "label-studio-backend", "--port", str(port), "--no-read-text"]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        started = time.perf_counter()
        while True:
            try:
                with urllib.request.urlopen(f"{base}/health", timeout=2) as resp:
                    version = json.load(resp)["model_version"]
                break
            except OSError:
                if proc.poll() is not None or time.perf_counter() - started > 180:
                    raise SystemExit("the backend did not come up") from None
                time.sleep(0.5)
        up = time.perf_counter() - started
        config = label_studio_config()
        texts = captions(args.n)
        post(f"{base}/predict", {"tasks": [{"id": 0, "data": {"text": texts[0]}}], "label_config": config})
        seconds, relations = [], 0
        for i, text in enumerate(texts, start=1):
            t = time.perf_counter()
            out = post(f"{base}/predict", {"tasks": [{"id": i, "data": {"text": text}}], "label_config": config})
            seconds.append(time.perf_counter() - t)
            relations += sum(r["type"] == "relation" for r in out["results"][0]["result"])
        t = time.perf_counter()
        post(f"{base}/predict", {"tasks": [{"id": i, "data": {"text": x}} for i, x in enumerate(texts)],
                                 "label_config": config})
        batch = (time.perf_counter() - t) / len(texts)
        seconds.sort()
        print(json.dumps({"model_version": version, "tasks": len(texts), "up_s": round(up, 1),
                          "median_s": round(statistics.median(seconds), 3),
                          "p90_s": round(seconds[int(0.9 * (len(seconds) - 1))], 3), "max_s": round(seconds[-1], 3),
                          "batch_s_per_task": round(batch, 3), "relations": relations}))
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()


if __name__ == "__main__":
    main()
