"""What every tab shares: the agent connection, the worker pool, the latest status and the banner."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from PySide6.QtWidgets import QWidget

from edge_agent.service.client import AgentClient
from edge_agent.service.schemas import StatusResponse
from gui.connection import Connection
from gui.workers import Tasks


@dataclass(frozen=True)
class Limited:
    """Signed in with a role that may not read the agent's status (integration): it only predicts."""

    role: str = "integration"


#: What the window knows of the agent: its status, or that this role may not read it.
AgentStatus = StatusResponse | Limited


class Context:
    """Handed to every tab by the main window."""

    def __init__(self, connection: Connection, tasks: Tasks, report: Callable[[str], None]) -> None:
        self.connection = connection
        self.tasks = tasks
        self.report = report  # shows an error in the window's banner
        self.status: AgentStatus | None = None  # None until the first status has landed

    @property
    def role(self) -> str | None:
        return self.status.role if self.status is not None else None

    @property
    def labels(self) -> list[str]:
        status = self.status
        if not isinstance(status, StatusResponse) or status.production is None:
            return []
        return list(status.production.labels)

    def call(
        self,
        request: Callable[[AgentClient], Any],
        on_done: Callable[[Any], None],
        on_error: Callable[[str], None] | None = None,
    ) -> None:
        """``request(client)`` on a worker thread; ``on_done(result)`` back on the GUI thread."""

        def failed(message: str) -> None:
            self.report(message)
            if on_error is not None:
                on_error(message)

        self.tasks.submit(lambda: self.connection.call(request), on_done, failed)


class Tab(QWidget):
    """A tab: ``retranslate`` sets every text, ``refresh`` loads its data, ``on_status`` follows the agent."""

    def __init__(self, context: Context) -> None:
        super().__init__()
        self.context = context

    def retranslate(self) -> None:
        raise NotImplementedError

    def refresh(self) -> None:
        """Load this tab's data from the agent (called when the tab is shown and on the timer)."""

    def on_status(self, status: AgentStatus) -> None:
        """The agent's latest status (models, stage, role); called on every status refresh."""
