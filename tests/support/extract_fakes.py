"""A deterministic stand-in for the model (no torch) and helpers shared by the extract tests."""

from __future__ import annotations

import json
import re
import zlib
from collections.abc import Sequence
from itertools import permutations
from pathlib import Path
from typing import Any

from mmre_demo.data.schema import Entity
from mmre_demo.extract.posts import PostInput, PostResult
from mmre_demo.extract.predictor import ModelInfo, output_settings
from mmre_demo.prediction import PairPrediction, Prediction

LABELS = ("None", "/per/org/member_of", "/per/loc/place_of_residence", "/org/loc/locate_at")


class FakePredictor:
    """Entities = capitalised words; each ordered pair gets a label and probability from a crc32 of its text.

    `fail_after` batches, it raises (a crash in the middle of a job); a caption containing "REFUSE" is
    refused like the model refuses a post.
    """

    def __init__(self, version: str = "v1", fail_after: int | None = None):
        self.info = ModelInfo("fake model", version)
        self.settings = output_settings(30, 3)
        self.fail_after, self.batches, self.sizes = fail_after, 0, []

    def predict_batch(self, batch: Sequence[PostInput]) -> list[PostResult]:
        if self.fail_after is not None and self.batches >= self.fail_after:
            raise RuntimeError("simulated crash")
        self.batches += 1
        self.sizes.append(len(batch))
        out = []
        for x in batch:
            if "REFUSE" in x.post.caption:
                out.append(PostResult(x.post, error="refused by the model", image_id=x.image_id))
            else:
                pred = fake_prediction(x.post.caption, x.image is not None)
                out.append(PostResult(x.post, pred, image_id=x.image_id))
        return out


def fake_prediction(caption: str, has_image: bool = False) -> Prediction:
    ents = [Entity(m.group(), m.start(), m.end(), ("PER", "ORG", "LOC")[zlib.crc32(m.group().encode()) % 3])
            for m in re.finditer(r"\b[A-Z][a-z]+\b", caption)]
    pairs = []
    for i, j in permutations(range(len(ents)), 2):
        h = zlib.crc32(f"{caption}|{i}|{j}".encode())
        label, p = LABELS[h % len(LABELS)], 0.3 + (h % 700) / 1000
        pairs.append(PairPrediction(ents[i], ents[j], label, p, [(label, p), ("None", 1 - p)], image_influence=0.25))
    return Prediction(caption=caption, entities=ents, pairs=pairs, concepts=[], has_image=has_image,
                      image_size=(8, 8) if has_image else None, device="cpu", threshold=0.0,
                      timings_ms={"ner_ms": 1.0, "relation_ms": 2.0, "total_ms": 3.0}, entities_detected=True)


def write_jsonl(path: Path, rows: list[Any]) -> Path:
    """Rows are dicts (written as JSON) or raw strings (written as they are: bad lines)."""
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows), encoding="utf-8")
    return path


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines() if x.strip()]


OUTPUT_FILES = ("posts.jsonl", "triples.jsonl", "errors.jsonl", "graph.json", "graph.graphml", "triples.csv")


def assert_same_outputs(a: Path, b: Path, files: Sequence[str] = OUTPUT_FILES, tol: float = 1e-5) -> None:
    """The result files of two runs are the same (floats within `tol`, so a batched model may differ by rounding)."""
    for name in files:
        ta, tb = (a / name).read_text(encoding="utf-8"), (b / name).read_text(encoding="utf-8")
        if ta == tb:
            continue
        if name.endswith(".jsonl"):
            ra, rb = read_jsonl(a / name), read_jsonl(b / name)
            assert len(ra) == len(rb), f"{name}: {len(ra)} vs {len(rb)} records"
            for x, y in zip(ra, rb):
                assert_close(x, y, tol, name)
        elif name.endswith(".json"):
            assert_close(json.loads(ta), json.loads(tb), tol, name)
        else:
            raise AssertionError(f"{name} differs between {a} and {b}")


def assert_close(x: Any, y: Any, tol: float, where: str) -> None:
    if isinstance(x, float) or isinstance(y, float):
        assert abs(float(x) - float(y)) <= tol, f"{where}: {x} vs {y}"
    elif isinstance(x, dict) and isinstance(y, dict):
        assert x.keys() == y.keys(), f"{where}: keys {sorted(x)} vs {sorted(y)}"
        for k in x:
            assert_close(x[k], y[k], tol, f"{where}.{k}")
    elif isinstance(x, list) and isinstance(y, list):
        assert len(x) == len(y), f"{where}: {len(x)} vs {len(y)} items"
        for i, (u, v) in enumerate(zip(x, y)):
            assert_close(u, v, tol, f"{where}[{i}]")
    else:
        assert x == y, f"{where}: {x!r} vs {y!r}"
