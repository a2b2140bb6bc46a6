"""`mmre predict` start-up, this tree against a baseline commit, in one sitting (run by hand, not a test).

    python benchmarks/bench_startup.py [--baseline 63f0983] [--repeats 5]

Each round runs one whole `mmre predict` process per side, alternately (A B A B ...): the astronaut photo and
a caption where the tagger finds 3 entities, OCR off (`--no-read-text`), `--json`. Reported per side: the
median wall and CPU time of the process (imports, `Pipeline.load`, one prediction, exit), and how many transformers
"LOAD REPORT" blocks reached stderr, both from the CLI and from a plain `Pipeline.load()` in Python (the
library without `mmre_demo.logs.setup_logging`, as a notebook has it). The baseline is a `git worktree`
(bench_vs_baseline.baseline_tree); each side runs its own code and its own shipped weights. Quote the load
of the machine.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_vs_baseline import CAPTION, REPO, baseline_tree, env_for  # noqa: E402

CLI = "import sys; from mmre_demo.cli import main; sys.exit(main())"
LIBRARY = "from mmre_demo.pipeline import Pipeline; Pipeline.load(read_text=False)"


def run_cli(tree: Path) -> tuple[float, float, int]:
    """Wall and CPU seconds (user + system: less sensitive to other jobs on the machine) of one `mmre predict`
    process, and the LOAD REPORT blocks on its stderr."""
    image = tree / "assets" / "astronaut.jpg"
    cmd = [sys.executable, "-c", CLI, "predict", "--image", str(image), "--caption", CAPTION, "--no-read-text",
           "--json"]
    before, t = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
    res = subprocess.run(cmd, cwd=tree, env=env_for(tree), capture_output=True, text=True, check=True)
    seconds, after = time.perf_counter() - t, resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    pairs = len(json.loads(res.stdout.strip().splitlines()[-1])["pairs"])
    assert pairs == 3, f"{tree}: {pairs} pairs (3 entities expected)"
    return seconds, cpu, res.stderr.count("LOAD REPORT")


def library_reports(tree: Path) -> int:
    """LOAD REPORT blocks on stderr from `Pipeline.load()` in plain Python (no logging set-up)."""
    res = subprocess.run([sys.executable, "-c", LIBRARY], cwd=tree, env=env_for(tree), capture_output=True,
                         text=True, check=True)
    return res.stderr.count("LOAD REPORT")


def check_sources(tree: Path) -> None:
    """Each side must import its own package (PYTHONPATH ahead of the editable install)."""
    res = subprocess.run([sys.executable, "-c", "import mmre_demo; print(mmre_demo.__file__)"], cwd=tree,
                         env=env_for(tree), capture_output=True, text=True, check=True)
    assert Path(res.stdout.strip()).resolve().is_relative_to(tree.resolve()), res.stdout


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--baseline", default="63f0983")
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    trees = {"this tree": REPO, args.baseline: baseline_tree(args.baseline)}
    for tree in trees.values():
        check_sources(tree)
        run_cli(tree)  # warm the file cache of both sides alike
    walls: dict[str, list[float]] = {k: [] for k in trees}
    cpus: dict[str, list[float]] = {k: [] for k in trees}
    cli_reports: dict[str, int] = {}
    for _ in range(args.repeats):
        for side, tree in trees.items():
            seconds, cpu, cli_reports[side] = run_cli(tree)
            walls[side].append(seconds)
            cpus[side].append(cpu)
    result: dict = {side: {"median_s": round(statistics.median(walls[side]), 2),
                           "median_cpu_s": round(statistics.median(cpus[side]), 2),
                           "runs_s": [round(s, 2) for s in walls[side]], "load_reports_cli": cli_reports[side],
                           "load_reports_library": library_reports(tree)}
                    for side, tree in trees.items()}
    this, base = (result[k] for k in trees)
    result["ratio"] = round(this["median_s"] / base["median_s"], 3)
    result["cpu_ratio"] = round(this["median_cpu_s"] / base["median_cpu_s"], 3)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
