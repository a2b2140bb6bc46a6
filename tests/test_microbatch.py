"""`MicroBatcher`: concurrent callers share one batch; errors reach every caller; a full queue is refused."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from mmre_demo.microbatch import Busy, MicroBatcher


def doubler(calls: list[list[int]]):
    def process(batch: list[dict]) -> None:
        calls.append([item["x"] for item in batch])
        for item in batch:
            item["y"] = item["x"] * 2
    return process


def test_window_zero_runs_in_the_callers_thread():
    calls: list[list[int]] = []
    b = MicroBatcher(doubler(calls), window_ms=0)
    items = [{"x": 1}, {"x": 2}]
    b.run(items)
    assert [i["y"] for i in items] == [2, 4] and calls == [[1, 2]] and b._worker is None


def test_concurrent_callers_share_batches_and_get_their_own_results():
    calls: list[list[int]] = []
    b = MicroBatcher(doubler(calls), window_ms=300, max_batch=8)
    barrier = threading.Barrier(6)

    def call(x: int) -> int:
        item = {"x": x}
        with b.expecting(1):  # as the pipeline says it before preparing a request
            barrier.wait()
            b.run([item])
        return item["y"]

    with ThreadPoolExecutor(6) as pool:
        assert list(pool.map(call, range(6))) == [0, 2, 4, 6, 8, 10]
    assert sorted(x for c in calls for x in c) == list(range(6)) and len(calls) < 6


def test_a_lone_caller_does_not_wait_for_company_that_is_not_coming():
    calls: list[list[int]] = []
    b = MicroBatcher(doubler(calls), window_ms=2000)
    item = {"x": 3}
    t = time.monotonic()
    with b.expecting(1):
        b.run([item])
    assert item["y"] == 6 and time.monotonic() - t < 1.0  # not the 2 s window


def test_a_batch_waits_for_an_announced_caller_within_the_window():
    calls: list[list[int]] = []
    b = MicroBatcher(doubler(calls), window_ms=3000, max_batch=8)
    announced, first_queued = threading.Event(), threading.Event()

    def late() -> None:
        with b.expecting(1):
            announced.set()
            first_queued.wait(5)
            time.sleep(0.2)  # still preparing when the first caller's batch would start
            b.run([{"x": 2}])

    th = threading.Thread(target=late)
    th.start()
    announced.wait(5)
    with b.expecting(1):
        threading.Timer(0.05, first_queued.set).start()
        b.run([{"x": 1}])
    th.join()
    assert calls == [[1, 2]]  # one batch: the first waited for the announced second


def test_a_withdrawn_announcement_stops_the_wait():
    calls: list[list[int]] = []
    b = MicroBatcher(doubler(calls), window_ms=3000)
    gone = threading.Event()

    def bad_request() -> None:  # announced, then its input is refused before it runs anything
        with b.expecting(1):
            gone.wait(5)

    th = threading.Thread(target=bad_request)
    th.start()
    t = time.monotonic()
    threading.Timer(0.1, gone.set).start()
    b.run([{"x": 1}])
    th.join()
    assert time.monotonic() - t < 2.0 and calls == [[1]]


def test_max_batch_splits_the_queue_without_splitting_a_caller():
    calls: list[list[int]] = []
    b = MicroBatcher(doubler(calls), window_ms=1, max_batch=2)
    b.run([{"x": i} for i in range(5)])  # one caller's 5 items stay together
    assert calls == [[0, 1, 2, 3, 4]]


def test_an_error_reaches_every_caller_of_the_batch_and_the_worker_survives():
    def process(batch: list[dict]) -> None:
        if any(item["x"] < 0 for item in batch):
            raise RuntimeError("boom")
        for item in batch:
            item["y"] = 1

    b = MicroBatcher(process, window_ms=1)
    with pytest.raises(RuntimeError, match="boom"):
        b.run([{"x": -1}])
    ok = {"x": 1}
    b.run([ok])
    assert ok["y"] == 1


def test_a_full_queue_is_refused_at_once():
    release = threading.Event()

    def slow(batch: list[dict]) -> None:
        release.wait(10)

    b = MicroBatcher(slow, window_ms=1, max_batch=1, max_waiting=1)
    first = threading.Thread(target=b.run, args=([{"x": 0}],))
    first.start()
    while b.batch_sizes.total() == 0:  # the first item is being processed; the queue is empty again
        threading.Event().wait(0.005)
    second = threading.Thread(target=b.run, args=([{"x": 1}],))
    second.start()
    while not b._queue:
        threading.Event().wait(0.005)
    with pytest.raises(Busy, match="busy .* try again"):
        b.run([{"x": 2}])
    release.set()
    first.join(5)
    second.join(5)
    assert not first.is_alive() and not second.is_alive()


def test_bad_settings_are_refused():
    with pytest.raises(ValueError):
        MicroBatcher(lambda batch: None, window_ms=-1)
