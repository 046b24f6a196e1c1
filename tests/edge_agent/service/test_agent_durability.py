"""What an acknowledged prediction or label survives, seen on the disk: the agent runs under strace and
every flush (``fsync``/``fdatasync``) of the store's write-ahead log is timed against the answers.

``power_cut`` (the default) must flush each prediction and label before it is acknowledged: a power
cut after the answer cannot take it back. ``process_kill`` must not (it survives a killed process,
tests/edge_agent/service/test_agent_crash.py), which is what makes the flushes here its own doing.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from edge_agent.site import SiteFolder

#: ``strace -ttt -y``: "PID 1733212345.123456 fdatasync(7</path/store.db-wal>) = 0".
_FLUSH = re.compile(r"^\d+\s+(\d+\.\d+)\s+f(?:data)?sync\(\d+<([^>]+)>\)\s+=\s+0")
REQUESTS = 12


def _wal_flushes(trace: Path, store: Path) -> list[float]:
    wal = f"{store.resolve()}-wal"
    flushes = []
    for line in trace.read_text(errors="replace").splitlines():
        match = _FLUSH.match(line)
        if match and match.group(2) == wal:
            flushes.append(float(match.group(1)))
    return flushes


def _acknowledged_windows(client: Any) -> list[tuple[float, float]]:
    """When each prediction and label was asked and acknowledged (wall clock, as strace's)."""
    windows = []
    for index in range(REQUESTS):
        asked = time.time()
        answer = client.predict(f"dent near the flange of part {index}")
        windows.append((asked, time.time()))
        asked = time.time()
        client.label(answer.prediction_id, "dent")
        windows.append((asked, time.time()))
    return windows


@pytest.mark.parametrize("durability", ["power_cut", "process_kill"])
def test_each_acknowledged_write_is_on_the_disk_before_its_answer_only_when_the_site_asks_for_it(
    durability: str,
    make_site: Callable[..., SiteFolder],
    bundle_versions: dict[int, Path],
    agent_harness: Any,
    tmp_path: Path,
) -> None:
    strace = shutil.which("strace")
    assert strace, "strace is missing: 'make test' installs it (packaging/ensure-test-tools.sh)"
    settings = agent_harness.TEST_SETTINGS | {"store": {"audit_share": 0.0, "durability": durability}}
    site = make_site(settings=settings)
    trace = tmp_path / "flushes.trace"
    wrapper = (strace, "-f", "-y", "-ttt", "-e", "trace=fsync,fdatasync", "-o", str(trace))
    agent = agent_harness.AgentProcess(site, tmp_path / "agent.log", wrapper=wrapper).start(timeout=180)
    traced = None  # the agent's own pid: strace, told to stop, would only let go of it
    try:
        with agent.client() as client:
            status = client.status()
            traced = status.pid
            assert status.store.durability == durability
            client.install(bundle_versions[1])
            windows = _acknowledged_windows(client)
    finally:
        if traced is None:  # the agent and strace are a process group of their own
            os.killpg(agent.process.pid, signal.SIGKILL)
        else:
            os.kill(traced, signal.SIGTERM)
        agent.process.wait(timeout=60)
    flushes = _wal_flushes(trace, site.store_file)
    flushed = [any(asked <= at <= acknowledged for at in flushes) for asked, acknowledged in windows]
    if durability == "power_cut":
        assert all(flushed), f"{flushed.count(False)} of {len(windows)} acknowledged without a flush"
    else:
        assert not any(flushed), f"{flushed.count(True)} of {len(windows)} flushed: not process_kill"
