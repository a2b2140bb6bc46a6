"""Two annotators at once through gradio_client, as two browser sessions would: an `mmre extract`
folder opened as a review queue, both deciding concurrently; every decision stored once, the queue
never hands both the same item at the same time. And the API refuses a type-breaking relabel."""

from __future__ import annotations

import re
import threading

import pytest

from mmre_demo.annotations import AnnotationStore

pytestmark = pytest.mark.slow

STATUS, QUEUES, PROGRESS, ITEM = 0, 1, 2, 3  # the Review endpoints' outputs (REVIEW without the session)


def position(out) -> int:
    return int(re.search(r"\*\*Item (\d+)\*\*", out[ITEM]).group(1))


def test_two_annotators_deciding_at_once_lose_nothing_and_never_share_an_item(review_app):
    from gradio_client import Client, handle_file

    url, root, folder = review_app
    a, b = Client(url, verbose=False), Client(url, verbose=False)
    opened = a.predict([handle_file(str(folder / "posts.jsonl"))], "ann-a", api_name="/review_folder")
    assert opened[STATUS].startswith("✅"), opened[STATUS]
    queue_id = opened[QUEUES]["value"]  # a dropdown's new options come back as an update
    first_b = b.predict(queue_id, "ann-b", api_name="/review_open")
    assert first_b[STATUS].startswith("✅"), first_b[STATUS]
    steps = 10
    barrier = threading.Barrier(2)
    held: dict[str, list[int]] = {"ann-a": [position(opened)], "ann-b": [position(first_b)]}
    errors: list[BaseException] = []

    def walk(client, who: str) -> None:
        try:
            for _ in range(steps):
                barrier.wait(60)  # both hold an item now, and decide at the same moment
                out = client.predict(who, api_name="/review_accept" if who == "ann-a" else "/review_reject")
                assert out[STATUS].startswith("✅"), out[STATUS]
                held[who].append(position(out))
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            errors.append(exc)
            barrier.abort()

    threads = [threading.Thread(target=walk, args=(c, w)) for c, w in ((a, "ann-a"), (b, "ann-b"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert not errors, errors
    # at every step both held an item at the same time: never the same one
    assert all(x != y for x, y in zip(held["ann-a"], held["ann-b"])), held
    store = AnnotationStore(root / "ann.sqlite3")
    for who, kind in (("ann-a", "accept"), ("ann-b", "reject")):
        mine = [d for d in store.all() if d.annotator == who]
        assert len(mine) == steps and {d.decision for d in mine} == {kind}
        assert len({d.candidate.key for d in mine}) == steps  # each decision once, on a different item
    progress = a.predict("ann-a", api_name="/review_next")[PROGRESS]
    assert progress.startswith(f"**{steps} of "), progress


def test_the_api_refuses_a_relabel_that_breaks_the_pair_types(review_app):
    from gradio_client import Client

    url, root, _ = review_app
    client = Client(url, verbose=False)
    client.predict(None, "Kim Jong Un met Donald Trump in Singapore.", 0.0, True, api_name="/predict")
    before = AnnotationStore(root / "ann.sqlite3").count()
    out = client.predict("1", "relabel", "/loc/loc/contain", "api-user", 0.0, api_name="/annotate")
    assert out[0].startswith("⚠️") and "needs a LOC head and a LOC tail" in out[0], out[0]
    assert AnnotationStore(root / "ann.sqlite3").count() == before
