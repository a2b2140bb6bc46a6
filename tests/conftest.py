"""Shared fixtures. Tests needing ../shared/data skip with a clear reason when it is absent."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

from mmre_demo.data.paths import shared_data_dir, weights_dir  # noqa: E402


@pytest.fixture(scope="session")
def shared_data():
    d = shared_data_dir()
    if not (d / "mnre" / "mnre_val.txt").is_file():
        pytest.skip(f"shared research data not found at {d} (set MMRE_DATA_DIR; see README 'Data')")
    return d


@pytest.fixture(scope="session")
def shipped_relation_dir():
    d = weights_dir() / "relation"
    if not (d / "model.safetensors").is_file():
        pytest.fail(f"shipped relation weights missing at {d}")
    return d


@pytest.fixture(scope="session")
def pipeline(shipped_relation_dir):
    from mmre_demo.pipeline import Pipeline

    return Pipeline.load(device="cpu")


def app_controller(pipeline, folder, **options):
    """The app's shared resources around `pipeline`: its own annotation store and export folder under
    `folder`, no link suggester unless `suggester_factory` is given."""
    from mmre_demo.annotations import AnnotationStore
    from mmre_demo.ui import Controller

    options.setdefault("suggester_factory", None)
    return Controller(pipeline=pipeline, annotations=AnnotationStore(folder / "ann.sqlite3"), export_dir=folder / "exp",
                      **options)


def launch_test_app(pipeline, folder, suggester_factory=None):
    """Build the app around `pipeline` (annotations and exports under `folder`), serve it on a free
    127.0.0.1 port; returns (url, demo). Call `demo.close()` when done."""
    import socket

    from mmre_demo.ui import build, launch_kwargs

    demo = build(app_controller(pipeline, folder, suggester_factory=suggester_factory))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    demo.queue(default_concurrency_limit=2).launch(server_name="127.0.0.1", server_port=port,
                                                   prevent_thread_lock=True, quiet=True, **launch_kwargs())
    return f"http://127.0.0.1:{port}/", demo


@pytest.fixture(scope="module")
def review_app(pipeline, tmp_path_factory):
    """The app served on 127.0.0.1 with a store of its own, and an `mmre extract` folder of the review
    corpus (tests/support/review_corpus.py): (url, folder of the store, extract folder)."""
    from tests.support.review_corpus import make_extract_folder

    root = tmp_path_factory.mktemp("review_app")
    url, demo = launch_test_app(pipeline, root)
    yield url, root, make_extract_folder(root)
    demo.close()
