"""gradio_client round trip against the app launched in the test on 127.0.0.1 (real model)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(pipeline, tmp_path_factory):
    from tests.conftest import launch_test_app

    url, demo = launch_test_app(pipeline, tmp_path_factory.mktemp("client"))
    yield url
    demo.close()


@pytest.fixture(scope="module")
def client(server):
    from gradio_client import Client

    return Client(server, verbose=False)


def test_api_names(client):
    from mmre_demo.ui import API_NAMES

    api = client.view_api(return_format="dict", print_info=False)
    names = {k.lstrip("/") for k in api["named_endpoints"]}
    assert set(API_NAMES) <= names, names


def test_round_trip(client):
    from gradio_client import handle_file

    from mmre_demo.ui import examples

    ex = examples()[0]
    res = client.predict(handle_file(ex["path"]), ex["caption"], 0.5, False, api_name="/predict")
    status, ents_hl, ents_df, rel_df, pair, ev_img, ev_md, words, concepts, graph, node, _, text_md, also, _ = res
    assert status.startswith("✅"), status
    assert "read" in text_md  # the text in the image was read (read_text defaults to on)
    assert rel_df["data"] and rel_df["headers"][2] == "relation"
    assert len(ents_df["data"]) >= 3
    assert pair and Path(ev_img).is_file()
    assert concepts["confidences"]
    assert not (graph or {}).get("plot"), "the graph is drawn only while its tab is open"
    opened = client.predict(0.5, api_name="/open_graph")  # as opening the Graph tab does
    fig = json.loads(opened[1]["plot"]) if isinstance(opened[1].get("plot"), str) else opened[1]["plot"]
    assert fig["data"]
    again = client.predict(handle_file(ex["path"]), ex["caption"], 0.5, False, api_name="/predict")
    assert again[9]["plot"], "with the Graph tab open, /predict returns the drawing too"
    # evidence for another pair
    ev = client.predict("2", api_name="/explain")
    assert Path(ev[1]).is_file() and "probability" in ev[2]
    # a second submission accumulates into the same session graph; export sees both
    ex2 = examples()[1]
    client.predict(handle_file(ex2["path"]), ex2["caption"], 0.5, False, api_name="/predict")
    out = client.predict(0.0, api_name="/export_graph")
    files = out[3]
    paths = [f if isinstance(f, str) else f["path"] for f in files]
    data = json.loads(Path([p for p in paths if p.endswith(".json")][0]).read_text())
    captions = {c for n in data["nodes"] for c in n.get("captions", [])}
    assert ex["caption"] in captions and ex2["caption"] in captions
    # rerun with edited entities, filter, annotate, export annotations, clear
    rows = {"headers": ["text", "type", "start", "end"], "data": [["Eileen Collins", "PER", None, None],
                                                                  ["NASA", "ORG", None, None]]}
    res = client.predict(None, "Eileen Collins works for NASA.", rows, 0.0, True, api_name="/rerun")
    assert len(res[3]["data"]) == 1  # one row per entity pair (its more probable direction)
    res = client.predict(0.9, False, api_name="/filter")
    assert all(r[4] >= 0.9 for r in res[3]["data"])
    out = client.predict("1", "accept", None, "client-test", 0.5, api_name="/annotate")
    assert out[0].startswith("✅"), out[0]
    out = client.predict(api_name="/export_annotations")
    ann = out[-1] if isinstance(out[-1], str) else out[-1]["path"]
    assert "client-test" not in Path(ann).read_text() and "Eileen Collins" in Path(ann).read_text()
    out = client.predict(0.5, api_name="/clear_graph")
    assert "cleared" in out[0]


def test_bad_input_keeps_serving(client, tmp_path):
    from gradio_client import handle_file

    bad = tmp_path / "corrupt.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    res = client.predict(handle_file(str(bad)), "Eileen Collins of NASA", 0.5, False, api_name="/predict")
    assert res[0].startswith("⚠️") and "corrupt or truncated" in res[0]
    res = client.predict(None, "", 0.5, False, api_name="/predict")
    assert res[0].startswith("⚠️") and "empty" in res[0]
    res = client.predict(None, "Eileen Collins of NASA visited Houston.", 0.5, False, api_name="/predict")
    assert res[0].startswith("⚠️") and "caption alone" in res[0]  # a note, and the extraction still ran
    assert res[3]["data"] is not None
