"""Text in the image: the vision side's reader (RapidOCR, PP-OCRv4 ONNX models, CPU, offline).

Tweet images often carry text (jerseys, posters, logos, screenshots). Reading it gives checkable
evidence that links the picture to the caption's entities (see `mmre_demo.grounding`).

The engine is `rapidocr-onnxruntime` 1.4.4, whose wheel ships the detection, orientation and
recognition models; it runs with `opencv-python-headless` (no GUI libraries). It is loaded
lazily, once. RapidOCR mutates its own state during a call, so an engine reads one image at a time;
`TextReader(workers=N)` keeps N engines for N reads side by side (the app: one per core, each on one
thread). onnxruntime releases the GIL, so a read overlaps the rest of a request that runs on another
thread (`TextReader.submit`).

A read never raises because OCR failed: it returns an empty `ImageText` whose `note` says why.
Bad input is refused by `load_image` (same messages as the rest of the app) before any OCR.

Speed (`benchmarks/bench_ocr.py --stages`; numbers and their history in docs/image_text.md, "Speed"): on
the 34 MNRE sample images (800 x 600, read at 960 x 720) a read takes 116 ms (median; detector 94,
recogniser 17, orientation 3, resize 1 ms) on the reference machine of `mmre_demo.tuning`. What makes it
so: onnxruntime's memory arena on, threads that do not spin, the detector's input normalised by table
look-up, OpenCV for the resize and recognition crops padded to 160 px (the settings below).
"""

from __future__ import annotations

import hashlib
import logging
import os
import queue
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image

from mmre_demo import tuning
from mmre_demo.data.images import ImageInput, load_image
from mmre_demo.data.schema import Box
from mmre_demo.encoders.onnx_runtime import cpu_session

logger = logging.getLogger(__name__)

# OCR runs on the image resized so that its longest side is this many pixels (smaller images are
# enlarged at most MAX_UPSCALE times). benchmarks/bench_ocr.py on the 34 MNRE sample images
# (800 x 600): 960 reads "standard / Chartered" and "STOCKEXCM" that 800 misses; 1280 reads a
# little more at twice the time (docs/image_text.md). Smaller is faster (2 threads: 56 ms median at
# 640, 71 at 736, 116 at 960) but 640-896 each lose lines 960 reads (the shirt sponsor "standard /
# Chartered" at 640-800, spaces in "TRUMP & KIM ARRIVE FOR HISTORIC SUMMIT" at 640-736).
DEFAULT_MAX_SIDE = 960
# Lines whose recognition confidence is below this, or with fewer than 2 letters/digits, are
# dropped (docs/image_text.md: on the sample images every line under 0.8 was texture or a
# scribble, every real word scored >= 0.87 (0.88 with REC_MIN_WIDTH 160); single characters were
# noise even at 0.9).
DEFAULT_MIN_CONFIDENCE = 0.8
# Recognition budget: at most this many text boxes, of total width (in text heights) at most
# DEFAULT_MAX_TEXT_UNITS, in reading order; more text gets a note (an image of 500 words would
# otherwise take 20 s). A unit is a crop as wide as it is high (about one short word); the busiest
# of the 34 MNRE sample images (a news screenshot) needs 90; the unit budget's time: mmre_demo.tuning.
DEFAULT_MAX_LINES = 60
DEFAULT_MAX_TEXT_UNITS = tuning.OCR_MAX_TEXT_UNITS.value
DEFAULT_CACHE_SIZE = 64
# Small images are enlarged for reading, at most this much. Measured: the 34 MNRE sample images shrunk to a
# 480-px side read 36 lines enlarged 2x and 28 enlarged 1.25x (1.25x lost "Standard", "PUWER / TOTHE / 12",
# the stadium sign, and the spaces in "TRUMP & KIM ARRIVE FOR HISTORIC SUMMIT").
MAX_UPSCALE = 2.0
# onnxruntime intra-op threads per InferenceSession (detector, orientation, recogniser), which do not spin
# (onnx_runtime.SPIN_THREADS): each of the three InferenceSessions keeps its own pool, and spinning workers
# fight for the cores.
# Measured: mmre_demo.tuning.OCR_THREADS; never more than the machine's cores.
DEFAULT_THREADS = min(tuning.OCR_THREADS.value, os.cpu_count() or 1)
# Recognition pads each crop to at least this width (48 px high). RapidOCR pads to 320, the width
# PaddleOCR trains at; the cost is linear in the width (20 ms per 320-px crop on one thread) and
# most crops are short words (53 of the 66 boxes of the sample images are narrower than 320 px,
# median 2.4 text heights), so 160 cuts recognition from 27 to 17 ms per image (median). Same gold
# names and caption entities grounded on the sample images; real words score a little higher
# ("Chartered" 0.89 -> 0.91), "NEWS" becomes "/NEWS" (0.88) and every line under 0.8 is still junk;
# 240 synthetic words (matplotlib's fonts, colours, blur, JPEG, upside down): 195 read right
# against 193 before (docs/image_text.md, "Speed").
REC_MIN_WIDTH = 160
RAPIDOCR_VERSION = "1.4.4"  # RapidEngine uses its stage methods; installed with --no-deps (README)

Point = tuple[int, int]


@dataclass(frozen=True)
class TextLine:
    """One line read in the image; `box` (x0, y0, x1, y1) and `polygon` are original-image pixels."""

    text: str
    box: Box
    polygon: tuple[Point, Point, Point, Point]  # top-left, top-right, bottom-right, bottom-left of the text
    confidence: float

    def to_dict(self) -> dict[str, Any]:
        return {"text": self.text, "box": list(self.box), "polygon": [list(p) for p in self.polygon],
                "confidence": self.confidence}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TextLine:
        """Inverse of `to_dict`."""
        return cls(d["text"], tuple(d["box"]), tuple(tuple(p) for p in d["polygon"]), float(d["confidence"]))


@dataclass(frozen=True)
class ImageText:
    """Everything read in one image. `note` explains an empty or partial result (off, failed, capped)."""

    lines: tuple[TextLine, ...] = ()
    seconds: float = 0.0
    note: str | None = None
    size: tuple[int, int] = (0, 0)  # (width, height) of the original image

    @property
    def text(self) -> str:
        return "\n".join(line.text for line in self.lines)

    def to_dict(self) -> dict[str, Any]:
        return {"lines": [line.to_dict() for line in self.lines], "seconds": self.seconds, "note": self.note,
                "size": list(self.size)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ImageText:
        """Inverse of `to_dict`."""
        return cls(tuple(TextLine.from_dict(x) for x in d["lines"]), float(d["seconds"]), d["note"], tuple(d["size"]))


class RapidEngine:
    """RapidOCR 1.4.4 run stage by stage (detect, orient, recognise) with a recognition budget.

    Recognition cost grows with the total width of the text crops (about 3-7 ms per crop
    width equal to its height on the reference machine of `mmre_demo.tuning`), so an image full
    of text (500 words) would take 20 s if every line were read. Boxes are taken in reading order
    while they fit `max_units` (sum of crop width / height) and `max_boxes`; the rest are skipped
    and counted.

    The models, box post-processing, orientation and recognition are RapidOCR's (which is why the
    package is pinned to 1.4.4). What differs from running RapidOCR's own steps is speed, not the
    result (same texts and confidences: tests/test_ocr.py; docs/image_text.md, "Speed"): its three
    onnxruntime InferenceSessions are rebuilt with `ort_options` (memory arena on, threads that do not
    spin); the detector's input is normalised with a lookup table (RapidOCR computes the same
    float32 values in float64: 18 ms); crops are cut from the RGB image and flipped to BGR one by
    one instead of flipping the whole image. Recognition pads crops to REC_MIN_WIDTH, not 320.
    `last_stages` holds the milliseconds of each stage of the last call (bench_ocr.py --stages).
    """

    def __init__(self, max_side: int = DEFAULT_MAX_SIDE, threads: int | None = None):
        from rapidocr_onnxruntime import RapidOCR

        n = threads or DEFAULT_THREADS
        # its own InferenceSessions are replaced below, so they are built with one thread (no idle pools)
        self.ocr = RapidOCR(intra_op_num_threads=1, inter_op_num_threads=1, text_score=0.0,
                            det_limit_type="max", det_limit_side_len=max_side, print_verbose=False,
                            rec_img_shape=[3, 48, REC_MIN_WIDTH])
        paths = _model_paths()
        self.ocr.text_det.infer.session = _onnx_model(paths["Det"], n)
        self.ocr.text_cls.infer.session = _onnx_model(paths["Cls"], n)
        self.ocr.text_rec.session.session = _onnx_model(paths["Rec"], n)
        self._det_lut = _normalise_table(self.ocr.text_det.mean, self.ocr.text_det.std)
        self.last_stages: dict[str, float] = {}

    def warm_up(self) -> None:
        """First onnxruntime runs are several times slower; pay that at load, not on a user's click."""
        self(np.full((64, 256, 3), 255, dtype=np.uint8), 1, 1.0)
        self.ocr.text_cls([np.full((48, 160, 3), 255, dtype=np.uint8)])
        self.ocr.text_rec([np.full((48, 160, 3), 255, dtype=np.uint8)])

    @staticmethod
    def _units(box: np.ndarray) -> float:
        """Recognition width of a box in text heights (tall boxes are read rotated)."""
        w = float(max(np.linalg.norm(box[0] - box[1]), np.linalg.norm(box[2] - box[3])))
        h = float(max(np.linalg.norm(box[0] - box[3]), np.linalg.norm(box[1] - box[2])))
        w, h = max(w, 1.0), max(h, 1.0)
        return max(w / h, h / w) if h / w >= 1.5 else w / h

    def detector_input(self, rgb: np.ndarray) -> np.ndarray | None:
        """RGB image -> the detector's 1 x 3 x H x W float32 BGR tensor, as RapidOCR's DetPreProcess
        makes it (its resize to multiples of 32, then (v / 255 - mean) / std) but by table look-up."""
        import cv2

        resized = self.ocr.text_det.get_preprocess(max(rgb.shape[:2])).resize(rgb)
        if resized is None:
            return None
        planes = cv2.split(resized)  # R, G, B
        out = np.empty((1, 3, *resized.shape[:2]), dtype=np.float32)
        for c in range(3):  # B, G, R
            out[0, c] = cv2.LUT(planes[2 - c], self._det_lut[c])
        return out

    def _detect(self, rgb: np.ndarray) -> list[np.ndarray]:
        """Text boxes (4 points, pixels of `rgb`) in reading order: RapidOCR's TextDetector steps."""
        det = self.ocr.text_det
        x = self.detector_input(rgb)
        if x is None:
            return []
        boxes, _ = det.postprocess_op(det.infer(x)[0], rgb.shape[:2])
        boxes = det.filter_tag_det_res(boxes, rgb.shape[:2])
        return self.ocr.sorted_boxes(boxes) if len(boxes) else []

    def _budget(self, boxes: list[np.ndarray], max_boxes: int, max_units: float) -> list[np.ndarray]:
        """The boxes read: in reading order while they fit `max_boxes` and `max_units`."""
        keep, used = [], 0.0
        for box in boxes:
            units = self._units(box)
            if len(keep) < max_boxes and used + units <= max_units:
                keep.append(box)
                used += units
        return keep

    def __call__(self, rgb: np.ndarray, max_boxes: int, max_units: float) -> tuple[list[tuple[Any, str, float]], int]:
        """RGB array -> ([(4-point polygon, text, score)], number of text boxes detected)."""
        t0 = time.perf_counter()
        img, record = self.ocr.maybe_add_letterbox(np.ascontiguousarray(rgb), {})
        boxes = self._detect(img)
        t1 = time.perf_counter()
        self.last_stages = {"detect": (t1 - t0) * 1000, "classify": 0.0, "recognise": 0.0}
        keep = self._budget(boxes, max_boxes, max_units)
        if not keep:
            return [], len(boxes)
        crops = [np.ascontiguousarray(c[:, :, ::-1]) for c in self.ocr.get_crop_img_list(img, keep)]  # BGR
        crops, _, _ = self.ocr.text_cls(crops)
        t2 = time.perf_counter()
        rec, _ = self.ocr.text_rec(crops, False)
        self.last_stages.update(classify=(t2 - t1) * 1000, recognise=(time.perf_counter() - t2) * 1000)
        top = record.get("padding_1", {}).get("top", 0)
        rows = []
        for box, res in zip(keep, rec):
            pts = np.asarray(box, dtype=np.float64).copy()
            pts[:, 1] -= top
            rows.append((pts, str(res[0]), float(res[1])))
        return rows, len(boxes)


def _normalise_table(mean: Any, std: Any) -> np.ndarray:
    """[channel, 8-bit value] -> float32 input of the detector: RapidOCR's DetPreProcess.normalize,
    (float32(v) * (1 / 255) - mean) / std in float64, then float32, so the values are the same."""
    levels = np.arange(256, dtype=np.float32)[:, None] * (1 / 255.0)
    table = (levels - np.asarray(mean, dtype=np.float64)) / np.asarray(std, dtype=np.float64)
    return np.ascontiguousarray(table.astype(np.float32).T)


def _model_paths() -> dict[str, str]:
    """The ONNX files RapidOCR loads ({"Det": …, "Cls": …, "Rec": …}), from its own config."""
    from rapidocr_onnxruntime.main import DEFAULT_CFG_PATH
    from rapidocr_onnxruntime.utils import read_yaml, update_model_path

    config = update_model_path(read_yaml(str(DEFAULT_CFG_PATH)))
    return {stage: config[stage]["model_path"] for stage in ("Det", "Cls", "Rec")}


def _onnx_model(model_path: str, threads: int) -> Any:
    """A session of RapidOCR's model, rewritten into the ops onnxruntime fuses (`onnx_rewrite.cpu_friendly`)."""
    from mmre_demo.encoders.onnx_rewrite import cpu_friendly

    return cpu_session(cpu_friendly(model_path), threads)


def make_engine(max_side: int = DEFAULT_MAX_SIDE, threads: int | None = None) -> RapidEngine:
    """The default engine factory (tests pass their own to TextReader)."""
    return RapidEngine(max_side=max_side, threads=threads)


def _image_key(img: Image.Image, settings: str) -> str:
    """Content hash of the decoded RGB pixels and the reader's settings (same picture -> cache hit)."""
    h = hashlib.blake2b(digest_size=16)
    h.update(f"{img.size}|{settings}".encode())
    h.update(img.tobytes())
    return h.hexdigest()


def _polygon_to_line(points: Any, text: str, confidence: float, scale: tuple[float, float],
                     size: tuple[int, int]) -> TextLine:
    """Engine polygon (pixels of the image it saw) -> TextLine in original-image pixels, clipped."""
    w, h = size
    arr = np.asarray(points, dtype=np.float64).reshape(4, 2) / np.asarray(scale)
    arr[:, 0] = arr[:, 0].clip(0, w)
    arr[:, 1] = arr[:, 1].clip(0, h)
    pts = tuple((round(x), round(y)) for x, y in arr)
    box = (int(np.floor(arr[:, 0].min())), int(np.floor(arr[:, 1].min())),
           int(np.ceil(arr[:, 0].max())), int(np.ceil(arr[:, 1].max())))
    return TextLine(text, box, pts, round(float(confidence), 4))  # type: ignore[arg-type]


@dataclass
class TextReader:
    """Reads the text in images: lazy engine, thread-safe, LRU cache keyed by image content.

    `enabled=False` is the app's switch: every read returns an empty result with a note.
    """

    enabled: bool = True
    max_side: int = DEFAULT_MAX_SIDE
    min_confidence: float = DEFAULT_MIN_CONFIDENCE
    max_lines: int = DEFAULT_MAX_LINES
    max_text_units: float = DEFAULT_MAX_TEXT_UNITS
    cache_size: int = DEFAULT_CACHE_SIZE
    threads: int | None = None
    # engines reading at once (each with `threads` threads): a server with many visitors reads several
    # images side by side instead of queueing them behind one engine
    workers: int = 1
    engine_factory: Callable[..., Any] = make_engine
    _engine: Any = field(default=None, init=False, repr=False)
    _free: queue.Queue[Any] = field(default_factory=queue.Queue, init=False, repr=False)
    _load_error: str | None = field(default=None, init=False, repr=False)
    _load_lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)
    _cache_lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)
    _cache: OrderedDict[str, ImageText] = field(default_factory=OrderedDict, init=False, repr=False)
    _pool: ThreadPoolExecutor | None = field(default=None, init=False, repr=False)

    # ---- engine ------------------------------------------------------------------------------
    @property
    def engine(self) -> Any | None:
        """The first engine (None until `load`): what reads, for a caller that inspects its stages."""
        return self._engine

    def load(self) -> bool:
        """Build the engines once (and warm them up); False, with the reason kept, when they cannot load."""
        if self._engine is not None:
            return True
        with self._load_lock:
            if self._engine is None and self._load_error is None:
                try:
                    engines = [self.engine_factory(max_side=self.max_side, threads=self.threads)
                               for _ in range(max(1, self.workers))]
                    for engine in engines:
                        if hasattr(engine, "warm_up"):
                            engine.warm_up()
                        self._free.put(engine)
                    self._engine = engines[0]
                except ImportError as exc:
                    self._load_error = (f"{exc}; install it with `pip install --no-deps "
                                        f"rapidocr-onnxruntime=={RAPIDOCR_VERSION}`")
                    logger.warning("OCR engine unavailable: %s", self._load_error)
                except Exception as exc:  # noqa: BLE001 - a broken OCR install must not break the app
                    self._load_error = f"{type(exc).__name__}: {exc}"
                    logger.warning("OCR engine unavailable: %s", self._load_error)
        return self._engine is not None

    # ---- cache -------------------------------------------------------------------------------
    def _cached(self, key: str) -> ImageText | None:
        with self._cache_lock:
            hit = self._cache.get(key)
            if hit is not None:
                self._cache.move_to_end(key)
            return hit

    def _store(self, key: str, value: ImageText) -> None:
        with self._cache_lock:
            self._cache[key] = value
            self._cache.move_to_end(key)
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)

    def clear_cache(self) -> None:
        with self._cache_lock:
            self._cache.clear()

    # ---- reading -----------------------------------------------------------------------------
    def read(self, image: ImageInput) -> ImageText:
        """Lines read in `image` (any input `load_image` takes). Raises only `InputError` for bad input."""
        img = load_image(image)  # refuses huge / corrupt files before any OCR, flattens CMYK, 16-bit, frames
        if img is None:
            return ImageText(note="No image.")
        if not self.enabled:
            return ImageText(note="Reading text in the image is switched off.", size=img.size)
        key = _image_key(img, f"{self.max_side}|{self.min_confidence}|{self.max_lines}|{self.max_text_units}")
        hit = self._cached(key)
        if hit is not None:
            return hit
        result = self._read_uncached(img)
        if not (result.note and result.note.startswith("OCR failed")):  # retry failures next time
            self._store(key, result)
        return result

    def submit(self, image: ImageInput) -> Future[ImageText]:
        """Read on a background thread (`workers` of them) so OCR overlaps the rest of a request."""
        if self._pool is None:
            with self._load_lock:
                if self._pool is None:
                    self._pool = ThreadPoolExecutor(max_workers=max(1, self.workers), thread_name_prefix="ocr")
        return self._pool.submit(self.read, image)

    def _read_uncached(self, img: Image.Image) -> ImageText:
        t0 = time.perf_counter()
        if not self.load():
            return ImageText(note=f"OCR unavailable ({self._load_error}); the rest of the result is unaffected.",
                             size=img.size)
        try:
            scale, work = self._detection_image(img)
            engine = self._free.get()  # RapidOCR keeps state during a call: one read per engine at a time
            try:
                raw, detected = engine(work, self.max_lines, self.max_text_units)
            finally:
                self._free.put(engine)
            lines = self._lines(raw, scale, img.size)
        except Exception as exc:  # any OCR failure: never fails the request
            logger.exception("OCR failed")
            return ImageText(note=f"OCR failed ({type(exc).__name__}: {exc}); the rest of the result is unaffected.",
                             seconds=round(time.perf_counter() - t0, 4), size=img.size)
        note = None
        if detected > len(raw):
            note = (f"The image has more text than is read: read {len(raw)} of {detected} text regions "
                    f"(in reading order, within the time budget).")
        return ImageText(tuple(lines), round(time.perf_counter() - t0, 4), note, img.size)

    def _detection_image(self, img: Image.Image) -> tuple[tuple[float, float], np.ndarray]:
        """RGB pixels resized so the longest side is `max_side` (enlarging at most MAX_UPSCALE): the OCR cost.

        RapidOCR 1.4.4's detector ignores its own size limit in "max" mode (it picks 960 / 1500 /
        2000 by the image size), so the resolution is fixed here and the detector then runs at
        this size (rounded to multiples of 32); boxes are scaled back by the returned factor.
        OpenCV resizes (bicubic to enlarge, pixel-area averaging to shrink): 0.8 ms for 800 x 600 ->
        960 x 720 where Pillow's bicubic took 9.5 ms; a 12 MP photo, 27 ms (+ 51 ms for np.asarray)
        where Pillow's Lanczos took 145 ms (docs/image_text.md, "Speed").
        """
        import cv2

        rgb = np.asarray(img)
        scale = min(MAX_UPSCALE, self.max_side / max(img.size))
        if abs(scale - 1.0) < 1e-6:
            return (1.0, 1.0), rgb
        size = (max(1, round(img.width * scale)), max(1, round(img.height * scale)))
        resized = cv2.resize(rgb, size, interpolation=cv2.INTER_CUBIC if scale > 1 else cv2.INTER_AREA)
        return (size[0] / img.width, size[1] / img.height), resized

    def _lines(self, raw: list[Any], scale: tuple[float, float], size: tuple[int, int]) -> list[TextLine]:
        """Engine rows `[polygon, text, score]` -> TextLines kept by confidence, in reading order."""
        lines = []
        for row in raw:
            points, text, score = row[0], str(row[1]).strip(), float(row[2])
            if score >= self.min_confidence and sum(ch.isalnum() for ch in text) >= 2:
                lines.append(_polygon_to_line(points, text, score, scale, size))
        return lines
