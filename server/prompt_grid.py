"""The ServerApp's Grid, collecting replies as soon as they arrive.

Flower 1.42's ``Grid.send_and_receive`` (``flwr/superlink/grid/http_grid.py``) pulls the replies
it waits for, then sleeps 3 s before pulling again. A SecAgg+ round is four such exchanges with
the sites (and one more to evaluate), and a site answers each in well under a second, so most of a
round was that sleep. :class:`PromptGrid` does the same exchange through the Grid's own
``push_messages`` and ``pull_messages`` and pulls again after ``poll_s``: a pull is one request to
the SuperLink on loopback.

A reply can be listed before all its objects reached the SuperLink (a SuperNode pushes the message,
then its objects); Flower's Grid then asks again for a missing object after 1 s, 2 s... The
ServerApp's process here asks again after OBJECT_BACKOFF_S, doubling up to 1 s. Flower keeps
asking for up to 500 tries (minutes), whatever the exchange's timeout: a site whose line dropped
between pushing a reply and its objects held the whole round that long. Here a missing object is
asked for until the exchange's deadline, and OBJECT_GRACE_S beyond it at most; then the reply counts
as unavailable (Flower's error reply), as a site that never answered.
"""

from __future__ import annotations

import threading
import time
from typing import Any

#: How long the ServerApp waits between two pulls of the replies it still expects.
POLL_S = 0.05
#: First wait before asking again for an object the SuperLink does not hold yet (Flower: 1 s).
OBJECT_BACKOFF_S = 0.05
#: How long past the exchange's deadline a reply's missing objects are still waited for.
OBJECT_GRACE_S = 30.0

#: The deadline of the exchange this thread is in (monotonic seconds; None: no timeout).
_EXCHANGE = threading.local()


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
        _EXCHANGE.deadline = deadline
        replies: list[Any] = []
        try:
            while waiting:
                # Past the deadline, one last pull: a reply whose objects never came can hold a pull
                # beyond it, while the other replies came in time.
                expired = deadline is not None and time.monotonic() >= deadline
                pulled = list(self._grid.pull_messages(waiting))
                replies += pulled
                waiting -= {reply.metadata.reply_to_message_id for reply in pulled}
                if not waiting or expired:
                    break
                time.sleep(self.poll_s)
        finally:
            _EXCHANGE.deadline = None
        return replies


def _prompt_object_pulls() -> None:
    """Flower's Grid retries a missing object after OBJECT_BACKOFF_S, and not past the exchange's
    deadline and its grace (this process only; once)."""
    from flwr.superlink.grid import http_grid

    if getattr(http_grid.pull_objects, "genba_prompt", False):
        return
    pull_objects = http_grid.pull_objects

    def prompt_pull_objects(*args: Any, **kwargs: Any) -> Any:
        deadline = getattr(_EXCHANGE, "deadline", None)
        if deadline is not None:
            kwargs["max_time"] = max(0.0, deadline - time.monotonic()) + OBJECT_GRACE_S
        return pull_objects(*args, initial_backoff=OBJECT_BACKOFF_S, backoff_cap=1.0, **kwargs)

    prompt_pull_objects.genba_prompt = True  # type: ignore[attr-defined]
    http_grid.pull_objects = prompt_pull_objects
