"""The app's link to the site agent: the typed API client, found through the site folder.

No Qt here: widgets call :meth:`Connection.call` on worker threads. The client is opened lazily
and dropped after a connection failure, so the next call finds the agent again through
``agent.addr`` (a restarted agent listens on a new port).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from edge_agent.service.client import AgentClient
from genba.errors import AgentUnavailableError

T = TypeVar("T")


class Connection:
    def __init__(self, data: Path, role: str | None = None, *, timeout_s: float = 10.0) -> None:
        self.data = data
        self.role = role
        self.timeout_s = timeout_s
        self._client: AgentClient | None = None
        self._lock = threading.Lock()

    def call(self, request: Callable[[AgentClient], T]) -> T:
        """Run one API call (on a worker thread); a connection failure forgets the client."""
        client = self._open()
        try:
            return request(client)
        except AgentUnavailableError:
            self.reset()
            raise

    def reset(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None

    def _open(self) -> AgentClient:
        with self._lock:
            if self._client is None:  # no agent.addr: AgentUnavailableError, saying how to start it
                self._client = AgentClient.for_site(self.data, self.role, timeout=self.timeout_s)
            return self._client
