"""The store's timestamps never step back, whatever the PC's clock does.

A stage's items, its agreement and its fresh labels are counted from the moment the stage began
(``slots.since``), by the time each answer and label was stamped with. A clock set back (an NTP
correction, a wrong time fixed by hand) would stamp new answers before ``since``, so the stage
would stall until the clock caught up; and a candidate installed again after the jump would count
its earlier stint's answers as new ones: a promotion on evidence it never earned here.

So when the clock reads earlier than the newest time already stamped, the store stamps just after
that time instead (a microsecond later each time, so the order of what it writes still shows),
until the clock catches up. How far the clock is behind is reported (``held_back_s``) so the agent
can say so. A clock that stands still (tests) stamps equal times, as it always did.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from typing import Final

#: How much later than the newest stamp a stamp is put while the clock reads earlier than it.
STEP_S: Final = 1e-6

# The newest stamp in each table that holds one (each read by its primary key: no scan).
_NEWEST: Final = (
    "SELECT created_at FROM inputs ORDER BY id DESC LIMIT 1",
    "SELECT created_at FROM predictions ORDER BY id DESC LIMIT 1",
    "SELECT created_at FROM labels ORDER BY id DESC LIMIT 1",
    "SELECT created_at FROM audit_log ORDER BY seq DESC LIMIT 1",
    "SELECT created_at FROM egress_ledger ORDER BY seq DESC LIMIT 1",
    "SELECT max(since) FROM slots",
)


def newest_stamp(conn: sqlite3.Connection) -> float:
    """The latest time the store holds (0.0 for an empty store)."""
    stamps = [row[0] for query in _NEWEST for row in conn.execute(query) if row[0] is not None]
    return max(stamps, default=0.0)


class SteadyClock:
    """Wraps the clock the store was given; thread-safe."""

    def __init__(self, clock: Callable[[], float], newest: float) -> None:
        self._clock = clock
        self._newest = newest
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            now = self._clock()
            if now < self._newest:
                now = self._newest + STEP_S
            self._newest = now
            return now

    @property
    def held_back_s(self) -> float:
        """How far the clock is behind the newest stamp now (0.0 when it is not)."""
        with self._lock:
            return max(0.0, self._newest - self._clock())
