"""Against a real Label Studio (1.23.2, started here; tests/support/label_studio.py): the project made from
`mmre annotations label-studio-config` takes `mmre annotations export --format label-studio` with its default
options, shows each task's image, and its JSON export comes back through `mmre annotations import` as the same
decisions (the same MNRE lines, the same annotators); `mmre label-studio-backend`, connected to a project,
gives the tasks created there the model's entities and relations as predictions."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from mmre_demo.annotations import AnnotationStore
from mmre_demo.annotations.store import mnre_text
from mmre_demo.annotations.training import simulate_decision
from mmre_demo.cli import main
from mmre_demo.data.labels import NONE_LABEL
from mmre_demo.data.mnre import read_mnre
from tests.support import label_studio
from tests.support.processes import stop

N_DECISIONS = 60
ANNOTATORS = ("alice", "bob")  # names, not e-mails of Label Studio users: what Label Studio used to refuse


@pytest.fixture(scope="module")
def server(tmp_path_factory, shared_data):
    exe = label_studio.executable()
    if exe is None:
        reason = os.environ.get("MMRE_LABEL_STUDIO_SKIP") or (
            f"Label Studio is not installed (.ci/run installs it: python3 -m venv .venv-ls && .venv-ls/bin/pip "
            f"install label-studio=={label_studio.VERSION} 'sentry-sdk<3'; or set MMRE_LABEL_STUDIO)")
        pytest.skip(reason)
    root = tmp_path_factory.mktemp("ls_files")
    shutil.copytree(shared_data / "mnre_images_sample", root / "images")
    ls = label_studio.start(exe, tmp_path_factory.mktemp("ls_data"), root)
    ls.images = root / "images"
    yield ls
    ls.stop()


def _pair_predictions(lines: list) -> list[str]:
    """A prediction per pair that gives every kind of decision: right, silent, or a wrong relation."""
    out = []
    for i, e in enumerate(lines):
        if i % 3 == 0:
            out.append(e.relation)
        elif i % 3 == 1 or e.relation != NONE_LABEL:
            out.append(NONE_LABEL)
        else:
            out.append("/per/per/peer")
    return out


@pytest.fixture(scope="module")
def decided(tmp_path_factory, shared_data) -> AnnotationStore:
    """60 decisions on MNRE train lines, the posts with a sample image first; the first 10 pairs are decided
    by both annotators, the others by one."""
    images = {p.name for p in (shared_data / "mnre_images_sample").iterdir()}
    lines, _ = read_mnre(shared_data / "mnre" / "mnre_train.txt")
    chosen = [e for e in lines if e.img_id in images][:20]
    chosen += [e for e in lines[:400] if e.img_id not in images][: N_DECISIONS - 10 - len(chosen)]
    store = AnnotationStore(tmp_path_factory.mktemp("ls_store") / "decided.sqlite3")
    rows = []
    for i, (e, predicted) in enumerate(zip(chosen, _pair_predictions(chosen), strict=True)):
        sim = simulate_decision(e, predicted, 0.5 + (i % 5) / 10)
        rows.append(sim.as_tuple(ANNOTATORS[i % 2]))
        if i < 10:
            rows.append(sim.as_tuple(ANNOTATORS[(i + 1) % 2]))
    store.add_many(rows, source="test")
    assert len(store.current()) == N_DECISIONS
    return store


def _cli_out(capsys, argv: list[str]) -> str:
    capsys.readouterr()
    assert main(argv) == 0
    return capsys.readouterr().out


def _standing(store: AnnotationStore) -> list[tuple]:
    return sorted((d.mnre_line(), d.annotator, d.decision, d.relation) for d in store.current())


@pytest.fixture(scope="module")
def project(server, decided, tmp_path_factory):
    """A project made from the printed config, with local-files storage over the images and the default export
    imported; what Label Studio's import said."""
    out = tmp_path_factory.mktemp("ls_export") / "tasks.json"
    assert main(["annotations", "export", "--db", str(decided.path), "--format", "label-studio", "-o", str(out)]) == 0
    from mmre_demo.annotations.formats import label_studio_config

    pid = server.create_project("mmre round trip", label_studio_config())
    server.add_local_storage(pid, server.images)
    tasks = json.loads(out.read_text())
    return pid, tasks, server.import_tasks(pid, tasks)


def test_label_studio_takes_the_default_export_with_every_annotation(project, decided):
    _, tasks, imported = project
    assert imported["task_count"] == len(tasks)
    assert imported["annotation_count"] == sum(len(t["annotations"]) for t in tasks)
    assert imported["prediction_count"] == len(tasks)


def test_the_printed_config_is_the_projects_config(server, project, capsys):
    printed = _cli_out(capsys, ["annotations", "label-studio-config"])
    assert server.call("GET", f"/api/projects/{project[0]}")["label_config"].strip() == printed.strip()


def test_every_image_is_served_by_label_studio(server, project):
    _, tasks, _ = project
    with_image = [t for t in tasks if (server.images / t["data"]["img_id"]).is_file()]  # 34 MNRE images are here
    assert len(with_image) >= 5
    with server.client() as c:
        for t in with_image:
            r = c.get(t["data"]["image"])
            assert r.status_code == 200, (t["data"]["image"], r.status_code)
            assert r.content == (server.images / t["data"]["img_id"]).read_bytes()


def test_label_studio_s_export_imports_as_the_same_decisions(server, project, decided, tmp_path, capsys):
    exported = server.export_json(project[0])
    assert all(isinstance(p, int) for t in exported for p in t["predictions"])  # ids only: the meta carries them
    f = tmp_path / "from_label_studio.json"
    f.write_text(json.dumps(exported))
    back = tmp_path / "back.sqlite3"
    result = json.loads(_cli_out(capsys, ["annotations", "import", str(f), "--db", str(back)]).splitlines()[-1])
    assert result["imported"] == N_DECISIONS and result["annotators"] == list(ANNOTATORS)
    assert _standing(AnnotationStore(back)) == _standing(decided)
    originals = sorted(mnre_text(decided.current()).splitlines())
    assert sorted(mnre_text(AnnotationStore(back).current()).splitlines()) == originals


@pytest.fixture(scope="module")
def backend(tmp_path_factory):
    """`mmre label-studio-backend` in its own process on a free loopback port (stopped by its PID)."""
    port = label_studio.free_port()
    log = tmp_path_factory.mktemp("ls_backend") / "backend.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "mmre_demo", "label-studio-backend", "--port", str(port)],
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        if not label_studio.wait_healthy(f"{url}/health", proc, log, 180):
            raise RuntimeError(f"the backend did not answer /health: {log.read_text()[-2000:]}")
        yield url, log
    finally:
        stop(proc, group=True)


def _relations(result: list[dict]) -> list[tuple[str, str, str, float]]:
    """(head text, tail text, label, score) of a prediction's relation items."""
    spans = {r["id"]: r["value"]["text"] for r in result if r["type"] == "labels"}
    return [(spans[r["from_id"]], spans[r["to_id"]], r["labels"][0], r["score"])
            for r in result if r["type"] == "relation"]


def test_a_task_created_in_label_studio_gets_the_model_s_predictions(server, backend):
    from mmre_demo.annotations.formats import LS_LOCAL_FILES, label_studio_config

    pid = server.create_project("mmre backend", label_studio_config())
    server.add_local_storage(pid, server.images)
    url, log = backend
    ml = server.call("POST", "/api/ml", json={"project": pid, "url": url, "title": "mmre_demo"})
    assert ml["state"] == "CO", ml  # connected: Label Studio reached /health and /setup
    image = sorted(p.name for p in server.images.iterdir())[0]
    server.import_tasks(pid, [
        {"text": "Astronaut Eileen Collins of NASA poses in Houston, Texas.", "image": ""},
        {"text": "Bill Cosby gets a star on the Hollywood Walk of Fame in Los Angeles",
         "image": f"{LS_LOCAL_FILES}{image}"}])
    ids = [t["id"] for t in server.call("GET", "/api/tasks", params={"project": pid})["tasks"]]
    done = server.call("POST", "/api/dm/actions", params={"id": "retrieve_tasks_predictions", "project": pid},
                       json={"selectedItems": {"all": False, "included": ids}})
    assert "2 predictions" in done["detail"], done
    got = []
    for tid in ids:
        preds = server.call("GET", f"/api/tasks/{tid}")["predictions"]
        assert len(preds) == 1 and preds[0]["model_version"].startswith("mmre_demo"), preds
        got.append(_relations(preds[0]["result"]))
        assert got[-1] and all(0 < score <= 1 for *_, score in got[-1])
    assert ("Eileen Collins", "NASA", "/per/org/member_of") in [r[:3] for r in got[0]]
    assert "could not be read" not in log.read_text()  # the image came through Label Studio
