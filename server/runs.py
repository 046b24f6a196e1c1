"""What every Flower run IT starts shares: its folder, the ``flwr run`` call and the site names.

Each run (training or a delivery) gets ``it/server/runs/RUN/`` with its inputs, the
ServerApp's ``results/results.json`` and the ``flwr run`` log.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from genba.errors import UsageError
from genba.tools import console_tool
from server.superlink import CONNECTION, ServerFolder, SuperLinkError


def require_superlink(server: ServerFolder) -> None:
    if not (server.flwr_home / "config.toml").is_file():
        root = server.folder.root
        raise UsageError(f"no SuperLink was started for {root}; run 'genba server start --kit {root}' first")


def new_run_dir(runs: Path) -> Path:
    """``runs/YYYYmmdd-HHMMSS`` (``-2``, ``-3``... when runs start within the same second)."""
    runs.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for attempt in range(1, 1000):
        candidate = runs / (stamp if attempt == 1 else f"{stamp}-{attempt}")
        try:
            candidate.mkdir()
            return candidate
        except FileExistsError:
            continue
    raise UsageError(f"too many runs started at {stamp} in {runs}")


def flwr_run(
    server: ServerFolder, fab_dir: Path, run_dir: Path, run_config: Mapping[str, Any], timeout_s: float
) -> dict[str, Any]:
    """Run the FAB on the SuperLink until it ends; the ServerApp's ``results.json``."""
    settings = {**run_config, "results": str(run_dir / "results")}
    command = [
        console_tool("flwr"),
        "run",
        str(fab_dir),
        CONNECTION,
        "--run-config",
        " ".join(f"{key}={_toml(value)}" for key, value in settings.items()),
        "--stream",
    ]
    with (run_dir / "flwr-run.log").open("wb") as log:
        done = subprocess.run(
            command, stdout=log, stderr=subprocess.STDOUT, env=server.environment(), timeout=timeout_s
        )
    results_file = run_dir / "results" / "results.json"
    if done.returncode != 0 or not results_file.is_file():
        raise SuperLinkError(
            f"the federated run produced no result (flwr run exit {done.returncode}); "
            f"see {run_dir / 'flwr-run.log'}"
        )
    return dict(json.loads(results_file.read_text(encoding="utf-8")))


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    return json.dumps(str(value))  # a TOML basic string


def node_names(server: ServerFolder) -> dict[str, str]:
    """Node id (as the ServerApp writes it) → site name."""
    return {str(node["node_id"]): name for name, node in server.nodes().items()}
