"""The model as a Label Studio ML backend: its entities and relations as pre-annotations
(`mmre label-studio-backend`; the protocol by hand, without the `label-studio-ml` package).

What Label Studio (1.23: `label_studio/ml/api_connector.py`, `ml/models.py`) asks and accepts:

- `GET /health` -> `{"status": "UP", ...}` (when connecting, and before each prediction round);
- `POST /setup` `{"project": "<id>.<created>", "schema": <labeling config XML>, "hostname": <its URL>,
  "access_token": <the project owner's legacy token>, "extra_params": ...}` -> `{"model_version": ...}`: the
  version it then stamps on the predictions (a task that already holds one of that version is not asked again);
- `POST /predict` `{"tasks": [{"id", "data": {...}, ...}], "project": ..., "label_config": <XML>, "params": {...}}`
  -> `{"results": [one {"result": [...], "score", "model_version"} per task, in order]}` (a list per task is
  read as several predictions; a count of results other than the tasks' is refused);
- `POST /webhook`: every project event (Label Studio subscribes the backend when it is connected): 200, no-op.

A task's caption is `data.<the Text's value>` (`data.text` in the project's config), its image
`data.<the Image's value>`: a local path, `file://`, `data:` URI or http(s) URL; Label Studio's own
`/data/upload/...` and `/data/local-files/?d=...` are fetched from the Label Studio URL with its API key (a
legacy token, sent as `Token <key>`, or a personal access token, exchanged for a short-lived access token at
`/api/token/refresh/`). An image that cannot be read costs one warning: the task is predicted from its text.
The result: every entity as a span region (PER/ORG/LOC/MISC, `score` = the tagger's confidence) and every
pair the model shows at its own threshold as a relation (the MNRE name, `score` = its calibrated
probability), built as the Label Studio export builds them (`formats.label_studio_result`: the same region ids).
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import logging
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from mmre_demo.annotations.formats import (
    LS_IMAGE,
    LS_LABELS,
    LS_MODEL_VERSION,
    LS_TEXT,
    LS_UNTYPED,
    LabelledPair,
    label_studio_result,
)
from mmre_demo.data.images import load_image
from mmre_demo.data.labels import ENTITY_TYPES
from mmre_demo.data.schema import Entity, InputError
from mmre_demo.microbatch import DEFAULT_MAX_BATCH, Busy
from mmre_demo.prediction import Prediction, Predictor, PredictRequest

if TYPE_CHECKING:
    from PIL import Image

logger = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 9090  # label-studio-ml-backend's port
ENV_URL = "LABEL_STUDIO_URL"  # where Label Studio serves /data/upload/... (default: the hostname /setup sends)
ENV_API_KEY = "LABEL_STUDIO_API_KEY"  # its API key (default: the access token /setup sends)
MODEL_CLASS = "mmre_demo"
MAX_IMAGE_BYTES = 20 * 2**20
FETCH_TIMEOUT_S = 10.0
# tasks per model call: the pipeline's batch; a whole project's tasks in one call would overflow its queue
TASKS_PER_CALL = DEFAULT_MAX_BATCH
ACCESS_TOKEN_TTL_S = 240.0  # Label Studio's JWT access tokens live 5 minutes: ask for a new one before that


# ---- the project's labeling config ---------------------------------------------------------------
@dataclass(frozen=True)
class LabelNames:
    """Where the predictions go in a project's labeling config: the <Labels> control's name (`from_name`),
    the <Text> it labels (`to_name`), the task data keys of the caption and the image, and the span and
    relation labels the config knows (None: any). The default is the project's own config
    (`formats.label_studio_config`)."""

    from_name: str = LS_LABELS
    to_name: str = LS_TEXT
    text_key: str = LS_TEXT
    image_key: str | None = LS_IMAGE
    span_labels: frozenset[str] | None = None
    relation_labels: frozenset[str] | None = None

    @classmethod
    def from_config(cls, config: str | None) -> LabelNames:
        """The names in `config` (Label Studio's XML); None or "" -> the project's own names. A config that
        is not XML, or has no <Labels> on a <Text>, raises InputError saying so."""
        if not config or not config.strip():
            return cls()
        return _names_of_config(config)


def _data_key(value: str | None, what: str) -> str:
    if not value or not value.startswith("$") or len(value) < 2:
        raise InputError(f"label config: the {what} needs value=\"$key\" (the task's data key), got {value!r}")
    return value[1:]


@functools.lru_cache(maxsize=64)
def _names_of_config(config: str) -> LabelNames:
    try:
        root = ET.fromstring(config)
    except ET.ParseError as exc:
        raise InputError(f"label config is not XML: {exc}") from None
    tags = list(root.iter())
    texts = {el.get("name"): el.get("value") for el in tags if el.tag.lower() == "text" and el.get("name")}
    controls = [el for el in tags if el.tag.lower() == "labels" and el.get("toName") in texts]
    if not controls:
        raise InputError("label config has no <Labels> control on a <Text>: nowhere to put the entities "
                         "(see `mmre annotations label-studio-config`)")

    def values(el: ET.Element, child: str) -> frozenset[str]:
        return frozenset(c.get("value", "") for c in el if c.tag.lower() == child and c.get("value"))

    # the control that labels entities: one whose labels name entity types, else the first
    labels = next((c for c in controls if values(c, "label") & set(ENTITY_TYPES)), controls[0])
    to_name = labels.get("toName", "")
    image = next((el for el in tags if el.tag.lower() == "image" and el.get("value")), None)
    relations = [el for el in tags if el.tag.lower() == "relations"]
    return LabelNames(from_name=labels.get("name") or LS_LABELS, to_name=to_name,
                      text_key=_data_key(texts[to_name], f"<Text name=\"{to_name}\">"),
                      image_key=_data_key(image.get("value"), "<Image>") if image is not None else None,
                      span_labels=values(labels, "label") or None,
                      relation_labels=frozenset().union(*(values(r, "relation") for r in relations)) or None)


# ---- task images ---------------------------------------------------------------------------------
@dataclass
class ImageSource:
    """Reads a task's image reference: a local path, `file://`, a `data:` URI, an http(s) URL, or a path on
    Label Studio (`/data/upload/...`, `/data/local-files/?d=...`) fetched from `label_studio_url` with
    `api_key`. The key goes to Label Studio's own host only."""

    label_studio_url: str | None = None
    api_key: str | None = None
    timeout_s: float = FETCH_TIMEOUT_S
    max_bytes: int = MAX_IMAGE_BYTES
    _access: tuple[str, float] | None = field(default=None, repr=False)  # (JWT access token, when obtained)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def configure(self, hostname: str | None, access_token: str | None) -> None:
        """What Label Studio's /setup sends: used where the options / environment named nothing."""
        if hostname and not self.label_studio_url:
            self.label_studio_url = hostname
        if access_token and not self.api_key:
            self.api_key = access_token

    def _is_label_studio(self, url: str) -> bool:
        if not self.label_studio_url:
            return False
        a, b = urllib.parse.urlsplit(url), urllib.parse.urlsplit(self.label_studio_url)
        return (a.scheme, a.netloc) == (b.scheme, b.netloc)

    def _authorization(self) -> str | None:
        key = self.api_key
        if not key:
            return None
        if key.count(".") != 2:  # a legacy token (40 hex characters)
            return f"Token {key}"
        with self._lock:  # a personal access token: a JWT refresh token, exchanged for an access token
            if self._access is None or time.monotonic() - self._access[1] > ACCESS_TOKEN_TTL_S:
                body = json.dumps({"refresh": key}).encode()
                req = urllib.request.Request(self._join("/api/token/refresh/"), body,
                                             {"Content-Type": "application/json"})
                with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:  # noqa: S310 (our URL)
                    self._access = (json.load(resp)["access"], time.monotonic())
            return f"Bearer {self._access[0]}"

    def _join(self, path: str) -> str:
        if not self.label_studio_url:
            raise OSError(f"it is a path on Label Studio and no Label Studio URL is known (--label-studio-url "
                          f"or ${ENV_URL})")
        return urllib.parse.urljoin(self.label_studio_url.rstrip("/") + "/", path.lstrip("/"))

    def _fetch(self, url: str) -> bytes:
        headers = {"User-Agent": "mmre-label-studio-backend"}
        if self._is_label_studio(url):
            auth = self._authorization()
            if auth:
                headers["Authorization"] = auth
        req = urllib.request.Request(url, headers=headers)
        with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:  # noqa: S310 (http(s) only, checked)
            data = resp.read(self.max_bytes + 1)
        if len(data) > self.max_bytes:
            raise OSError(f"larger than {self.max_bytes // 2**20} MB")
        return data

    def read(self, ref: str) -> bytes | Path:
        """The image's bytes (or local file); raises OSError / ValueError with the reason."""
        if ref.startswith("data:"):
            try:
                return base64.b64decode(ref.split(",", 1)[1], validate=True)
            except (IndexError, binascii.Error):
                raise ValueError("a data: URI without base64 content") from None
        scheme = urllib.parse.urlsplit(ref).scheme.lower()
        if scheme == "file":
            return Path(urllib.request.url2pathname(urllib.parse.urlsplit(ref).path))
        if scheme in ("http", "https"):
            return self._fetch(ref)
        if scheme and len(scheme) > 1:  # s3://, gs://, ...: Label Studio resolves those itself
            raise OSError(f"{scheme}:// is not read here (only local paths, file://, data: and http(s) URLs)")
        if Path(ref).is_file():
            return Path(ref)
        if ref.startswith("/"):  # /data/upload/..., /data/local-files/?d=...: on Label Studio
            return self._fetch(self._join(ref))
        raise OSError("no such file")

    def image(self, ref: Any, task: str) -> Image.Image | None:
        """The task's image, or None (no image, or one that cannot be read: one warning, never an error)."""
        if ref is None or ref == "":
            return None
        if not isinstance(ref, str):
            logger.warning("%s: image %r is not a string: predicting from the text alone", task, ref)
            return None
        try:
            return load_image(self.read(ref), name=ref[:200])
        except (OSError, ValueError, InputError, KeyError, urllib.error.URLError) as exc:
            if isinstance(exc, urllib.error.HTTPError):
                reason = f"HTTP {exc.code}"
            elif isinstance(exc, urllib.error.URLError):
                reason = str(exc.reason)
            else:
                reason = str(exc) or type(exc).__name__
            logger.warning("%s: image %s could not be read (%s): predicting from the text alone", task,
                           ref[:200], reason)
            return None


# ---- predictions ---------------------------------------------------------------------------------
def _task_name(task: Any, index: int) -> str:
    tid = task.get("id") if isinstance(task, dict) else None
    return f"task {index + 1}" + (f" (id {tid})" if tid is not None else "")


def _caption(task: Any, index: int, names: LabelNames) -> str:
    """The task's caption; a malformed task raises InputError naming it."""
    at = _task_name(task, index)
    if not isinstance(task, dict):
        raise InputError(f"{at}: a task must be an object, got {type(task).__name__}")
    data = task.get("data")
    if not isinstance(data, dict):
        raise InputError(f"{at}: a task needs a 'data' object")
    text = data.get(names.text_key)
    if not isinstance(text, str):
        raise InputError(f"{at}: data.{names.text_key} must be the caption as a string, got "
                         f"{type(text).__name__ if text is not None else 'nothing'}")
    return text


def prediction_result(pred: Prediction, text: str, names: LabelNames = LabelNames(),
                      model_version: str = LS_MODEL_VERSION) -> dict[str, Any]:
    """One Label Studio prediction of `pred` (on `text`, the task's caption): every entity as a span
    region, every relation the model shows at its own threshold as a relation item; the score is the mean
    of theirs (None when there is nothing)."""

    def on_text(e: Entity) -> Entity:
        return replace(e, text=text[e.start:e.end])

    def allowed(e: Entity) -> bool:
        label = e.type if e.type in ENTITY_TYPES else LS_UNTYPED
        return names.span_labels is None or label in names.span_labels

    entities = [on_text(e) for e in pred.entities if allowed(e)]
    relations: list[LabelledPair] = [
        (on_text(p.head), on_text(p.tail), p.label, round(p.probability, 4)) for p in pred.relations()
        if allowed(p.head) and allowed(p.tail)
        and (names.relation_labels is None or p.label in names.relation_labels)]
    result = label_studio_result(entities, relations,
                                 lambda e: None if e.confidence is None else round(e.confidence, 4),
                                 names.from_name, names.to_name)
    scores = [r["score"] for r in result if r.get("score") is not None]
    return {"result": result, "score": round(sum(scores) / len(scores), 4) if scores else None,
            "model_version": model_version}


def tasks_predictions(pipe: Predictor, tasks: Sequence[Any], names: LabelNames = LabelNames(),
                      images: ImageSource | None = None, model_version: str = LS_MODEL_VERSION,
                      read_text: bool = True) -> list[dict[str, Any]]:
    """One Label Studio prediction per task, in order (`TASKS_PER_CALL` tasks at a time share the model's
    batches). A malformed task (not an object, no caption string) raises InputError naming it, before any
    work; a caption the model refuses (empty, too long) gets an empty result and a warning, an unreadable
    image a warning and the text's prediction. A full queue (other callers' work) raises `Busy`."""
    images = images or ImageSource()
    captions = [_caption(t, i, names) for i, t in enumerate(tasks)]
    out = []
    for lo in range(0, len(tasks), TASKS_PER_CALL):
        chunk = range(lo, min(lo + TASKS_PER_CALL, len(tasks)))
        requests = [PredictRequest(captions[i], images.image(tasks[i]["data"].get(names.image_key),
                                                             _task_name(tasks[i], i))
                                   if names.image_key else None, read_text=read_text) for i in chunk]
        for i, answer in zip(chunk, pipe.predict_many(requests), strict=True):
            if isinstance(answer, Busy):
                raise answer
            if isinstance(answer, InputError):
                logger.warning("%s: no prediction: %s", _task_name(tasks[i], i), answer)
                out.append({"result": [], "score": None, "model_version": model_version})
            else:
                out.append(prediction_result(answer, captions[i], names, model_version))
    return out


def task_predictions(pipe: Predictor, task: dict[str, Any], names: LabelNames = LabelNames(),
                     images: ImageSource | None = None, model_version: str = LS_MODEL_VERSION,
                     read_text: bool = True) -> dict[str, Any]:
    """One task's Label Studio prediction (`tasks_predictions` of that task alone)."""
    return tasks_predictions(pipe, [task], names, images, model_version, read_text)[0]


# ---- the HTTP app --------------------------------------------------------------------------------
def _json_object(body: bytes, route: str) -> dict[str, Any]:
    try:
        payload = json.loads(body or b"null")
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{route}: the body is not JSON ({exc})") from None
    if not isinstance(payload, dict):
        raise InputError(f"{route}: the body must be a JSON object, got {type(payload).__name__}")
    return payload


def _config_text(value: Any, key: str) -> str | None:
    if value is not None and not isinstance(value, str):
        raise InputError(f"'{key}' must be the labeling config as an XML string, got {type(value).__name__}")
    return value


def create_app(pipe: Predictor, model_version: str = LS_MODEL_VERSION, images: ImageSource | None = None,
               read_text: bool = True) -> FastAPI:
    """The ML backend around `pipe` (loaded once by the caller). A malformed request is answered 400
    with `{"error": what is wrong}`; a full model queue 503 (Label Studio stores nothing and asks again)."""
    images = images or ImageSource()
    projects: set[Any] = set()  # set up so far (Label Studio sets up again before each round of predictions)
    app = FastAPI(title="mmre_demo Label Studio ML backend", docs_url=None, redoc_url=None, openapi_url=None)

    @app.exception_handler(InputError)
    async def bad_request(request: Request, exc: InputError):
        logger.warning("%s %s: 400: %s", request.method, request.url.path, exc)
        return JSONResponse({"error": str(exc)}, status_code=400)

    @app.exception_handler(Busy)
    async def busy(request: Request, exc: Busy):
        logger.warning("%s %s: 503: %s", request.method, request.url.path, exc)
        return JSONResponse({"error": str(exc)}, status_code=503, headers={"Retry-After": "5"})

    @app.get("/")
    @app.get("/health")
    def health():
        return {"status": "UP", "model_class": MODEL_CLASS, "model_version": model_version}

    @app.post("/setup")
    async def setup(request: Request):
        body = _json_object(await request.body(), "/setup")
        LabelNames.from_config(_config_text(body.get("schema", body.get("label_config")), "schema"))  # usable?
        images.configure(body.get("hostname") or None, body.get("access_token") or None)
        project = body.get("project")
        if isinstance(project, (str, int)) and project not in projects:
            projects.add(project)
            logger.info("set up for Label Studio project %s", project)
        return {"model_version": model_version}

    @app.post("/predict")
    async def predict(request: Request):
        body = _json_object(await request.body(), "/predict")
        tasks = body.get("tasks")
        if not isinstance(tasks, list):
            raise InputError("/predict: 'tasks' must be a list of Label Studio tasks")
        names = LabelNames.from_config(_config_text(body.get("label_config"), "label_config"))
        results = await run_in_threadpool(tasks_predictions, pipe, tasks, names, images, model_version, read_text)
        return {"results": results, "model_version": model_version}

    @app.post("/webhook")
    async def webhook():
        return {}  # project events (annotation created, ...): this backend does not learn from them

    @app.post("/train")
    async def train():
        return JSONResponse({"error": "this backend does not train from Label Studio: export the annotations "
                                      "(mmre annotations import) and run mmre train"}, status_code=501)

    @app.get("/metrics")
    def metrics():
        return {}

    @app.get("/versions")
    def versions():
        return {"versions": [model_version], "message": ""}

    return app
