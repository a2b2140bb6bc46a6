"""`mmre label-studio-backend`: the model's entities and relations as Label Studio predictions (the pure
functions, on a fake predictor and on the shipped pipeline), its images read from where Label Studio keeps
them (or skipped with one warning), and the ML backend's routes, malformed requests answered 400."""

from __future__ import annotations

import base64
import http.server
import io
import json
import logging
import socket
import threading
from collections.abc import Iterator, Sequence

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from mmre_demo.annotations.formats import (
    LS_MODEL_VERSION,
    SPAN_LABELS,
    label_studio_config,
    label_studio_decisions,
)
from mmre_demo.annotations.ls_backend import (
    DEFAULT_HOST,
    DEFAULT_PORT,
    TASKS_PER_CALL,
    ImageSource,
    LabelNames,
    create_app,
    task_predictions,
    tasks_predictions,
)
from mmre_demo.cli import build_parser
from mmre_demo.data.labels import RELATIONS
from mmre_demo.data.schema import Entity, InputError, check_caption
from mmre_demo.microbatch import Busy
from mmre_demo.prediction import PairPrediction, Prediction, PredictRequest

CAP = "Astronaut Eileen Collins of NASA poses in Houston, Texas."
PER = Entity("Eileen Collins", 10, 24, "PER", 0.98)
ORG = Entity("NASA", 28, 32, "ORG", 0.91)
LOC = Entity("Houston", 42, 49, "LOC", 0.95)
CUSTOM_CONFIG = """<View>
  <Text name="caption" value="$tweet"/>
  <Labels name="ner" toName="caption"><Label value="PER"/><Label value="ORG"/></Labels>
  <Relations><Relation value="/per/org/member_of"/></Relations>
</View>"""


class FakePredictor:
    """Answers every caption with PER, ORG and LOC of `CAP` (when it holds them): member_of shown (0.8),
    locate_at below the threshold (0.3); refuses an empty caption as the pipeline does; keeps the requests."""

    threshold = 0.5
    labels = ("None", *RELATIONS)
    device = "cpu"

    def __init__(self, busy: bool = False) -> None:
        self.requests: list[PredictRequest] = []
        self.calls: list[int] = []  # requests per call
        self.busy = busy

    def predict_many(self, requests: Sequence[PredictRequest]) -> list[Prediction | InputError]:
        self.requests.extend(requests)
        self.calls.append(len(requests))
        if self.busy:
            return [Busy("The server is busy (64 requests are waiting): try again in a few seconds.")] * len(requests)
        out: list[Prediction | InputError] = []
        for r in requests:
            try:
                check_caption(r.caption)
            except InputError as exc:
                out.append(exc)
                continue
            ents = [e for e in (PER, ORG, LOC) if r.caption[e.start:e.end] == e.text]
            pairs = [PairPrediction(PER, ORG, "/per/org/member_of", 0.8, []),
                     PairPrediction(ORG, LOC, "/org/loc/locate_at", 0.3, [])] if len(ents) == 3 else []
            out.append(Prediction(caption=r.caption, entities=ents, pairs=pairs, concepts=[],
                                  has_image=r.image is not None, image_size=None, device="cpu", threshold=0.5))
        return out


def _png() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (8, 6), (200, 30, 30)).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture()
def fake_label_studio() -> Iterator[tuple[str, list[dict]]]:
    """A stand-in for Label Studio's file server on a free 127.0.0.1 port: /data/upload/1/red.png for the
    token "abc123" only; (its URL, the headers of every request it got)."""
    seen: list[dict] = []
    png = _png()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (the stdlib's name)
            seen.append(dict(self.headers))
            if self.headers.get("Authorization") != "Token abc123":
                self.send_response(401)
                self.end_headers()
                return
            if self.path != "/data/upload/1/red.png":
                self.send_response(404)
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Content-Length", str(len(png)))
            self.end_headers()
            self.wfile.write(png)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", seen
    server.shutdown()
    server.server_close()


def _closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}/red.png"


def _regions(result: list[dict]) -> dict[str, dict]:
    return {r["id"]: r for r in result if r["type"] == "labels"}


def _relations(result: list[dict]) -> list[dict]:
    return [r for r in result if r["type"] == "relation"]


# ---- the labeling config -------------------------------------------------------------------------
def test_the_projects_own_config_gives_its_own_names_and_labels():
    names = LabelNames.from_config(label_studio_config())
    assert (names.from_name, names.to_name, names.text_key, names.image_key) == ("label", "text", "text", "image")
    assert names.span_labels == frozenset(SPAN_LABELS) and names.relation_labels == frozenset(RELATIONS)
    assert LabelNames.from_config(None) == LabelNames.from_config("") == LabelNames()


def test_a_custom_config_names_where_the_predictions_go():
    names = LabelNames.from_config(CUSTOM_CONFIG)
    pred = task_predictions(FakePredictor(), {"data": {"tweet": CAP}}, names)
    regions = _regions(pred["result"])
    assert {(r["from_name"], r["to_name"]) for r in regions.values()} == {("ner", "caption")}
    assert {r["value"]["labels"][0] for r in regions.values()} == {"PER", "ORG"}  # LOC is not in the config
    assert [r["labels"] for r in _relations(pred["result"])] == [["/per/org/member_of"]]


@pytest.mark.parametrize(("config", "reason"), [
    ("<View><Text name='t' value='$text'", "not XML"),
    ("<View><Text name='t' value='$text'/><Choices name='c' toName='t'/></View>", "no <Labels> control on a <Text>"),
    ("<View><Text name='t' value='text'/><Labels name='l' toName='t'/></View>", "value=\"$key\""),
])
def test_an_unusable_config_is_refused_with_the_reason(config, reason):
    with pytest.raises(InputError, match=reason.replace("$", r"\$")):
        LabelNames.from_config(config)


# ---- predictions (fake predictor) ----------------------------------------------------------------
def test_entities_become_scored_span_regions_and_shown_relations_relation_items():
    pred = task_predictions(FakePredictor(), {"id": 1, "data": {"text": CAP}}, model_version="mmre_demo-abc")
    regions = _regions(pred["result"])
    assert list(regions) == ["10-24-PER", "28-32-ORG", "42-49-LOC"]  # the export's ids, in caption order
    for r in regions.values():
        assert r["value"]["text"] == CAP[r["value"]["start"]:r["value"]["end"]]
    assert [r["score"] for r in regions.values()] == [0.98, 0.91, 0.95]
    # locate_at (0.3) is below the model's threshold: not a relation
    assert _relations(pred["result"]) == [{"from_id": "10-24-PER", "to_id": "28-32-ORG", "type": "relation",
                                           "direction": "right", "labels": ["/per/org/member_of"], "score": 0.8}]
    assert pred["score"] == pytest.approx((0.98 + 0.91 + 0.95 + 0.8) / 4, abs=1e-4)
    assert pred["model_version"] == "mmre_demo-abc"


def test_a_task_the_model_refuses_gets_an_empty_prediction_and_the_others_theirs(caplog):
    with caplog.at_level(logging.WARNING, logger="mmre_demo.annotations.ls_backend"):
        preds = tasks_predictions(FakePredictor(), [{"id": 1, "data": {"text": "  "}},
                                                    {"id": 2, "data": {"text": CAP}}])
    assert preds[0] == {"result": [], "score": None, "model_version": LS_MODEL_VERSION}
    assert len(_regions(preds[1]["result"])) == 3
    assert "task 1 (id 1): no prediction" in caplog.text


def test_a_whole_projects_tasks_go_to_the_model_a_batch_at_a_time_and_come_back_in_order():
    fake = FakePredictor()
    tasks = [{"id": n, "data": {"text": CAP if n % 2 else "Nothing here."}} for n in range(40)]
    preds = tasks_predictions(fake, tasks)
    assert max(fake.calls) <= TASKS_PER_CALL and sum(fake.calls) == 40
    assert [len(p["result"]) for p in preds] == [4 if n % 2 else 0 for n in range(40)]
    assert [r.caption for r in fake.requests] == [t["data"]["text"] for t in tasks]


def test_a_malformed_task_is_refused_before_any_task_is_predicted():
    fake = FakePredictor()
    with pytest.raises(InputError, match="task 3"):
        tasks_predictions(fake, [{"data": {"text": CAP}}] * 2 + [{"data": {}}])
    assert fake.requests == []


@pytest.mark.parametrize(("task", "reason"), [
    ("a caption", "task 1: a task must be an object"),
    ({"id": 5}, "task 1 \\(id 5\\): a task needs a 'data' object"),
    ({"data": {"image": "x.jpg"}}, "data.text must be the caption as a string, got nothing"),
    ({"data": {"text": 3}}, "data.text must be the caption as a string, got int"),
])
def test_a_malformed_task_is_refused_naming_it(task, reason):
    with pytest.raises(InputError, match=reason):
        task_predictions(FakePredictor(), task)


# ---- images --------------------------------------------------------------------------------------
def test_a_label_studio_upload_is_fetched_with_the_api_key(fake_label_studio):
    url, seen = fake_label_studio
    fake = FakePredictor()
    pred = task_predictions(fake, {"data": {"text": CAP, "image": "/data/upload/1/red.png"}},
                            images=ImageSource(url, "abc123"))
    assert isinstance(fake.requests[0].image, Image.Image) and fake.requests[0].image.size == (8, 6)
    assert seen[0]["Authorization"] == "Token abc123"
    assert len(_relations(pred["result"])) == 1


def test_an_absolute_url_on_label_studio_gets_the_key_and_one_elsewhere_does_not(fake_label_studio):
    url, seen = fake_label_studio
    fake = FakePredictor()
    task_predictions(fake, {"data": {"text": CAP, "image": f"{url}/data/upload/1/red.png"}},
                     images=ImageSource(url, "abc123"))
    assert fake.requests[0].image is not None
    other = url.replace("127.0.0.1", "localhost")  # the same server under another host name: not Label Studio
    task_predictions(fake, {"data": {"text": CAP, "image": f"{other}/data/upload/1/red.png"}},
                     images=ImageSource(url, "abc123"))
    assert "Authorization" not in seen[-1] and fake.requests[1].image is None


def test_local_paths_file_urls_and_data_uris_are_read(tmp_path):
    path = tmp_path / "red.png"
    path.write_bytes(_png())
    fake = FakePredictor()
    for ref in (str(path), path.as_uri(), "data:image/png;base64," + base64.b64encode(_png()).decode()):
        task_predictions(fake, {"data": {"text": CAP, "image": ref}})
    assert [r.image.size for r in fake.requests] == [(8, 6)] * 3


@pytest.mark.parametrize("image", ["/data/upload/1/red.png", "s3://bucket/red.png", "missing/red.png",
                                   "data:image/png;base64,@@", 17])
def test_an_unreadable_image_costs_one_warning_and_the_text_is_predicted(image, caplog):
    fake = FakePredictor()
    with caplog.at_level(logging.WARNING, logger="mmre_demo.annotations.ls_backend"):
        pred = task_predictions(fake, {"id": 9, "data": {"text": CAP, "image": image}})
    assert fake.requests[0].image is None and len(_relations(pred["result"])) == 1
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "task 1 (id 9)" in warnings[0].getMessage()
    assert "predicting from the text alone" in warnings[0].getMessage()


def test_a_wrong_key_or_a_missing_file_on_label_studio_is_a_warning(fake_label_studio, caplog):
    url, _ = fake_label_studio
    with caplog.at_level(logging.WARNING, logger="mmre_demo.annotations.ls_backend"):
        task_predictions(FakePredictor(), {"data": {"text": CAP, "image": "/data/upload/1/red.png"}},
                         images=ImageSource(url, "wrong"))
        task_predictions(FakePredictor(), {"data": {"text": CAP, "image": "/data/upload/1/gone.png"}},
                         images=ImageSource(url, "abc123"))
    assert "(HTTP 401)" in caplog.text and "(HTTP 404)" in caplog.text


def test_setup_fills_only_what_the_options_left_open():
    given = ImageSource("http://ls:8080", "key")
    given.configure("http://other:8080", "token")
    assert (given.label_studio_url, given.api_key) == ("http://ls:8080", "key")
    empty = ImageSource()
    empty.configure("http://localhost:8080", "token")
    assert (empty.label_studio_url, empty.api_key) == ("http://localhost:8080", "token")


# ---- the HTTP routes -----------------------------------------------------------------------------
@pytest.fixture()
def client() -> TestClient:
    return TestClient(create_app(FakePredictor(), "mmre_demo-test"))


def test_health_setup_webhook_and_metrics_answer_as_label_studio_expects(client):
    health = client.get("/health")
    assert health.status_code == 200 and health.json()["status"] == "UP"
    assert health.json()["model_class"] == "mmre_demo"
    setup = client.post("/setup", json={"project": "1.1700000000", "schema": label_studio_config(),
                                        "hostname": "http://localhost:8080", "access_token": "x" * 40,
                                        "extra_params": None})
    assert setup.status_code == 200 and setup.json() == {"model_version": "mmre_demo-test"}
    assert client.post("/webhook", json={"action": "ANNOTATION_CREATED", "project": {"id": 1}}).status_code == 200
    assert client.get("/metrics").status_code == 200
    assert client.get("/versions").json()["versions"] == ["mmre_demo-test"]


def test_predict_answers_one_prediction_per_task_in_order(client):
    body = {"tasks": [{"id": 11, "data": {"text": CAP}}, {"id": 12, "data": {"text": "Nothing here."}}],
            "project": "1.1700000000", "label_config": label_studio_config(),
            "params": {"login": None, "password": None, "context": None}}
    resp = client.post("/predict", json=body)
    assert resp.status_code == 200
    results = resp.json()["results"]
    assert len(results) == 2 and all(r["model_version"] == "mmre_demo-test" for r in results)
    assert len(results[0]["result"]) == 4 and results[1]["result"] == []


@pytest.mark.parametrize(("route", "body", "reason"), [
    ("/predict", b"{not json", "/predict: the body is not JSON"),
    ("/predict", b"[1, 2]", "/predict: the body must be a JSON object, got list"),
    ("/predict", b'{"tasks": {"id": 1}}', "/predict: 'tasks' must be a list of Label Studio tasks"),
    ("/predict", b'{"tasks": [{"id": 4, "data": {}}]}', "task 1 (id 4): data.text must be the caption as a string"),
    ("/predict", b'{"tasks": [], "label_config": "<View"}', "label config is not XML"),
    ("/predict", b'{"tasks": [], "label_config": 3}', "'label_config' must be the labeling config as an XML string"),
    ("/setup", b"", "/setup: the body must be a JSON object, got NoneType"),
    ("/setup", b'{"schema": "<View><Text name=\\"t\\" value=\\"$t\\"/></View>"}', "no <Labels> control on a <Text>"),
])
def test_a_malformed_request_is_answered_400_with_what_is_wrong(client, route, body, reason):
    resp = client.post(route, content=body, headers={"Content-Type": "application/json"})
    assert resp.status_code == 400
    assert reason in resp.json()["error"]


def test_a_full_model_queue_is_answered_503_so_label_studio_stores_nothing_and_asks_again():
    client = TestClient(create_app(FakePredictor(busy=True)))
    resp = client.post("/predict", json={"tasks": [{"data": {"text": CAP}}]})
    assert resp.status_code == 503 and "busy" in resp.json()["error"]


def test_the_cli_registers_the_backend_with_label_studio_ml_backends_defaults():
    args = build_parser().parse_args(["label-studio-backend"])
    assert (args.host, args.port, args.label_studio_url, args.api_key) == (DEFAULT_HOST, DEFAULT_PORT, None, None)
    assert DEFAULT_PORT == 9090


# ---- the shipped pipeline ------------------------------------------------------------------------
def test_the_shipped_model_pre_annotates_a_caption_that_the_import_reads_back(pipeline):
    client = TestClient(create_app(pipeline, "mmre_demo-shipped"))
    task = {"id": 1, "data": {"text": CAP, "image": _closed_port_url()}}  # unreachable image: text only
    resp = client.post("/predict", json={"tasks": [task], "label_config": label_studio_config()})
    assert resp.status_code == 200
    (pred,) = resp.json()["results"]
    regions = _regions(pred["result"])
    assert {r["value"]["text"]: r["value"]["labels"][0] for r in regions.values()}.items() >= {
        ("Eileen Collins", "PER"), ("NASA", "ORG"), ("Houston", "LOC")}
    assert all(0.0 <= r["score"] <= 1.0 for r in pred["result"])
    relations = _relations(pred["result"])
    assert relations and all(r["labels"][0] in RELATIONS and r["score"] >= pipeline.threshold for r in relations)
    assert all(r["from_id"] in regions and r["to_id"] in regions for r in relations)
    # an annotator who accepts every pre-annotation: `mmre annotations import` reads one accept per relation
    export = [{**task, "predictions": [pred], "annotations": [{"id": 1, "result": pred["result"]}]}]
    decisions = label_studio_decisions(json.dumps(export), "ls.json", annotator="ann")
    text = {rid: r["value"]["text"] for rid, r in regions.items()}
    assert [(c.head.text, c.tail.text, c.predicted, c.probability, d) for c, d, _, _ in decisions] == [
        (text[r["from_id"]], text[r["to_id"]], r["labels"][0], r["score"], "accept") for r in relations]
