"""Every process the demo starts (site agents, the SuperLink, SuperNodes), stopped whatever happens.

:class:`Fleet` is a context manager: each start registers its stop, and leaving the ``with``
block (normally, on an error or on Ctrl-C) stops them all, newest first, killing any that do not
stop in time. Nothing the demo started outlives it.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from genba.errors import AgentUnavailableError


class Fleet:
    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self._stops: list[tuple[str, Callable[[], None]]] = []

    def __enter__(self) -> Fleet:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_all()

    def stop_all(self) -> None:
        while self._stops:
            _, stop = self._stops.pop()
            try:
                stop()
            except Exception:  # (one stubborn process must not keep the others running)
                continue

    def agent(self, site: Any, timeout: float = 120.0) -> subprocess.Popen[bytes]:
        """``genba agent serve`` for ``site``, once it listens (its address file is written)."""
        from genba import env

        self.logs.mkdir(parents=True, exist_ok=True)
        site.address_file.unlink(missing_ok=True)
        log = (self.logs / f"agent-{site.root.name}.log").open("ab")
        command = [sys.executable, "-m", "genba", "agent", "serve", "--data", str(site.root)]
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env.child_environment())
        self._stops.append((f"agent {site.root.name}", lambda: _stop_process(process, log)))
        deadline = time.monotonic() + timeout
        while not site.address_file.exists():
            if process.poll() is not None or time.monotonic() > deadline:
                raise AgentUnavailableError(
                    f"the agent of {site.root.name} did not start; see {self.logs / log.name}"
                )
            time.sleep(0.05)
        return process

    def superlink(self, kit: Path) -> Any:
        from server.superlink import ServerConfig, SuperLink

        link = SuperLink(ServerConfig(kit=kit)).start()
        self._stops.append(("superlink", lambda: _quietly(link.stop)))
        return link

    def supernode(self, site: Any) -> Any:
        from edge_agent.federation.supernode import JoinConfig, SuperNode

        node = SuperNode(JoinConfig(data=site.root)).start()
        self._stops.append((f"supernode {site.root.name}", lambda: _quietly(node.stop)))
        return node


def _quietly(stop: Callable[[], Any]) -> None:
    stop()


def _stop_process(process: subprocess.Popen[bytes], log: Any) -> None:
    try:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
    finally:
        log.close()
