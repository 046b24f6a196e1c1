"""Console tools of this environment (``flower-superlink``, ``flwr``...) and the environment they run in."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

from genba import env
from genba.errors import UsageError


def console_tool(name: str) -> str:
    """The console script beside this interpreter (the project's venv), else on PATH."""
    beside = Path(sys.executable).with_name(name)
    if beside.is_file():
        return str(beside)
    found = shutil.which(name)
    if found is None:
        raise UsageError(f"{name} is not installed in this environment; run 'make test' or 'make demo' once")
    return found


def flower_environment(flwr_home: Path) -> dict[str, str]:
    """Telemetry off, ``FLWR_HOME`` set, and this environment's tools first on PATH (Flower starts
    ``flower-superexec`` and ``flwr-clientapp`` by name)."""
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    return env.child_environment({"FLWR_HOME": str(flwr_home), "PATH": path})


def free_loopback_port() -> int:
    """A port nothing listens on right now (for a process that must be told its port up front)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def until_signalled() -> Iterator[threading.Event]:
    """An event set by SIGINT or SIGTERM while inside; the previous handlers come back after."""
    stop = threading.Event()

    def handle(signum: int, frame: object) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, handle) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
