"""The ServerApp's Grid: replies that came in time are kept although another reply's objects never came."""

from __future__ import annotations

import time
from types import SimpleNamespace
from typing import Any

from server.prompt_grid import PromptGrid


class _Grid:
    """Flower's Grid as a round sees it when one site's line dropped between pushing its reply and
    the reply's objects: the first pull waits on those objects past the exchange's timeout and
    gives Flower's stand-in for it; the other sites' replies came meanwhile."""

    def __init__(self) -> None:
        self.pulls = 0

    def push_messages(self, messages: Any) -> list[str]:
        return list(messages)

    def pull_messages(self, waiting: set[str]) -> list[Any]:
        self.pulls += 1
        if self.pulls == 1:
            time.sleep(0.3)  # Flower asking again and again for the objects that never came
            return [_reply("to-c")]
        return [_reply(message) for message in sorted(waiting)]


def _reply(answering: str) -> Any:
    return SimpleNamespace(metadata=SimpleNamespace(reply_to_message_id=answering))


def test_replies_that_came_while_another_held_the_pull_past_the_timeout_are_kept() -> None:
    grid = _Grid()
    replies = PromptGrid(grid).send_and_receive(["to-a", "to-b", "to-c"], timeout=0.1)
    assert sorted(r.metadata.reply_to_message_id for r in replies) == ["to-a", "to-b", "to-c"]
    assert grid.pulls == 2  # and no pull after the last one past the timeout
