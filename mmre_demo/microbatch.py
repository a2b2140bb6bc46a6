"""Micro-batching: work that arrives from many threads within a few milliseconds runs as one batch.

A public demo gets visitors in bursts; each request alone runs the tagger, the vision backbone and the
relation model on batches of one. `MicroBatcher.run(items)` (called from any thread) queues the items and
waits; one worker thread takes what has arrived within `window_ms` of the first waiting item (at most
`max_batch` items), runs `process(batch)` once, and wakes the callers. The worker waits only for items
announced as on their way (`expecting`, said by a caller before it prepares them): a lone request does
not wait for company that is not coming (it cost a single click the whole window). `window_ms=0` turns
batching off: the caller runs `process` itself. A full queue is refused at once with `Busy` (an
`InputError`: the visitor reads "busy, try again"), never a hang.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from mmre_demo import tuning
from mmre_demo.data.schema import InputError

T = TypeVar("T")

DEFAULT_WINDOW_MS = 5.0  # a click waits at most this long for company (a request takes ~50-100 ms)
DEFAULT_MAX_BATCH = tuning.MICROBATCH_MAX_BATCH.value  # items per batch (measured: mmre_demo.tuning)
DEFAULT_MAX_WAITING = tuning.MICROBATCH_MAX_WAITING.value  # queued items beyond which new work is refused


class Busy(InputError):
    """The queue is full: the caller should try again in a moment."""


@dataclass
class _Ticket:
    """Items queued by one `run` call, and how their batch ended."""

    items: Sequence[object]
    done: threading.Event = field(default_factory=threading.Event)
    error: BaseException | None = None


class MicroBatcher(Generic[T]):
    """Runs `process` on batches gathered from concurrent `run` calls (one worker thread, started lazily)."""

    def __init__(self, process: Callable[[list[T]], None], window_ms: float = DEFAULT_WINDOW_MS,
                 max_batch: int = DEFAULT_MAX_BATCH, max_waiting: int = DEFAULT_MAX_WAITING, name: str = "batch"):
        if window_ms < 0 or max_batch < 1 or max_waiting < 1:
            raise ValueError("window_ms must be >= 0, max_batch and max_waiting >= 1")
        self.process, self.window_s, self.name = process, window_ms / 1000, name
        self.max_batch, self.max_waiting = max_batch, max_waiting
        self.batch_sizes: Counter[int] = Counter()  # items per `process` call: how much batching happened
        self._queue: list[_Ticket] = []
        self._cond = threading.Condition()
        self._worker: threading.Thread | None = None
        self._coming = 0  # items announced by `expecting` and not yet queued
        self._announced = threading.local()  # this thread's announced items not yet queued

    @property
    def enabled(self) -> bool:
        return self.window_s > 0

    @contextmanager
    def expecting(self, n: int) -> Iterator[None]:
        """Announce `n` items this thread is preparing and will `run` inside the block: a waiting batch
        waits for them (within its window). What is not run by the end of the block is withdrawn."""
        with self._cond:
            self._coming += n
        self._announced.n = getattr(self._announced, "n", 0) + n
        try:
            yield
        finally:
            left = min(n, self._announced.n)
            self._announced.n -= left
            with self._cond:
                self._coming -= left
                self._cond.notify_all()

    def run(self, items: Sequence[T]) -> None:
        """Process `items` (in one batch, maybe with other callers' items); re-raises what `process` raised."""
        if not items:
            return
        if not self.enabled:
            self._process([*items])
            return
        ticket = _Ticket(items)
        with self._cond:
            waiting = sum(len(t.items) for t in self._queue)
            if waiting + len(items) > self.max_waiting:
                raise Busy(f"The server is busy ({waiting} requests are waiting): try again in a few seconds.")
            arrived = min(len(items), getattr(self._announced, "n", 0))
            self._announced.n = getattr(self._announced, "n", 0) - arrived
            self._coming -= arrived
            self._queue.append(ticket)
            self._start_worker()
            self._cond.notify_all()
        ticket.done.wait()
        if ticket.error is not None:
            raise ticket.error

    def _process(self, batch: list[T]) -> None:
        self.batch_sizes[len(batch)] += 1
        self.process(batch)

    def _start_worker(self) -> None:
        if self._worker is None or not self._worker.is_alive():
            self._worker = threading.Thread(target=self._loop, daemon=True, name=f"microbatch-{self.name}")
            self._worker.start()

    def _next_batch(self) -> list[_Ticket]:
        """Wait for work, then for the announced items still on their way, until the window passes or the
        batch is full; take whole tickets in order."""
        with self._cond:
            while not self._queue:
                self._cond.wait()
            deadline = time.monotonic() + self.window_s
            while self._coming > 0 and sum(len(t.items) for t in self._queue) < self.max_batch:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
            taken, n = [], 0
            while self._queue and (not taken or n + len(self._queue[0].items) <= self.max_batch):
                ticket = self._queue.pop(0)
                taken.append(ticket)
                n += len(ticket.items)
            return taken

    def _loop(self) -> None:
        while True:
            tickets = self._next_batch()
            try:
                self._process([item for t in tickets for item in t.items])  # type: ignore[misc]
            except BaseException as exc:  # noqa: BLE001 - handed to every caller of the batch
                for t in tickets:
                    t.error = exc
            for t in tickets:
                t.done.set()
