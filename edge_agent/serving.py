"""Micro-batching: concurrent requests share one model run; a lone request never waits.

One worker thread takes the first waiting request, adds whatever else is
already queued (up to ``max_batch_size``), and runs the batch. It waits up to
``max_wait_ms`` for more only when the previous batch held more than one item,
that is, under concurrent load; under sequential load a request runs at once,
so batch-1 latency stays the model's latency. Requests that arrive while a
batch runs accumulate and form the next batch.

Items are never padded here: the preprocessor pads each batch to its own
longest item.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import math
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from genba.errors import ConfigError, OverloadedError, ServingError, ShuttingDownError

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")

#: Waiting longer than this for company would add visible latency to every batched request.
MAX_WAIT_LIMIT_MS = 1000.0


@dataclass(frozen=True)
class BatchingConfig:
    """How requests are grouped into model runs (the ``[batching]`` section of ``agent.toml``).

    ``max_queue`` bounds the requests waiting for the worker; beyond it a submit
    is refused with OverloadedError, so a flood sheds load instead of growing
    latency without bound.
    """

    max_batch_size: int = 32
    max_wait_ms: float = 2.0
    max_queue: int = 1024
    #: Tokenize the next batch while the current one runs: ``on``, ``off``, or ``auto`` (on where a
    #: GPU is visible). Off by default: with MiniLM on an H200 the API's throughput with 16 clients was
    #: 0.78x and 1.01x with it (two runs; docs/bench/gpu_serving.json): per-request costs bind there;
    #: a small CPU PC has no core to spare for it either.
    overlap: str = "off"

    def __post_init__(self) -> None:
        problems: list[str] = []
        if self.max_batch_size < 1:
            problems.append("batching.max_batch_size must be >= 1")
        if not (math.isfinite(self.max_wait_ms) and 0.0 <= self.max_wait_ms <= MAX_WAIT_LIMIT_MS):
            problems.append(f"batching.max_wait_ms must be between 0 and {MAX_WAIT_LIMIT_MS:g}")
        if self.overlap not in ("auto", "on", "off"):
            problems.append(f"batching.overlap must be auto, on or off, not {self.overlap!r}")
        if self.max_queue < 1:
            problems.append("batching.max_queue must be >= 1")
        elif self.max_queue < self.max_batch_size:
            problems.append("batching.max_queue must be >= batching.max_batch_size")
        if problems:
            raise ConfigError(problems)


@dataclass(frozen=True)
class _Request(Generic[T, R]):
    item: T
    future: concurrent.futures.Future[R]


class MicroBatcher(Generic[T, R]):
    """Group concurrent requests into batches for ``run_batch`` on one worker thread.

    ``run_batch`` gets a list of items and returns one result per item, in
    order. If it raises, every request of that batch gets the exception and the
    worker goes on with the next batch. A client's ``submit_many`` group stays
    in one batch unless it is larger than ``max_batch_size``. Requests may be
    submitted before ``start()``; they wait for the worker.
    """

    def __init__(
        self,
        run_batch: Callable[..., Sequence[R]],
        config: BatchingConfig,
        name: str = "genba-batcher",
        prepare: Callable[[list[T]], Any] | None = None,
    ) -> None:
        self._run_batch = run_batch
        # With ``prepare`` (tokenizing, say), a second thread runs ``run_batch(items, prepared)``
        # while the first prepares the next batch: at most one prepared batch waits between them.
        self._prepare = prepare
        self._handoff: queue.Queue[tuple[list[_Request[T, R]], Any] | None] = queue.Queue(maxsize=1)
        self._runner: threading.Thread | None = None
        self.config = config
        self.name = name
        self._cond = threading.Condition()
        self._groups: deque[list[_Request[T, R]]] = deque()  # FIFO; one entry per submit call
        self._waiting = 0
        self._closing = False
        self._thread: threading.Thread | None = None
        self._batches = 0
        self._items = 0
        self._largest = 0

    def start(self) -> None:
        """Start the worker (once; later calls do nothing). Refused after ``close()``."""
        with self._cond:
            if self._closing:
                raise ShuttingDownError()
            if self._thread is not None:
                return
            self._thread = threading.Thread(target=self._work, name=self.name, daemon=True)
            self._thread.start()
            if self._prepare is not None:
                self._runner = threading.Thread(
                    target=self._run_prepared, name=f"{self.name}-run", daemon=True
                )
                self._runner.start()

    def submit(self, item: T) -> concurrent.futures.Future[R]:
        return self.submit_many([item])[0]

    def submit_many(self, items: Sequence[T]) -> list[concurrent.futures.Future[R]]:
        """Queue a client's batch as one group; all of it is accepted or none (OverloadedError)."""
        group: list[_Request[T, R]] = [_Request(item, concurrent.futures.Future()) for item in items]
        if not group:
            return []
        with self._cond:
            if self._closing:
                raise ShuttingDownError()
            if self._waiting + len(group) > self.config.max_queue:
                raise OverloadedError(self._waiting)
            self._groups.append(group)
            self._waiting += len(group)
            self._cond.notify()
        return [request.future for request in group]

    async def run(self, item: T) -> R:
        return await asyncio.wrap_future(self.submit(item))

    async def run_many(self, items: Sequence[T]) -> list[R]:
        futures = [asyncio.wrap_future(future) for future in self.submit_many(items)]
        return list(await asyncio.gather(*futures))

    def close(self, timeout: float = 5.0) -> None:
        """Refuse new requests, finish the queued ones, and join the worker (up to ``timeout`` s).

        Without a started worker nothing would ever run them, so queued requests
        then fail with ShuttingDownError.
        """
        with self._cond:
            self._closing = True
            self._cond.notify_all()
            thread = self._thread
            orphans = [] if thread is not None else self._take_all()
        for request in orphans:
            if request.future.set_running_or_notify_cancel():
                request.future.set_exception(ShuttingDownError())
        if thread is not None:
            thread.join(timeout)
            if self._runner is not None:
                self._runner.join(timeout)
            if thread.is_alive():
                log.warning("%s: queued work did not finish within %.1f s of close()", self.name, timeout)

    @property
    def stats(self) -> dict[str, Any]:
        """Batches run, items answered, mean and largest batch size, requests waiting now."""
        with self._cond:
            mean = self._items / self._batches if self._batches else 0.0
            return {
                "batches": self._batches,
                "items": self._items,
                "mean_batch_size": round(mean, 3),
                "max_batch_size": self._largest,
                "waiting": self._waiting,
            }

    # --- worker -------------------------------------------------------------------------------

    def _work(self) -> None:
        previous_size = 0
        while True:
            batch = self._next_batch(wait_for_more=previous_size > 1)
            if batch is None:
                if self._prepare is not None:
                    self._handoff.put(None)  # the runner finishes what it holds, then stops
                return
            if self._prepare is None:
                self._execute(batch)
            else:
                self._hand_over(batch, self._prepare)
            previous_size = len(batch)

    def _hand_over(self, batch: list[_Request[T, R]], prepare: Callable[[list[T]], Any]) -> None:
        live = [request for request in batch if request.future.set_running_or_notify_cancel()]
        if not live:
            return
        try:
            prepared = prepare([request.item for request in live])
        except Exception as exc:  # the runner fails the batch with it, in order with the others
            prepared = _Failed(exc)
        self._handoff.put((live, prepared))

    def _run_prepared(self) -> None:
        while (handed := self._handoff.get()) is not None:
            live, prepared = handed
            if isinstance(prepared, _Failed):
                self._finish(live, prepared.error)
            else:
                self._finish(live, None, prepared)

    def _next_batch(self, wait_for_more: bool) -> list[_Request[T, R]] | None:
        """The next batch, or None once closing and drained; waits only if ``wait_for_more``."""
        limit = self.config.max_batch_size
        with self._cond:
            while not self._groups and not self._closing:
                self._cond.wait()
            if not self._groups:
                return None
            batch = self._take(limit, batch_empty=True)
            if not wait_for_more:
                return batch
            deadline = time.monotonic() + self.config.max_wait_ms / 1000.0
            while len(batch) < limit and not self._closing:
                if self._groups:
                    more = self._take(limit - len(batch), batch_empty=False)
                    if not more:  # the next group does not fit: it leads the next batch
                        break
                    batch.extend(more)
                    continue
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._cond.wait(remaining)
            return batch

    def _take(self, room: int, batch_empty: bool) -> list[_Request[T, R]]:
        """Whole groups from the front that fit in ``room``; a group only splits when larger than a batch."""
        taken: list[_Request[T, R]] = []
        while self._groups:
            group = self._groups[0]
            if len(group) <= room - len(taken):
                taken.extend(self._groups.popleft())
            elif batch_empty and not taken:
                taken, self._groups[0] = group[:room], group[room:]
                break
            else:
                break
        self._waiting -= len(taken)
        return taken

    def _take_all(self) -> list[_Request[T, R]]:
        requests = [request for group in self._groups for request in group]
        self._groups.clear()
        self._waiting = 0
        return requests

    def _execute(self, batch: list[_Request[T, R]]) -> None:
        # A future its client cancelled (an asyncio task gone away) is dropped, not computed.
        live = [request for request in batch if request.future.set_running_or_notify_cancel()]
        if live:
            self._finish(live, None)

    def _finish(self, live: list[_Request[T, R]], error: Exception | None, *prepared: Any) -> None:
        try:
            if error is not None:
                raise error
            results = self._run_batch([request.item for request in live], *prepared)
            if len(results) != len(live):
                raise ServingError(
                    f"the model returned {len(results)} results for a batch of {len(live)} items"
                )
        except Exception as exc:  # whatever run_batch raises belongs to every request of the batch
            for request in live:
                request.future.set_exception(exc)
        else:
            for request, result in zip(live, results, strict=True):
                request.future.set_result(result)
        with self._cond:
            self._batches += 1
            self._items += len(live)
            self._largest = max(self._largest, len(live))


@dataclass(frozen=True)
class _Failed:
    """What ``prepare`` raised, handed to the runner so the batch fails in its turn."""

    error: Exception
