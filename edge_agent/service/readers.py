"""Threads that compute the read views, at a lower CPU priority than the line's predictions.

A month's report, the KPIs or the labelling queue take tens of milliseconds of a small PC's CPU,
mostly inside SQLite. Computed on the request threads at the same priority as the batcher and
ONNX Runtime's threads, they share the two cores of a shop-floor PC equally with the model, and
a prediction that arrives meanwhile waits. The views are computed here instead, on threads whose
scheduling priority is lowered once (a nice value of ``READER_NICENESS``; raising it again would
need privileges the agent does not have, so these threads do nothing else): when both want a core,
the line's predictions get it, and the views take what is left, which on a PC serving a line is
most of it.

Where the operating system has no per-thread priority (Windows), the threads run at normal
priority and only the view cache (:mod:`.view_cache`) bounds what polling costs.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Final, TypeVar

from genba.errors import ExplanationsBusyError

T = TypeVar("T")

READER_NICENESS: Final = 10
READER_THREADS: Final = 2


class Readers:
    def __init__(self, threads: int = READER_THREADS) -> None:
        self._pool = ThreadPoolExecutor(
            threads, thread_name_prefix="genba-reader", initializer=lower_priority
        )

    async def run(self, function: Callable[..., T], *args: object) -> T:
        return await asyncio.get_running_loop().run_in_executor(
            self._pool, functools.partial(function, *args)
        )

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


class ExplanationSlots:
    """At most ``limit`` explanations in the agent at once (computing or waiting for their
    thread); one more is refused at once with :class:`ExplanationsBusyError` (503). Used from the
    event loop only, so a plain counter is enough."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.taken = 0

    @contextlib.contextmanager
    def __call__(self) -> Iterator[None]:
        if self.taken >= self.limit:
            raise ExplanationsBusyError(self.limit)
        self.taken += 1
        try:
            yield
        finally:
            self.taken -= 1


def lower_priority() -> None:
    """Lower the calling thread's CPU priority (its own nice value on Linux); never raises."""
    if hasattr(os, "setpriority"):
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), READER_NICENESS)
