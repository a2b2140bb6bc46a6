"""What the app shares: `Controller` (the model, the annotation store, the export folder, the link
suggesters). Each tab's state is in `mmre_demo.ui.state`; the callbacks that use both are in the
tabs' modules (`extract`, `graph`, `review`)."""

from __future__ import annotations

import json
import logging
import os
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mmre_demo import tuning
from mmre_demo.annotations import AnnotationStore
from mmre_demo.annotations.review import ReviewQueues
from mmre_demo.data.schema import InputError
from mmre_demo.prediction import Predictor
from mmre_demo.ui.login import AnnotatorLogin

if TYPE_CHECKING:
    from mmre_demo.ui.state import TabState

log = logging.getLogger(__name__)

ASSETS = Path(__file__).resolve().parents[2] / "assets"
MAX_TABS_WITH_SUGGESTER = 32
# CPU threads per model call and per image read while serving, with one OCR engine per core (measured:
# mmre_demo.tuning)
SERVING_THREADS = tuning.SERVING_THREADS.value


def examples(assets: Path = ASSETS) -> list[dict]:
    """assets/examples.json with image paths made absolute (None = caption only)."""
    items = json.loads((assets / "examples.json").read_text(encoding="utf-8"))
    for it in items:
        it["path"] = str(assets / it["image"]) if it.get("image") else None
    return items


def batch_window_ms() -> float:
    """MMRE_BATCH_WINDOW_MS: how long a request waits for others to share its batch (0: off)."""
    from mmre_demo.microbatch import DEFAULT_WINDOW_MS

    raw = os.environ.get("MMRE_BATCH_WINDOW_MS", "").strip()
    try:
        value = float(raw) if raw else DEFAULT_WINDOW_MS
    except ValueError:
        log.warning("MMRE_BATCH_WINDOW_MS=%r is not a number; using %s ms", raw, DEFAULT_WINDOW_MS)
        return DEFAULT_WINDOW_MS
    return max(0.0, value)


class PipelineLoader:
    """Loads the model in a background thread so the page is served at once; the first request waits."""

    def __init__(self, factory: Callable[[], Predictor]):
        self._factory: Callable[[], Predictor] = factory
        self._pipe: Predictor | None = None
        self._error: Exception | None = None
        self._done = threading.Event()
        threading.Thread(target=self._load, daemon=True, name="pipeline-load").start()

    def _load(self) -> None:
        try:
            self._pipe = self._factory()
        except Exception as exc:  # noqa: BLE001 - reported on the first request
            log.exception("model load failed")
            self._error = exc
        finally:
            self._done.set()

    def get(self, timeout: float = 300.0) -> Predictor:
        if not self._done.wait(timeout):
            raise InputError("The model is still loading; try again in a few seconds.")
        if self._error is not None:
            raise InputError(f"The model could not be loaded: {self._error}")
        return self._pipe


class Controller:
    """The app's shared resources: the pipeline (loaded in the background unless given), the annotation
    store, the export folder and one link suggester per tab (least recently used dropped)."""

    def __init__(self, pipeline: Predictor | None = None, pipeline_factory: Callable[[], Predictor] | None = None,
                 annotations: AnnotationStore | None = None, export_dir: str | Path | None = None,
                 suggester_factory: Callable[[], Any] | None | str = "auto", login: AnnotatorLogin | None = None):
        if pipeline is None and pipeline_factory is None:
            from mmre_demo.pipeline import Pipeline

            def pipeline_factory() -> Predictor:
                return Pipeline.load(device="auto",  # the weights: WeightsLayout's ($MMRE_WEIGHTS)
                                     batch_window_ms=batch_window_ms(), threads=SERVING_THREADS,
                                     ocr_workers=os.cpu_count() or 1, warm_up=True)  # before any visitor

        self._pipe: Predictor | None = pipeline
        self._loader = PipelineLoader(pipeline_factory) if pipeline is None else None
        self.annotations = annotations or AnnotationStore()
        self.queues = ReviewQueues(self.annotations)
        self.login = login or AnnotatorLogin.from_env()  # who may write annotations ($MMRE_ANNOTATION_LOGIN)
        # $MMRE_EXPORT_DIR keeps the exports across restarts (the Docker image points it into its /data volume)
        self.export_dir = Path(export_dir or os.environ.get("MMRE_EXPORT_DIR")
                               or tempfile.mkdtemp(prefix="mmre_export_"))
        self.export_dir.mkdir(parents=True, exist_ok=True)
        self._suggester_factory = suggester_factory
        self._suggesters: OrderedDict[str, Any] = OrderedDict()
        self._suggesters_lock = threading.Lock()

    @property
    def pipe(self) -> Predictor:
        """The pipeline (a `Predictor`); waits for the background load (an InputError when it failed or is slow)."""
        return self._pipe if self._pipe is not None else self._loader.get()

    def device(self) -> str:
        """Where the model runs (or will run), without waiting for the load."""
        if self._pipe is not None:
            return str(self._pipe.device)
        from mmre_demo.device import resolve_device

        try:
            return resolve_device("auto")
        except InputError as exc:
            return f"unavailable ({exc})"

    def engine(self) -> str | None:
        """What runs the models (`Pipeline.engine`): the loaded pipeline's, else the one its load will choose
        on this device; None for a predictor that does not say."""
        if self._pipe is not None:
            return getattr(self._pipe, "engine", None)
        from mmre_demo.serving import default_engine

        try:
            return default_engine(self.device())
        except RuntimeError:  # an unavailable device: nothing to say
            return None

    def default_threshold(self) -> float:
        """The model's own threshold (max end-to-end F1 on validation), read without waiting for the load."""
        if self._pipe is not None:
            return float(self._pipe.threshold)
        from mmre_demo.data.paths import WeightsLayout
        from mmre_demo.model.config import RelationConfig

        return RelationConfig.saved_threshold(WeightsLayout.find().relation_config)

    def suggester(self, tab: TabState) -> Any | None:
        """This tab's LinkSuggester, or None when mmre_demo.kge is missing / broken."""
        factory = self._suggester_factory
        if factory == "auto":
            try:
                from mmre_demo.kge.suggest import LinkSuggester
            except Exception as exc:  # noqa: BLE001 - the app works without link suggestions
                log.warning("link suggestions disabled: %s", exc)
                self._suggester_factory = factory = None
            else:
                self._suggester_factory = factory = LinkSuggester
        if factory is None:
            return None
        with self._suggesters_lock:
            s = self._suggesters.get(tab.sid)
            if s is None:
                s = factory()
                self._suggesters[tab.sid] = s
                while len(self._suggesters) > MAX_TABS_WITH_SUGGESTER:
                    self._suggesters.popitem(last=False)
            self._suggesters.move_to_end(tab.sid)
            return s
