"""The site's ClientApp process, kept running beside its SuperNode.

The SuperNode's own process (:mod:`edge_agent.federation.supernode_launch`) starts
:mod:`edge_agent.federation.pinned_clientapp` as its child, so the two share a process group and
``SuperNode.stop()`` ends both; it starts it again if it dies, and writes a line to its standard
input each time a message is in (:meth:`ClientAppProcess.nudge`).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path


class ClientAppProcess:
    """The site's ClientApp process as a child of the SuperNode process, started again if it dies.

    Started by the SuperNode's own process (``supernode_launch``), so it shares its process group:
    ``SuperNode.stop()`` ends both. Each start is recorded in ``DATA/federation/clientapp.json``.
    """

    RESTART_DELAYS_S = (0.5, 1.0, 2.0, 5.0, 10.0, 30.0)

    def __init__(self, site: Path, environment: dict[str, str] | None = None) -> None:
        self.site = site
        self.environment = dict(environment if environment is not None else os.environ)
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._keep_running, name="genba-clientapp", daemon=True)

    def start(self) -> ClientAppProcess:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()

    def nudge(self) -> None:
        """Tell the ClientApp process a message is in (a line on its standard input): it claims it now."""
        with self._lock:
            pipe = None if self.process is None else self.process.stdin
            try:
                if pipe is not None:
                    pipe.write(b"\n")
                    pipe.flush()
            except (OSError, ValueError):  # it is being started again; it polls until then
                pass

    def _keep_running(self) -> None:
        failures = 0
        while not self._stop.is_set():
            started = time.monotonic()
            self._spawn()
            assert self.process is not None
            while self.process.poll() is None and not self._stop.wait(0.2):
                pass
            if self._stop.is_set():
                return
            failures = 0 if time.monotonic() - started > 60 else failures + 1
            delay = self.RESTART_DELAYS_S[min(failures, len(self.RESTART_DELAYS_S) - 1)]
            print(
                f"genba: the site's ClientApp process ended (code {self.process.returncode}); "
                f"starting it again in {delay:g} s",
                file=sys.stderr,
                flush=True,
            )
            self._stop.wait(delay)

    def _spawn(self) -> None:
        command = [
            sys.executable,
            "-m",
            "edge_agent.federation.pinned_clientapp",
            "--parent-pid",
            str(os.getpid()),
        ]
        with self._lock:  # output: the SuperNode's log; input: its nudges
            self.process = subprocess.Popen(command, env=self.environment, stdin=subprocess.PIPE)
        self.starts += 1
        record = {"pid": self.process.pid, "starts": self.starts, "started_at": time.time()}
        path = clientapp_file(self.site)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.with_suffix(".tmp").write_text(json.dumps(record), encoding="utf-8")
        os.replace(path.with_suffix(".tmp"), path)


def clientapp_file(site: Path) -> Path:
    """Where the running ClientApp process is recorded (pid, how many times it was started)."""
    return site / "federation" / "clientapp.json"
