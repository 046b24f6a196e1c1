"""Every call to the agent runs on a worker thread; its result comes back as a Qt signal.

A :class:`Worker` emits ``started``, then ``finished(result)`` or ``errored(message)``. Its
signal object is created on the GUI thread, so the connected callbacks run there (queued), never
on the worker. :class:`Tasks` keeps running workers alive and counts them, so a tab can show that
it is busy and tests can wait until everything has landed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal

from genba.errors import GenbaError

log = logging.getLogger(__name__)


class WorkerSignals(QObject):
    started = Signal()
    finished = Signal(object)
    errored = Signal(str)


class Worker(QRunnable):
    def __init__(self, job: Callable[[], Any]) -> None:
        super().__init__()
        self.job = job
        self.signals = WorkerSignals()
        self.setAutoDelete(False)  # Tasks holds it until its result has been delivered

    def run(self) -> None:
        self.signals.started.emit()
        try:
            result = self.job()
        except GenbaError as error:  # the agent's own words: already one clear line
            self.signals.errored.emit(str(error))
        except Exception as exc:  # (a worker must never take the app down)
            log.exception("a background call failed")
            self.signals.errored.emit(f"{type(exc).__name__}: {exc}")
        else:
            self.signals.finished.emit(result)


class Tasks(QObject):
    """Submit jobs; ``idle`` fires when the last running one has delivered its result."""

    idle = Signal()
    busy = Signal(bool)

    def __init__(self, pool: QThreadPool | None = None) -> None:
        super().__init__()
        self.pool = pool or QThreadPool.globalInstance()
        self.running: set[Worker] = set()

    def submit(
        self,
        job: Callable[[], Any],
        on_done: Callable[[Any], None],
        on_error: Callable[[str], None],
    ) -> Worker:
        worker = Worker(job)
        worker.signals.finished.connect(on_done)
        worker.signals.errored.connect(on_error)
        worker.signals.finished.connect(lambda _result: self._settle(worker))
        worker.signals.errored.connect(lambda _message: self._settle(worker))
        self.running.add(worker)
        self.busy.emit(True)
        self.pool.start(worker)
        return worker

    def _settle(self, worker: Worker) -> None:
        self.running.discard(worker)
        if not self.running:
            self.busy.emit(False)
            self.idle.emit()
