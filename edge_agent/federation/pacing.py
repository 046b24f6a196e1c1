"""How often the site's SuperNode asks for work: every tenth of a second while a run is active.

Flower 1.42's SuperNode sleeps 3 s after each empty poll of the SuperLink, and 0.5 s between checks
for its ClientApp's reply (``flwr/supernode/start_client_internal.py``). A SecAgg+ round is four
exchanges with every site, and the site's ClientApp answers a stage in milliseconds, so most of a
round was those sleeps. Flower has no setting for them: the SuperNode's process
(:mod:`edge_agent.federation.supernode_launch`) gives that module a ``time`` whose ``sleep``
follows a :class:`Pacer` instead. After a message comes or goes, the SuperLink is polled every
``active_poll_s`` for ``active_window_s``, then every 3 s again as Flower does (so an idle site's
control traffic stays what it was); a wait for the ClientApp's reply checks every ``reply_check_s``.

Likewise, when the SuperNode pulls a message's objects before the server has pushed them all,
Flower retries after 1 s, then 2 s...; the SuperNode here retries after ``object_backoff_s``,
doubling up to 1 s.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class PacingConfig:
    active_poll_s: float = 0.1
    active_window_s: float = 60.0
    reply_check_s: float = 0.01
    #: First wait before asking again for an object the SuperLink does not hold yet (Flower: 1 s).
    object_backoff_s: float = 0.05


class Pacer:
    """The sleep Flower asks for, shortened while messages flow."""

    def __init__(
        self, config: PacingConfig = PacingConfig(), clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.config = config
        self._clock = clock
        self._last = float("-inf")

    def busy(self) -> None:
        """A message was pulled or a reply pushed: the next one is likely to follow soon."""
        self._last = self._clock()

    def interval(self, requested: float) -> float:
        if requested < 1.0:  # waiting for the ClientApp's reply, or for an object to be stored
            return min(requested, self.config.reply_check_s)
        if self._clock() - self._last < self.config.active_window_s:
            return min(requested, self.config.active_poll_s)
        return requested


class _PacedTime:
    """The ``time`` module, with ``sleep`` following a pacer."""

    def __init__(self, pacer: Pacer) -> None:
        self._pacer = pacer

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)

    def sleep(self, seconds: float) -> None:
        time.sleep(self._pacer.interval(seconds))


def pace_supernode(config: PacingConfig = PacingConfig()) -> Pacer:
    """Make Flower's SuperNode loop sleep as a :class:`Pacer` says; returns it (``busy()`` on traffic)."""
    import flwr.supernode.start_client_internal as supernode_loop

    pacer = Pacer(config)
    supernode_loop.time = _PacedTime(pacer)  # type: ignore[assignment]
    supernode_loop.pull_objects = functools.partial(
        supernode_loop.pull_objects, initial_backoff=config.object_backoff_s, backoff_cap=1.0
    )
    return pacer
