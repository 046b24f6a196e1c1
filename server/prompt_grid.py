"""The ServerApp's Grid, collecting replies as soon as they arrive.

Flower 1.42's ``Grid.send_and_receive`` (``flwr/superlink/grid/http_grid.py``) pulls the replies
it waits for, then sleeps 3 s before pulling again. A SecAgg+ round is four such exchanges with
the sites (and one more to evaluate), and a site answers each in well under a second, so most of a
round was that sleep. :class:`PromptGrid` does the same exchange through the Grid's own
``push_messages`` and ``pull_messages`` and pulls again after ``poll_s``: a pull is one request to
the SuperLink on loopback.

A reply can be listed before all its objects reached the SuperLink (a SuperNode pushes the message,
then its objects); Flower's Grid then asks again for a missing object after 1 s, 2 s... The
ServerApp's process here asks again after OBJECT_BACKOFF_S, doubling up to 1 s.
"""

from __future__ import annotations

import functools
import time
from typing import Any

#: How long the ServerApp waits between two pulls of the replies it still expects.
POLL_S = 0.05
#: First wait before asking again for an object the SuperLink does not hold yet (Flower: 1 s).
OBJECT_BACKOFF_S = 0.05


class PromptGrid:
    """Wraps a Flower Grid; ``send_and_receive`` polls every ``poll_s``, everything else is the Grid's."""

    def __init__(self, grid: Any, poll_s: float = POLL_S) -> None:
        self._grid = grid
        self.poll_s = poll_s
        _prompt_object_pulls()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._grid, name)

    def send_and_receive(self, messages: Any, *, timeout: float | None = None) -> list[Any]:
        """Push ``messages``, then collect their replies until all came or ``timeout`` passed
        (None: until all came), as Flower's own method does."""
        waiting = set(self._grid.push_messages(messages))
        deadline = None if timeout is None else time.monotonic() + timeout
        replies: list[Any] = []
        while waiting:
            pulled = list(self._grid.pull_messages(waiting))
            replies += pulled
            waiting -= {reply.metadata.reply_to_message_id for reply in pulled}
            if not waiting or (deadline is not None and time.monotonic() >= deadline):
                break
            time.sleep(self.poll_s)
        return replies


def _prompt_object_pulls() -> None:
    """Flower's Grid retries a missing object after OBJECT_BACKOFF_S (this process only; once)."""
    from flwr.superlink.grid import http_grid

    if not isinstance(http_grid.pull_objects, functools.partial):
        http_grid.pull_objects = functools.partial(
            http_grid.pull_objects, initial_backoff=OBJECT_BACKOFF_S, backoff_cap=1.0
        )
