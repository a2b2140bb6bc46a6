"""Real browser end to end: Playwright (Python) driving Debian's Chromium against the app on 127.0.0.1.

Screenshots go to ci-artifacts/screenshots/ (kept by the CI run)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.browser import SHOTS, chromium, new_page, require_chromium

pytestmark = [pytest.mark.slow, pytest.mark.browser]

require_chromium()


@pytest.fixture(scope="module")
def app_url(pipeline, tmp_path_factory):
    from tests.conftest import launch_test_app

    url, demo = launch_test_app(pipeline, tmp_path_factory.mktemp("browser"))
    yield url
    demo.close()


@pytest.fixture(scope="module")
def page(app_url):
    SHOTS.mkdir(parents=True, exist_ok=True)
    with chromium() as browser:
        yield new_page(browser, accept_downloads=True)


def show_tab(page, name: str) -> None:
    """The page's tabs: "Extract", "Graph" (the knowledge graph) and "Review"."""
    page.get_by_role("tab", name=name, exact=True).click()


def export_graph_json(page, target: Path) -> Path:
    """Press "Export graph" (in the graph's tab) and download its graph.json to `target`."""
    show_tab(page, "Graph")
    page.click("#export-graph")
    link = page.locator('#graph-files tr:has(td[aria-label="mmre_graph.json"]) a[data-testid="download-link"]')
    link.wait_for()
    with page.expect_download() as dl:
        link.click()
    dl.value.save_as(target)
    return target


def test_end_to_end(page, app_url, tmp_path):
    from mmre_demo.ui import examples

    ex = examples()[0]
    page.goto(app_url)
    page.wait_for_selector("#run")
    assert "Device" in page.inner_text("#device")
    page.screenshot(path=str(SHOTS / "01_start.png"), full_page=True)

    page.set_input_files("#image-file input[type=file]", ex["path"])
    page.wait_for_selector("#preview img", state="attached")
    page.fill("#caption textarea", ex["caption"])
    page.click("#run")
    # relations table with at least one relation, and the plotly graph
    page.wait_for_function("document.querySelector('#relations') && "
                           "document.querySelector('#relations').innerText.includes('/per/')")
    page.wait_for_selector("#evidence img", state="attached")
    page.locator("#evidence").scroll_into_view_if_needed()
    page.wait_for_selector("#evidence img")  # visible once scrolled to (lazy loading)
    assert "Eileen Collins" in page.inner_text("#entities")
    # issue 13: one row per pair, the image's measured influence, calibrated probabilities
    assert "image influence" in page.inner_text("#relations")
    evidence = page.inner_text("#evidence-text")
    assert "The image changed this pair's label probability by" in evidence and "calibrated" in evidence
    page.screenshot(path=str(SHOTS / "02_results.png"), full_page=True)

    # select another pair: its evidence replaces the first heatmap
    first_src = page.get_attribute("#evidence img", "src")
    page.locator('#relations [data-testid="cell-1-2"]').click()
    page.wait_for_function("(s) => { const i = document.querySelector('#evidence img'); return i && i.src !== s; }",
                           arg=first_src)
    page.locator("#evidence").scroll_into_view_if_needed()
    page.screenshot(path=str(SHOTS / "03_pair_evidence.png"), full_page=True)
    page.locator("#evidence").screenshot(path=str(SHOTS / "03b_heatmap.png"))

    # export: the JSON download holds the triples
    data = json.loads(export_graph_json(page, tmp_path / "graph.json").read_text())
    assert data["triples"] and any(t["head"] == "Eileen Collins" for t in data["triples"])
    page.wait_for_selector("#graph .js-plotly-plot .main-svg")
    page.locator("#graph").screenshot(path=str(SHOTS / "04_graph.png"))


def test_bad_upload_shows_message(page, app_url, tmp_path):
    page.goto(app_url)
    page.wait_for_selector("#run")
    bad = tmp_path / "not_an_image.jpg"
    bad.write_text("this is text")
    page.set_input_files("#image-file input[type=file]", str(bad))
    page.fill("#caption textarea", "Eileen Collins of NASA in Houston.")
    page.click("#run")
    page.wait_for_function("document.querySelector('#status').innerText.includes('not an image')")
    page.screenshot(path=str(SHOTS / "05_bad_upload.png"), full_page=True)
    assert "Traceback" not in page.content()


def test_text_in_the_image_grounds_an_entity_and_links_image_and_graph(page, app_url, tmp_path):
    """Issue 16: an uploaded image with text in it (drawn with PIL): the lines read are boxed, the
    caption entity it names gets a "read in the image" box in the evidence panel and a "shows text of"
    edge in the graph; a name only in the image is added with one click. Issue 15: the exported graph
    loads back with "Load graph"."""
    pytest.importorskip("rapidocr_onnxruntime", reason="RapidOCR is not installed: no text in the image")
    from PIL import Image, ImageDraw, ImageFont

    from tests.test_ocr import FONT

    img = Image.new("RGB", (640, 400), (235, 240, 250))
    d = ImageDraw.Draw(img)
    d.text((40, 60), "SPOTIFY", fill="black", font=ImageFont.truetype(str(FONT), 64))
    d.text((40, 220), "New York Stock Exchange", fill="navy", font=ImageFont.truetype(str(FONT), 36))
    path = tmp_path / "spotify.png"
    img.save(path)

    page.goto(app_url)
    page.wait_for_selector("#run")
    page.set_input_files("#image-file input[type=file]", str(path))
    page.wait_for_selector("#preview img", state="attached")
    page.fill("#caption textarea", "Spotify shares jump as Daniel Ek rings the bell")
    page.click("#run")
    page.wait_for_function("document.querySelector('#image-text') && "
                           "document.querySelector('#image-text').innerText.includes('SPOTIFY')")
    assert "Spotify read as" in page.inner_text("#image-text")
    page.wait_for_selector("#image-text-img img", state="attached")
    page.wait_for_function("document.querySelector('#evidence-text').innerText.includes('Read in the image')")
    page.locator("#image-text-img").scroll_into_view_if_needed()
    page.wait_for_selector("#image-text-img img")
    page.screenshot(path=str(SHOTS / "06_text_in_the_image.png"), full_page=True)
    page.locator("#evidence").scroll_into_view_if_needed()
    page.wait_for_selector("#evidence img")
    page.locator("#evidence").screenshot(path=str(SHOTS / "06b_read_in_the_image_evidence.png"))
    show_tab(page, "Graph")
    page.wait_for_function("document.querySelector('#graph .main-svg') && "
                           "document.querySelector('#graph').innerText.includes('shows text of')")
    page.locator("#graph").screenshot(path=str(SHOTS / "06c_graph_shows_text_of.png"))
    show_tab(page, "Extract")

    # one click: the name found only in the image joins the entities and is classified with them
    page.locator("#also-in-image label:has-text('New York Stock Exchange')").click()
    page.click("#add-from-image")
    page.wait_for_function("document.querySelector('#caption textarea').value.includes('[in the image: New York')")
    page.wait_for_function("document.querySelector('#entities').innerText.includes('New York Stock Exchange')")
    page.check("#show-none input")  # every pair, also those below the threshold: the new entity is paired
    page.wait_for_function("document.querySelector('#relations').innerText.includes('New York Stock Exchange')")
    page.screenshot(path=str(SHOTS / "07_added_from_the_image.png"), full_page=True)

    # export, then load the export back as the session's graph
    exported = export_graph_json(page, tmp_path / "graph.json")
    page.click("#clear-graph")
    page.wait_for_function("document.querySelector('#status').innerText.includes('cleared')")
    page.locator("#load-graph-box").click()
    page.set_input_files("#graph-file input[type=file]", str(exported))
    page.click("#load-graph")
    page.wait_for_function("document.querySelector('#status').innerText.includes('Loaded graph.json')")
    page.wait_for_function("document.querySelector('#graph').innerText.includes('Spotify')")
    page.locator("#graph").screenshot(path=str(SHOTS / "08_loaded_graph.png"))
