"""Text in the image (mmre_demo.encoders.ocr): real OCR on images drawn with PIL, bad input, the
switch, the cache and failure handling (a fake engine where the real one cannot fail on demand)."""

from __future__ import annotations

import io
import threading
import time
from pathlib import Path

import matplotlib
import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from mmre_demo.data.names import normalise_name
from mmre_demo.data.schema import InputError
from mmre_demo.encoders.ocr import ImageText, TextReader
from tests.test_images import huge_png_header

FONT = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans-Bold.ttf"


def text_image(text: str = "SPOTIFY", size: tuple[int, int] = (640, 200), xy: tuple[int, int] = (40, 60),
               font_size: int = 64, mode: str = "RGB") -> Image.Image:
    img = Image.new("RGB", size, "white")
    ImageDraw.Draw(img).text(xy, text, fill="black", font=ImageFont.truetype(str(FONT), font_size))
    return img if mode == "RGB" else img.convert(mode)


def text_bbox(text: str, xy: tuple[int, int], font_size: int = 64) -> tuple[int, int, int, int]:
    draw = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    return draw.textbbox(xy, text, font=ImageFont.truetype(str(FONT), font_size))


def iou(a: tuple[int, ...], b: tuple[int, ...]) -> float:
    ix = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    area = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / area if area else 0.0


def read_names(result: ImageText) -> list[str]:
    return [normalise_name(line.text) for line in result.lines]


@pytest.fixture(scope="module")
def reader() -> TextReader:
    r = TextReader()
    assert r.load(), "the OCR engine (rapidocr-onnxruntime) did not load"
    return r


class FakeEngine:
    """Stands in for RapidEngine: returns fixed rows, counts calls, can raise or detect overlap."""

    def __init__(self, rows=None, detected=None, error: Exception | None = None, delay: float = 0.0):
        self.rows = rows or []
        self.detected = len(self.rows) if detected is None else detected
        self.error, self.delay = error, delay
        self.calls, self.active, self.overlapped = 0, 0, False
        self.guard = threading.Lock()

    def __call__(self, rgb, max_boxes, max_units):
        with self.guard:
            self.calls += 1
            self.active += 1
            self.overlapped |= self.active > 1
        try:
            time.sleep(self.delay)
            if self.error is not None:
                raise self.error
            return list(self.rows), self.detected
        finally:
            with self.guard:
                self.active -= 1


def fake_reader(engine: FakeEngine, **kw) -> TextReader:
    return TextReader(engine_factory=lambda **_: engine, **kw)


def row(text: str, conf: float, box=(10, 10, 110, 40)):
    x0, y0, x1, y1 = box
    return ([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], text, conf)


# ---- real OCR --------------------------------------------------------------------------------
def test_reads_a_word_drawn_with_a_truetype_font(reader):
    assert "spotify" in read_names(reader.read(text_image("SPOTIFY")))


def test_box_is_in_original_pixels_of_a_large_image(reader):
    img = text_image("SPOTIFY", size=(2400, 1600), xy=(1500, 1200), font_size=120)  # read at 960 px
    line = next(ln for ln in reader.read(img).lines if normalise_name(ln.text) == "spotify")
    assert iou(line.box, text_bbox("SPOTIFY", (1500, 1200), 120)) > 0.5


def test_box_is_in_original_pixels_of_a_small_image(reader):
    img = text_image("SPOTIFY", size=(400, 120), xy=(30, 40), font_size=40)  # enlarged 2x for reading
    line = next(ln for ln in reader.read(img).lines if normalise_name(ln.text) == "spotify")
    assert iou(line.box, text_bbox("SPOTIFY", (30, 40), 40)) > 0.5


def test_upside_down_text_is_read(reader):
    assert "spotify" in read_names(reader.read(text_image("SPOTIFY").rotate(180)))


def test_text_rotated_a_quarter_turn_is_read(reader):
    assert "spotify" in read_names(reader.read(text_image("SPOTIFY").rotate(90, expand=True)))


def test_image_without_text_gives_no_lines(reader):
    gradient = np.tile(np.linspace(0, 255, 640, dtype=np.uint8), (480, 1))
    result = reader.read(np.stack([gradient, gradient[::-1], gradient], axis=-1))
    assert result.lines == () and result.note is None


def test_cmyk_jpeg_is_read(reader):
    buf = io.BytesIO()
    text_image("SPOTIFY", mode="CMYK").save(buf, format="JPEG", quality=95)
    assert "spotify" in read_names(reader.read(buf.getvalue()))


def test_sixteen_bit_png_is_read(reader):
    grey = np.asarray(text_image("SPOTIFY").convert("L"), dtype=np.uint16) * 257
    buf = io.BytesIO()
    Image.fromarray(grey).save(buf, format="PNG")
    assert Image.open(io.BytesIO(buf.getvalue())).mode.startswith("I")
    assert "spotify" in read_names(reader.read(buf.getvalue()))


def test_animated_gif_reads_its_first_frame(reader):
    frames = [text_image("SPOTIFY").convert("P"), text_image("BERLIN").convert("P")]
    buf = io.BytesIO()
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:], duration=100)
    names = read_names(reader.read(buf.getvalue()))
    assert "spotify" in names and "berlin" not in names


def test_image_full_of_text_is_capped_with_a_note(reader):
    img = Image.new("RGB", (960, 720), "white")
    draw = ImageDraw.Draw(img)
    font = ImageFont.truetype(str(FONT), 18)
    words = "the quick brown fox jumps over the lazy dog while Spotify plays".split()
    for i in range(25):  # 500 words
        draw.text((10, 10 + 28 * i), " ".join(words[(i + k) % len(words)] for k in range(20)), fill="black", font=font)
    result = reader.read(img)
    assert result.note and "more text" in result.note and 0 < len(result.lines) < 25


def test_thin_image_does_not_crash(reader):
    result = reader.read(Image.new("RGB", (4000, 3), "white"))
    assert result.lines == () and result.size == (4000, 3)


# ---- the fast path reads what RapidOCR's own steps read ---------------------------------------
def rapidocr_steps(ocr, rgb: np.ndarray) -> list[tuple[str, float]]:
    """RapidOCR 1.4.4's own steps (BGR image, DetPreProcess in float64, crops of the BGR image)."""
    img, _ = ocr.maybe_add_letterbox(np.ascontiguousarray(rgb[:, :, ::-1]), {})
    boxes, _ = ocr.auto_text_det(img)
    crops, _, _ = ocr.text_cls(ocr.get_crop_img_list(img, boxes))
    rec, _ = ocr.text_rec(crops, False)
    return [(str(text), float(score)) for text, score in rec]


def test_detector_input_is_rapidocrs_preprocessing(reader):
    engine = reader.engine
    rgb = np.asarray(text_image("SPOTIFY", size=(700, 333)).rotate(7))  # resized to 704 x 320 for detection
    bgr = np.ascontiguousarray(rgb[:, :, ::-1])
    expected = engine.ocr.text_det.get_preprocess(max(rgb.shape[:2]))(bgr)
    got = engine.detector_input(rgb)
    assert got.dtype == expected.dtype and np.array_equal(got, expected)


def test_engine_reads_what_rapidocrs_steps_read(reader):
    img = Image.new("RGB", (800, 600), (230, 225, 210))
    draw = ImageDraw.Draw(img)
    for i, word in enumerate(("SPOTIFY", "Berlin 2018", "UN")):
        draw.text((40 + 60 * i, 60 + 150 * i), word, fill=(20, 20, 60), font=ImageFont.truetype(str(FONT), 48 - 8 * i))
    rgb = np.asarray(img)
    rows, detected = reader.engine(rgb, 60, 100.0)
    assert detected >= 3 and [(t, s) for _, t, s in rows] == rapidocr_steps(reader.engine.ocr, rgb)


def test_engine_records_the_time_of_each_stage(reader):
    reader.clear_cache()
    reader.read(text_image("STAGES"))
    stages = reader.engine.last_stages
    assert set(stages) == {"detect", "classify", "recognise"} and stages["detect"] > 0 and stages["recognise"] > 0


def test_sessions_keep_their_memory_arena_and_do_not_spin():
    from mmre_demo.encoders.onnx_runtime import ort_options

    opts = ort_options(2)
    assert opts.enable_cpu_mem_arena and opts.intra_op_num_threads == 2
    assert opts.get_session_config_entry("session.intra_op.allow_spinning") == "0"


# ---- bad input is refused before OCR ---------------------------------------------------------
def test_huge_image_is_refused_before_ocr():
    engine = FakeEngine()
    with pytest.raises(InputError, match="limit"):
        fake_reader(engine).read(huge_png_header(20_000, 20_000))
    assert engine.calls == 0


def test_corrupt_file_is_refused_with_input_error():
    with pytest.raises(InputError):
        fake_reader(FakeEngine()).read(b"this is not an image")


def test_no_image_gives_empty_result():
    assert TextReader(engine_factory=lambda **_: FakeEngine()).read(None).lines == ()


# ---- switch, cache, failures -----------------------------------------------------------------
def test_switched_off_reader_never_builds_the_engine():
    built = []
    r = TextReader(enabled=False, engine_factory=lambda **_: built.append(1) or FakeEngine())
    result = r.read(text_image())
    assert result.lines == () and "switched off" in result.note and built == []


def test_same_picture_twice_hits_the_cache():
    engine = FakeEngine([row("SPOTIFY", 0.99)])
    r = fake_reader(engine)
    first = r.read(text_image())
    second = r.read(text_image())  # a new object with the same pixels
    assert second is first and engine.calls == 1


def test_cache_keeps_at_most_cache_size_images():
    engine = FakeEngine([row("SPOTIFY", 0.99)])
    r = fake_reader(engine, cache_size=2)
    for word in ("ONE", "TWO", "THREE", "ONE"):
        r.read(text_image(word))
    assert engine.calls == 4  # ONE was evicted by THREE


def test_engine_exception_gives_empty_result_with_a_note():
    r = fake_reader(FakeEngine(error=RuntimeError("onnx exploded")))
    result = r.read(text_image())
    assert result.lines == () and result.note.startswith("OCR failed") and "onnx exploded" in result.note


def test_failed_read_is_not_cached():
    engine = FakeEngine(error=RuntimeError("boom"))
    r = fake_reader(engine)
    r.read(text_image())
    r.read(text_image())
    assert engine.calls == 2


def test_engine_that_cannot_load_gives_a_note():
    def factory(**_):
        raise ImportError("No module named 'rapidocr_onnxruntime'")

    result = TextReader(engine_factory=factory).read(text_image())
    assert result.lines == () and result.note.startswith("OCR unavailable")


def test_real_engine_failure_mid_read_gives_a_note(monkeypatch):
    def broken_detector(tensor):
        raise ValueError("bad tensor")

    r = TextReader()
    assert r.load()
    monkeypatch.setattr(r.engine.ocr.text_det, "infer", broken_detector)
    result = r.read(text_image())
    assert result.lines == () and "bad tensor" in result.note


def test_low_confidence_lines_are_dropped():
    r = fake_reader(FakeEngine([row("SPOTIFY", 0.95), row("PIOKOV", 0.59)]), min_confidence=0.8)
    assert [line.text for line in r.read(text_image()).lines] == ["SPOTIFY"]


def test_single_character_lines_are_dropped():
    r = fake_reader(FakeEngine([row("紫", 0.95), row("22", 0.99)]))
    assert [line.text for line in r.read(text_image()).lines] == ["22"]


def test_boxes_are_clipped_to_the_image():
    r = fake_reader(FakeEngine([row("SPOTIFY", 0.99, box=(-20, -5, 9000, 60))]))
    assert r.read(text_image(size=(960, 300))).lines[0].box == (0, 0, 960, 60)  # read at its own size


def test_boxes_are_scaled_back_from_the_reading_size():
    # a 1920 x 1440 image is read at 960 x 720: engine pixels are doubled
    r = fake_reader(FakeEngine([row("SPOTIFY", 0.99, box=(100, 50, 300, 90))]))
    assert r.read(text_image(size=(1920, 1440))).lines[0].box == (200, 100, 600, 180)


def test_skipped_text_regions_are_noted():
    r = fake_reader(FakeEngine([row("SPOTIFY", 0.99)], detected=40))
    assert "read 1 of 40 text regions" in r.read(text_image()).note


def test_reads_from_threads_never_overlap_in_the_engine():
    engine = FakeEngine([row("SPOTIFY", 0.99)], delay=0.02)
    r = fake_reader(engine, cache_size=0)
    threads = [threading.Thread(target=r.read, args=(text_image(w),)) for w in ("A1", "B2", "C3", "D4")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert engine.calls == 4 and not engine.overlapped


def test_workers_read_side_by_side_each_engine_one_image_at_a_time():
    engines: list[FakeEngine] = []

    def factory(**_):
        engines.append(FakeEngine([row("SPOTIFY", 0.99)], delay=0.2))
        return engines[-1]

    r = TextReader(engine_factory=factory, workers=2, cache_size=0)
    t = time.perf_counter()
    futures = [r.submit(text_image(w)) for w in ("A1", "B2", "C3", "D4")]
    assert all("spotify" in read_names(f.result()) for f in futures)
    assert len(engines) == 2 and sum(e.calls for e in engines) == 4 and all(e.calls for e in engines)
    assert not any(e.overlapped for e in engines)
    assert time.perf_counter() - t < 0.7  # two at a time: about 0.4 s, not 0.8


def test_submit_reads_on_a_background_thread():
    seen = []

    class Recording(FakeEngine):
        def __call__(self, *a):
            seen.append(threading.current_thread().name)
            return super().__call__(*a)

    r = fake_reader(Recording([row("SPOTIFY", 0.99)]))
    result = r.submit(text_image()).result(timeout=10)
    assert result.lines[0].text == "SPOTIFY" and seen[0].startswith("ocr")


def test_result_serialises_to_plain_json_types():
    import json

    r = fake_reader(FakeEngine([row("SPOTIFY", 0.99)]))
    d = json.loads(json.dumps(r.read(text_image(size=(960, 300))).to_dict()))
    assert d["lines"][0]["box"] == [10, 10, 110, 40] and d["size"] == [960, 300]
