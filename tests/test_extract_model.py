"""`mmre extract` with the shipped model: the output equals `Pipeline.predict` post by post, a real SIGKILL /
SIGINT followed by `--resume` gives the uninterrupted run's files, and the Ray engine writes the same files."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import mmre_demo
from mmre_demo.extract import ExtractJob, PipelinePredictor, model_info, read_items, run_local
from mmre_demo.extract.posts import Post
from tests.support.extract_fakes import assert_same_outputs, read_jsonl, write_jsonl

pytestmark = pytest.mark.slow
REPO = Path(mmre_demo.__file__).resolve().parents[1]


def _val_posts(shared_data, n: int) -> list[Post]:
    posts = []
    for it in read_items(shared_data / "mnre" / "mnre_val.txt"):
        posts.append(it)
        if len(posts) == n:
            return posts
    return posts


def _corpus(shared_data, tmp: Path, n: int, images: int = 0) -> Path:
    """n MNRE val captions as JSON Lines; the first `images` get one of the sample images each."""
    sample = sorted((shared_data / "mnre_images_sample").glob("*.jpg"))[:images]
    rows = [{"id": p.id, "caption": p.caption, "image": str(sample[i]) if i < len(sample) else None}
            for i, p in enumerate(_val_posts(shared_data, n))]
    return write_jsonl(tmp / "corpus.jsonl", rows)


@pytest.fixture(scope="module")
def predictor(pipeline):
    return PipelinePredictor(pipeline, model_info())


def test_output_equals_pipeline_predict_per_post(shared_data, pipeline, predictor, tmp_path):
    f = _corpus(shared_data, tmp_path, 20, images=3)
    run_local(ExtractJob(f, tmp_path / "out", batch_size=8, progress=False), predictor)
    posts = read_jsonl(tmp_path / "out" / "posts.jsonl")
    triples = read_jsonl(tmp_path / "out" / "triples.jsonl")
    assert len(posts) == 20 and all(p["status"] == "ok" for p in posts)
    assert sum(p["has_image"] for p in posts) == 3
    n_rel = 0
    for row, post in zip(read_jsonl(f), posts):
        want = pipeline.predict(row["image"], row["caption"])
        assert post["entities"] == [e.to_dict() for e in want.entities]
        assert post["n_pairs"] == len(want.pairs) and post["concepts"] == [[c, round(s, 6)] for c, s in want.concepts]
        got = [t for t in triples if t["post_id"] == post["id"]]
        rels = want.relations()
        assert [(t["head"], t["tail"], t["relation"]) for t in got] == [
            (r.head.to_dict(), r.tail.to_dict(), r.label) for r in rels]
        for t, r in zip(got, rels):
            assert abs(t["probability"] - r.probability) < 1e-5
            assert (t["image_influence"] is None) == (r.image_influence is None)
            assert t["image_influence"] is None or abs(t["image_influence"] - r.image_influence) < 1e-5
            assert [lab for lab, _ in t["top_k"]] == [lab for lab, _ in r.top_k]
        n_rel += len(rels)
    assert len(triples) == n_rel > 0


# ---------------------------------------------------------------- a real kill, then --resume

@pytest.fixture(scope="module")
def kill_corpus(shared_data, predictor, tmp_path_factory):
    """60 MNRE val captions and the folder of an uninterrupted run (the reference)."""
    tmp = tmp_path_factory.mktemp("kill")
    f = _corpus(shared_data, tmp, 60)
    run_local(ExtractJob(f, tmp / "reference", batch_size=4, progress=False), predictor)
    return f, tmp / "reference"


def _cli(f: Path, out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "mmre_demo", "extract", str(f), "--out", str(out), "--batch-size", "4",
            "--no-progress", *extra]


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1"}


def _start_and_interrupt(f: Path, out: Path, sig: int) -> subprocess.CompletedProcess:
    """Start `mmre extract`, wait for its first committed batch, send `sig` at once. The child gets the
    default SIGINT handler whatever pytest was started under (a background job inherits SIGINT ignored,
    and Python then never raises KeyboardInterrupt)."""
    proc = subprocess.Popen(_cli(f, out), env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    posts = out / "posts.jsonl"
    deadline = time.monotonic() + 300
    while not (posts.is_file() and posts.stat().st_size > 0):
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "no batch written in 300 s"
        time.sleep(0.02)
    proc.send_signal(sig)
    stdout, stderr = proc.communicate(timeout=120)
    return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT], ids=["SIGKILL", "SIGINT"])
def test_killed_then_resumed_equals_uninterrupted(kill_corpus, tmp_path, sig):
    f, reference = kill_corpus
    out = tmp_path / "out"
    killed = _start_and_interrupt(f, out, sig)
    if sig == signal.SIGKILL:
        assert killed.returncode == -signal.SIGKILL
    else:
        assert killed.returncode == 130 and "--resume" in killed.stderr, killed.stderr
    written = len(read_jsonl(out / "posts.jsonl"))
    assert 0 < written < 60, "the kill must land in the middle of the job"
    resumed = subprocess.run(_cli(f, out, "--resume", "--json"), env=_env(), capture_output=True, text=True,
                             timeout=1800)
    assert resumed.returncode == 0, resumed.stderr
    summary = json.loads(resumed.stdout.strip().splitlines()[-1])
    assert summary["posts"] == 60 and summary["this_run"]["resumed_after"] >= written
    assert summary["model"]["version"] == model_info().version  # --json: the summary is stdout's last line
    assert_same_outputs(reference, out)


# ---------------------------------------------------------------- the Ray engine

def test_ray_engine_writes_the_local_engines_files(shared_data, predictor, tmp_path):
    pytest.importorskip("ray.data", reason="Ray Data is not installed (pip install -e '.[distributed]')")
    from mmre_demo.extract.predictor import PredictorSpec
    from mmre_demo.extract.ray_engine import run_ray

    f = _corpus(shared_data, tmp_path, 8, images=2)
    rows = read_jsonl(f) + ["{broken", {"id": "x", "caption": "Messi in Madrid", "image": "nope.jpg"}]
    write_jsonl(f, rows)
    local, ray_out = tmp_path / "local", tmp_path / "ray"
    run_local(ExtractJob(f, local, batch_size=4, progress=False), predictor)
    # resume across engines: the Ray run continues a folder the local engine started
    partial = ExtractJob(f, ray_out, batch_size=4, progress=False)
    with pytest.raises(RuntimeError):
        run_local(partial, _FailAfter(predictor, 1))
    assert 0 < len(read_jsonl(ray_out / "posts.jsonl")) < 10
    summary = run_ray(ExtractJob(f, ray_out, batch_size=4, resume=True, progress=False), PredictorSpec(threads=1),
                      actors=1, num_cpus=2)
    assert summary["engine"] == "ray" and summary["posts"] == 10 and summary["errors"] == 2
    assert not (ray_out / "_pending.jsonl").exists()
    assert_same_outputs(local, ray_out)


class _FailAfter:
    """Wraps a predictor; raises after `n` batches (a crash in the middle of a job)."""

    def __init__(self, inner, n):
        self.inner, self.n, self.info, self.settings = inner, n, inner.info, inner.settings

    def predict_batch(self, batch):
        if self.n == 0:
            raise RuntimeError("simulated crash")
        self.n -= 1
        return self.inner.predict_batch(batch)

