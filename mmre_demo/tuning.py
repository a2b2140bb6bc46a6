"""Settings chosen by measuring on a machine, each with the measurement that set it.

The code reads `.value`; the rest says where and how it was measured and what was seen, so a deployment on
other hardware knows which numbers to re-measure (and with which command) instead of trusting a comment.
The reference machine of every entry is the development box: 2 CPU cores, no GPU.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")

REFERENCE_MACHINE = "2 CPU cores, no GPU"


@dataclass(frozen=True)
class Measured(Generic[T]):
    """A setting, the command that measures it and what that measurement showed on `machine`."""

    value: T
    command: str
    finding: str
    machine: str = REFERENCE_MACHINE


# encoder passes per relation-model forward pass (passes of similar length together)
BATCH_PASSES = Measured(
    32, "python benchmarks/bench_relation.py (MNRE val captions, 2 threads, one pass per pair)",
    "32 passes per forward beat 128: larger batches of a 6-layer model gain nothing on 2 cores, padding costs")

# micro-batching of concurrent requests (mmre_demo.microbatch)
MICROBATCH_MAX_BATCH = Measured(
    16, "python benchmarks/bench_app.py --json OUT", "vision and relation batches of 16 are still near-linear")
MICROBATCH_MAX_WAITING = Measured(
    64, "python benchmarks/bench_app.py --json OUT", "64 queued items are about 10 s of work; more is refused")

# CPU threads of each model call and each image read while the app serves
SERVING_THREADS = Measured(
    1, "python benchmarks/bench_app.py --json OUT (8 clients)",
    "2.7 req/s with the libraries' default thread pools, 4.2 with torch on one thread and one OCR engine per "
    "core: each concurrent request gets a core instead of every call's pool fighting for all of them")

# onnxruntime intra-op threads per OCR InferenceSession (detector, orientation, recogniser), non-spinning
OCR_THREADS = Measured(
    2, "python benchmarks/bench_ocr.py --stages (34 MNRE sample images, idle)",
    "2 threads: 116-132 ms median per image against 194 ms for 1 (211-239 against 204 ms of CPU); spinning "
    "pools made 2 threads look bad (496 ms of CPU); with one core busy elsewhere 2 lose a little to 1 "
    "(237 against 218 ms). Capped at the machine's cores")

# RapidOCR's models rewritten into ops onnxruntime fuses (mmre_demo.encoders.onnx_rewrite)
OCR_GRAPH_REWRITE = Measured(
    True, "onnxruntime profiling of each model on one thread (per-op kernel time), then python benchmarks/bench_ocr.py",
    "PP-OCRv4 detector, 960 x 736 input, 1 thread: 192 -> 145 ms of CPU (hard-swish fused 162, + convolutions "
    "folded with their scale / shift, + the other scale / shifts as depthwise convolutions 145); recogniser, 6 "
    "crops of 48 x 320: 151 -> 109 ms; outputs equal to 2e-7 (detector) and 5e-6 (recogniser)")

# recognition budget per image, in text heights of crop width (about one short word each)
OCR_MAX_TEXT_UNITS = Measured(
    100.0, "python benchmarks/bench_ocr.py --bad-input",
    "the busiest MNRE sample image (a news screenshot) needs 90; 100 bounds a page of text to about 0.9 s of "
    "CPU (120: 1.0 s); recognition costs about 3-7 ms per unit")

# the frozen networks on onnxruntime instead of eager PyTorch (mmre_demo.encoders.onnx_runtime)
ONNX_RUNTIME = Measured(
    True, "timed by hand on one thread: EfficientNet-Lite0 features of a 224 x 224 image, the tagger's MiniLM on "
          "a 28-token caption (all layers), the serving relation encoder; python benchmarks/bench_vs_baseline.py "
          "predict and app for the whole request",
    "EfficientNet-Lite0 features 36.7 ms eager, 27.1 channels-last, 23.6 TorchScript frozen, 10.6 onnxruntime; "
    "MiniLM all layers 15.8 ms eager, 7.8 onnxruntime; same outputs to 1e-4 (2e-6 on the relation probabilities "
    "of the app's 8 examples); export 0.8-1.5 s once per set of weights, then read from the cache")

# the vision backbone on its own thread while the tagger reads the same batch's captions (mmre_demo.pipeline)
VISION_BESIDE_TAGGER = Measured(
    True, "python benchmarks/bench_vs_baseline.py predict (photo + caption, 3 entities, OCR off, 2 threads)",
    "p50 39.6 ms one after the other, 34.9 ms side by side (both on onnxruntime, which releases the GIL)")
