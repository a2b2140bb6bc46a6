"""The graph tab in a real browser (Playwright + Debian's Chromium): open a corpus graph of 300+ posts,
search a name, focus on its neighbourhood, filter by relation, trace an edge to its posts, add a suggested
link; the one threshold's number box (typing + Enter, typing + Tab); the page at 1400 px and 390 px.

Two corpora: one written by a real `mmre extract` run of the shipped model over the first 600 MNRE val
lines (text only, ~30 s; skipped without the shared data), and an `mmre extract`-shaped folder synthesised
by `mmre_demo.graph.synthetic` (400 posts) and exported by extract's own `write_exports`. Screenshots go to
ci-artifacts/screenshots/graph/ (docs/screenshots/ holds the ones looked at for docs/graph.md).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from mmre_demo.data.labels import RELATIONS, short_name
from tests.support.browser import SHOTS as BROWSER_SHOTS
from tests.support.browser import chromium, new_page, require_chromium

pytestmark = [pytest.mark.slow, pytest.mark.browser]

SHOTS = BROWSER_SHOTS / "graph"

require_chromium()


MNRE_LINES = 600  # the first 600 MNRE val lines: over 300 posts (one per caption + image)


@pytest.fixture(scope="module", params=["synthetic", "mmre-extract"])
def corpus_json(request, tmp_path_factory) -> Path:
    """A corpus graph.json: synthesised (400 posts), or written by a real `mmre extract` run of the shipped
    model over the first MNRE val captions (text only; skipped without the shared data)."""
    from mmre_demo.extract.exports import write_exports
    from mmre_demo.graph.synthetic import synthetic_extract

    root = tmp_path_factory.mktemp("corpus")
    if request.param == "synthetic":
        folder = synthetic_extract(root / "synthetic", 400)
        write_exports(folder, threshold=0.0)
        return folder / "graph.json"
    from mmre_demo.data.paths import shared_data_dir
    from tests.support.review_corpus import mmre

    val = shared_data_dir() / "mnre" / "mnre_val.txt"
    if not val.is_file():
        pytest.skip(f"MNRE val not found at {val} (set MMRE_DATA_DIR): the real-corpus walk needs it")
    lines = root / "val_head.txt"
    with val.open(encoding="utf-8") as fh:
        lines.write_text("".join(next(fh) for _ in range(MNRE_LINES)), encoding="utf-8")
    done = mmre("extract", str(lines), "--out", str(root / "mmre-extract"), "--no-progress", "--no-read-text",
                "--threshold", "0.0")
    assert done.returncode == 0, done.stderr[-2000:]
    return root / "mmre-extract" / "graph.json"


@pytest.fixture(scope="module")
def app_url(pipeline, tmp_path_factory):
    from mmre_demo.kge.suggest import LinkSuggester
    from tests.conftest import launch_test_app

    url, demo = launch_test_app(pipeline, tmp_path_factory.mktemp("browser_graph"),
                                suggester_factory=lambda: LinkSuggester(features="none", max_epochs=15,
                                                                        time_budget_s=15))
    yield url
    demo.close()


@pytest.fixture(scope="module")
def browser():
    SHOTS.mkdir(parents=True, exist_ok=True)
    with chromium() as b:
        yield b


def wait_text(page, selector: str, text: str) -> None:
    page.wait_for_function("([s, t]) => { const e = document.querySelector(s); return e && e.innerText.includes(t); }",
                           arg=[selector, text])


def open_graph_tab(page) -> None:
    page.get_by_role("tab", name="Graph", exact=True).click()
    page.wait_for_selector("#graph-tab #node", state="visible")


def pick(page, selector: str, text: str) -> None:
    """Type into a dropdown and choose the first option that contains `text`."""
    box = page.locator(f"{selector} input").first
    box.click()
    box.fill(text)
    page.locator('[data-testid="dropdown-option"]:visible', has_text=text).first.click()


def load_corpus(page, path: Path) -> None:
    page.locator("#load-graph-box").click()
    page.set_input_files("#graph-file input[type=file]", str(path))
    page.click("#load-graph")
    wait_text(page, "#status", "Loaded graph.json")


def no_horizontal_scroll(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")


def test_explore_a_corpus_graph(browser, app_url, corpus_json):
    import networkx as nx

    from mmre_demo import graph as kg

    full = kg.read_graph(corpus_json)
    hub = max(kg.entity_nodes(full), key=full.degree)
    hub_name = full.nodes[hub]["name"]
    n_posts = len(kg.posts_table(full))
    assert n_posts >= 300
    relations = Counter(d["relation"] for *_, d in full.edges(data=True) if d["relation"] in RELATIONS[1:])
    relation = relations.most_common(1)[0][0]  # the commonest relation: the filter keeps something to see
    page = new_page(browser)
    page.goto(app_url)
    page.wait_for_selector("#run")
    open_graph_tab(page)
    load_corpus(page, corpus_json)
    wait_text(page, "#status", f"{n_posts:,} posts")
    page.wait_for_selector("#graph .main-svg")
    wait_text(page, "#graph", "hidden:")  # an overview: the counts of what it leaves out
    assert no_horizontal_scroll(page)
    shot = corpus_json.parent.name  # one set of screenshots per corpus
    page.screenshot(path=str(SHOTS / f"01_corpus_overview_{shot}.png"), full_page=True)
    page.locator("#graph").screenshot(path=str(SHOTS / f"01b_corpus_overview_graph_{shot}.png"))

    # search a name (typed, filtered), focus on its 1-hop neighbourhood
    pick(page, "#node", hub_name)
    wait_text(page, "#provenance", hub_name)
    page.locator("#hops label", has_text="1 hop").click()
    wait_text(page, "#graph", "1-hop neighbourhood")
    wait_text(page, "#status", f"Focused on {hub_name}")
    page.locator("#graph").screenshot(path=str(SHOTS / f"02_search_and_focus_{shot}.png"))

    # back to the whole graph, then only one relation
    page.click("#whole-graph")
    wait_text(page, "#status", "The whole graph")
    pick(page, "#relation-filter", relation)
    page.keyboard.press("Escape")  # close the list: it would cover the drawing
    wait_text(page, "#graph", f"relations: {short_name(relation)}")
    page.locator("#graph").screenshot(path=str(SHOTS / f"03_filter_by_relation_{shot}.png"))

    # trace an edge of the drawing to its posts
    edge = page.locator("#edge input").first
    edge.click()
    page.locator('[data-testid="dropdown-option"]:visible').first.click()
    wait_text(page, "#provenance", "post ")
    assert page.locator("#provenance mark").count() >= 2  # head and tail highlighted in the caption
    page.locator("#provenance").scroll_into_view_if_needed()
    page.screenshot(path=str(SHOTS / f"04_edge_provenance_{shot}.png"), full_page=True)

    # suggestions for the hub: training in the background, the rows appear by themselves
    page.click("#whole-graph")
    wait_text(page, "#status", "The whole graph")
    pick(page, "#node", hub_name)
    page.click("#suggest")
    wait_text(page, "#status", "Embedding the graph")
    wait_text(page, "#suggestions", "held-out MRR")
    rows = page.locator("#suggestions tbody tr").count()
    assert rows >= 1
    page.click("#add-suggestion")
    wait_text(page, "#status", "as a suggested (dashed) edge")
    wait_text(page, "#graph", "suggested link")
    page.locator("#suggestions").scroll_into_view_if_needed()
    page.screenshot(path=str(SHOTS / f"05_suggestion_added_{shot}.png"), full_page=True)
    assert nx.is_directed(full)  # (the corpus read back is the one the page opened)


def test_the_threshold_box_refilters_on_enter_and_on_tab_and_the_session_graph_traces(browser, app_url):
    from mmre_demo.ui import examples

    ex = examples()[0]
    page = new_page(browser)
    page.goto(app_url)
    page.wait_for_selector("#run")
    page.set_input_files("#image-file input[type=file]", ex["path"])
    page.fill("#caption textarea", ex["caption"])
    page.click("#run")
    wait_text(page, "#relations", "/per/")
    box = page.locator("#threshold input[type=number]")
    box.fill("0.8")
    box.press("Enter")
    wait_text(page, "#status", "at ≥ 0.80")
    high = page.locator("#relations tbody tr").count()
    box.fill("0.3")
    box.press("Tab")
    wait_text(page, "#status", "at ≥ 0.30")
    wait_text(page, "#status", "the graph:")
    assert page.locator("#relations tbody tr").count() >= high
    page.screenshot(path=str(SHOTS / "06_threshold_typed.png"), full_page=True)

    # the session's own graph traces an edge to its submission: caption, thumbnail of its image
    open_graph_tab(page)
    page.locator("#edge input").first.click()
    page.locator('[data-testid="dropdown-option"]:visible').first.click()
    wait_text(page, "#provenance", "post submission 1")
    page.wait_for_selector("#provenance img")
    page.locator("#provenance").screenshot(path=str(SHOTS / "06b_session_edge_provenance.png"))


@pytest.mark.parametrize("width", [1400, 390])
def test_nothing_is_cut_off(browser, app_url, corpus_json, width):
    page = new_page(browser, width=width, height=900)
    page.goto(app_url)
    page.wait_for_selector("#run")
    assert no_horizontal_scroll(page)
    page.screenshot(path=str(SHOTS / f"07_extract_{width}px.png"), full_page=True)
    open_graph_tab(page)
    load_corpus(page, corpus_json)
    page.wait_for_selector("#graph .main-svg")
    graph_box, tab_box = page.locator("#graph").bounding_box(), page.locator("#graph-tab").bounding_box()
    assert graph_box["width"] >= tab_box["width"] - 40  # the graph takes the tab's whole width
    assert no_horizontal_scroll(page)
    if width < 640:  # a phone: the drawing keeps its 1300 px and scrolls sideways inside its box
        assert page.evaluate("(() => { const g = document.querySelector('#graph');"
                             " return g.scrollWidth >= 1300 && g.clientWidth < g.scrollWidth; })()")
    page.screenshot(path=str(SHOTS / f"08_graph_tab_{width}px.png"), full_page=True)
