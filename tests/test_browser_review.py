"""The Review tab in a real browser (Playwright + Debian's Chromium): an `mmre extract` folder opened
as a queue and walked by keyboard through 20 decisions (accept, reject, relabel by number, skip, undo),
the relabel list restricted to the pair's types, progress, the agreement view, and a reload that
continues where the annotator stopped. Screenshots in ci-artifacts/screenshots/review_*.png."""

from __future__ import annotations

import re

import pytest

from mmre_demo.data.labels import relation_fits
from tests.support.browser import SHOTS, chromium, new_page, require_chromium

pytestmark = [pytest.mark.slow, pytest.mark.browser]
require_chromium()

KEYS = "ar1ar2aar1arasaar1ara"  # 20 decisions, one skip (s) on the way
HEADER = re.compile(r"\((\w+|\?)\) → \S+ → .+ \((\w+|\?)\)")


@pytest.fixture(scope="module")
def page(review_app):
    SHOTS.mkdir(parents=True, exist_ok=True)
    with chromium() as browser:
        yield new_page(browser)


def shot(page, name: str) -> None:
    """The Review tab as the annotator sees it."""
    page.locator("#review-tab").screenshot(path=str(SHOTS / name))


def item_text(page) -> str:
    return page.inner_text("#review-item")


def progress(page) -> int:
    return int(re.search(r"(\d+) of \d+ reviewed", page.inner_text("#review-progress")).group(1))


def press_and_wait(page, key: str) -> None:
    """Press a key outside any text box and wait until the page shows another item."""
    before = item_text(page)
    page.keyboard.press(key)
    # done: another item shown, and no event running (Gradio puts a timer before a block's text meanwhile)
    page.wait_for_function("([old]) => { const el = document.querySelector('#review-item'); "
                           "const st = document.querySelector('#status'); "
                           "return el && el.innerText.trim().startsWith('Item') && el.innerText !== old "
                           "&& st && !/^\\s*[0-9.]+s|processing/.test(st.innerText); }", arg=[before])


def test_walk_the_review_queue_by_keyboard(page, review_app):
    url, root, folder = review_app
    page.goto(url)
    page.get_by_role("tab", name="Review").click()
    page.locator("#review-name textarea, #review-name input").first.fill("alice")
    page.locator("#review-upload-box").click()
    page.set_input_files("#review-files input[type=file]", str(folder / "posts.jsonl"))
    page.wait_for_selector("#review-files .file-preview, #review-files table", state="attached")
    page.click("#open-folder")
    page.wait_for_function("document.querySelector('#review-item').innerText.includes('Item')")
    page.locator("#review-progress").scroll_into_view_if_needed()
    shot(page, "review_1_queue.png")
    assert progress(page) == 0

    relabels = 0
    for key in KEYS:
        if key.isdigit():  # a relabel: the list holds only relations that fit the pair's types
            head, tail = HEADER.search(item_text(page)).groups()
            options = [o.strip().split(". ", 1)[-1] for o in page.locator("#review-labels label").all_inner_texts()]
            assert all(relation_fits(o, head, tail) for o in options), (item_text(page), options)
            if not options:  # no other relation fits these types (ORG -> LOC has one): nothing to relabel to
                press_and_wait(page, "r")
                continue
            key = key if int(key) <= len(options) else "1"
            if relabels == 0:
                page.locator("#review-labels").scroll_into_view_if_needed()
                shot(page, "review_2_relabel.png")
            relabels += 1
        press_and_wait(page, key)
    assert progress(page) == 20, page.inner_text("#review-progress")
    press_and_wait(page, "u")  # undo the last decision: its item comes back
    assert progress(page) == 19
    press_and_wait(page, "a")
    assert progress(page) == 20
    page.locator("#review-progress").scroll_into_view_if_needed()
    shot(page, "review_3_progress.png")

    from mmre_demo.annotations import AnnotationStore
    from mmre_demo.annotations.review import ReviewQueues

    store = AnnotationStore(root / "ann.sqlite3")
    alice = store.current("alice")
    assert len(alice) == 20 and {d.decision for d in alice} == {"accept", "reject", "relabel"}
    # a second annotator decides the first items too (as a colleague would, elsewhere)
    queues = ReviewQueues(store)
    (queue,) = queues.list()
    for _ in range(8):
        c = queues.next(queue.id, "bob")
        queues.decide(queue.id, c.position, "bob", "accept")
    page.click("#refresh-decisions")
    page.wait_for_function("document.querySelector('#agreement').innerText.includes('alice / bob')")
    assert "alice" in page.inner_text("#decisions") and "bob" not in page.inner_text("#decisions")
    page.locator("#agreement").scroll_into_view_if_needed()
    shot(page, "review_4_agreement.png")

    page.reload()  # closing the browser loses nothing: the name and the queue come back
    page.get_by_role("tab", name="Review").click()
    page.wait_for_function("document.querySelector('#review-progress').innerText.includes('20 of')")
    assert "alice" in page.inner_text("#review-progress")
