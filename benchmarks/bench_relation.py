"""Speed and memory of the relation pipeline on this machine (run by hand, not a test).

    python benchmarks/bench_relation.py [--runs 20] [--threads 2] [--weights DIR]

Measures, with the shipped weights (or a trained folder given by --weights): model load time in a
fresh process, resident memory after loading, and `predict` (image + caption with 3 entities = 6
ordered pairs; NER not involved) as the median over --runs after warm-up. Then builds the same
pipeline code with BERT-base-sized text and ResNet-50-sized vision backbones (random weights from
configs) and times it in the same run.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

CAPTION = "Astronaut Eileen Collins of NASA poses at Johnson Space Center in Houston before the launch"
NAMES = [("Eileen Collins", "PER"), ("NASA", "ORG"), ("Houston", "LOC")]


def entities() -> list[dict]:
    return [{"text": n, "start": CAPTION.index(n), "end": CAPTION.index(n) + len(n), "type": t} for n, t in NAMES]


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def time_predict(pipe, image, runs: int, warmup: int = 3, read_text: bool = True) -> dict[str, float]:
    """Median `predict` time; the text in the image is read afresh each call (its cache cleared)."""
    for _ in range(warmup):
        pipe.predict(image, CAPTION, entities(), read_text=read_text)
    times = []
    for _ in range(runs):
        if pipe.text_reader is not None:
            pipe.text_reader.clear_cache()
        t = time.perf_counter()
        pred = pipe.predict(image, CAPTION, entities(), read_text=read_text)
        times.append((time.perf_counter() - t) * 1000)
    assert len(pred.pairs) == 3  # 3 entities: 3 pairs, both directions classified, one shown each
    return {"median_ms": statistics.median(times), "p90_ms": sorted(times)[int(0.9 * (len(times) - 1))],
            "min_ms": min(times)}


def fresh_load_seconds(weights: str | None) -> float:
    code = ("from mmre_demo.logs import setup_logging; setup_logging(); "
            "import time; t=time.perf_counter(); from mmre_demo.pipeline import Pipeline; "
            f"Pipeline.load(weights={weights!r}, device='cpu', with_ner=False); print(time.perf_counter()-t)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def big_backbones(tmp: Path) -> tuple[str, str]:
    """BERT-base and ResNet-50 architectures with random weights, saved as local folders."""
    from transformers import BertConfig, BertModel, ResNetConfig, ResNetModel

    from mmre_demo.encoders.text import resolve_text_backbone

    bert = tmp / "bert-base-random"
    BertModel(BertConfig(), add_pooling_layer=False).save_pretrained(bert)
    for f in ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json"):
        shutil.copy(Path(resolve_text_backbone("minilm")) / f, bert / f)
    resnet = tmp / "resnet50-random"
    ResNetModel(ResNetConfig()).save_pretrained(resnet)
    return str(bert), str(resnet)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--weights", default=None, help="a trained model folder instead of the shipped one")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    from mmre_demo.logs import setup_logging

    setup_logging()
    from PIL import Image

    from mmre_demo.model.config import RelationConfig
    from mmre_demo.model.relation import build_relation_model
    from mmre_demo.pipeline import Pipeline

    photo = Path(__file__).resolve().parents[1] / "assets" / "astronaut.jpg"
    image = Image.open(photo).convert("RGB")
    results: dict[str, object] = {"threads": args.threads, "runs": args.runs, "weights": args.weights or "shipped"}
    loads = [fresh_load_seconds(args.weights) for _ in range(3)]
    results["load_seconds_fresh_process_median_of_3"] = statistics.median(loads)
    base = rss_mb()
    pipe = Pipeline.load(weights=args.weights, device="cpu", with_ner=False)
    results["rss_mb_after_load"] = rss_mb()
    results["rss_mb_before_load"] = base
    results["model"] = time_predict(pipe, image, args.runs)  # with the text in the image read (the default)
    results["model_without_reading_text"] = time_predict(pipe, image, args.runs, read_text=False)
    results["model_text_only"] = time_predict(pipe, None, args.runs)
    del pipe
    with tempfile.TemporaryDirectory() as tmp:
        bert, resnet = big_backbones(Path(tmp))
        model = build_relation_model(RelationConfig(text_backbone=bert, vision_backbone=resnet)).eval()
        big = Pipeline(model, None, "cpu")
        results["bert_base_resnet50"] = time_predict(big, image, args.runs)
    # the big pipeline reads no text in the image: compare it with the shipped one not reading it either
    results["ratio_big_over_model"] = (results["bert_base_resnet50"]["median_ms"]
                                       / results["model_without_reading_text"]["median_ms"])
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
