"""What every Flower run IT starts shares: its folder, the ``flwr run`` call and the site names.

Each run (training or a delivery) gets ``it/server/runs/RUN/`` with its inputs, the
ServerApp's ``results/results.json`` and the ``flwr run`` log.
"""

from __future__ import annotations

import json
import subprocess
import time
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from genba.errors import UsageError
from genba.tools import console_tool
from server.superlink import CONNECTION, ServerFolder, SuperLinkError

#: What ``flwr run --stream`` says when the SuperLink it streams from goes away.
LINK_LOST = "Connection to the SuperLink is unavailable"
#: What it says once the SuperLink took the run.
STARTED = "Successfully started run"


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


class RunInterruptedError(SuperLinkError):
    """The SuperLink stopped or restarted while a run was in progress: the run ended without a result."""


def flwr_run(
    server: ServerFolder, fab_dir: Path, run_dir: Path, run_config: Mapping[str, Any], timeout_s: float
) -> dict[str, Any]:
    """Run the FAB on the SuperLink until it ends; the ServerApp's ``results.json``.

    A SuperLink that goes away mid-run ends the run there: Flower cannot carry a run over a restart
    (the ServerApp's process and the messages in flight go with it). That is a
    :class:`RunInterruptedError`.
    """
    address = connection_address(server)
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
        try:
            done = subprocess.run(
                command, stdout=log, stderr=subprocess.STDOUT, env=server.environment(), timeout=timeout_s
            )
        except subprocess.TimeoutExpired as exc:
            raise SuperLinkError(
                f"run {run_dir.name} did not end within {timeout_s:g} s (too few sites connected?); "
                f"restarting 'genba server start --kit {server.folder.root}' ends it; "
                f"see {run_dir / 'flwr-run.log'}"
            ) from exc
    results_file = run_dir / "results" / "results.json"
    if done.returncode != 0 or not results_file.is_file():
        raise _failure(server, run_dir, address, done.returncode)
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


def connection_address(server: ServerFolder) -> str | None:
    """The SuperLink's loopback address the ``flwr`` CLI uses: a new one each time it starts."""
    try:
        document = tomllib.loads((server.flwr_home / "config.toml").read_text(encoding="utf-8"))
        return str(document["superlink"][CONNECTION]["address"])
    except (OSError, KeyError, TypeError, tomllib.TOMLDecodeError):
        return None


def _failure(server: ServerFolder, run_dir: Path, address: str | None, code: int) -> SuperLinkError:
    """Why ``flwr run`` ended without a result, in one line."""
    said = _log_text(run_dir / "flwr-run.log")
    if code != 0 and LINK_LOST in said:
        if STARTED in said:
            return _interrupted(server, run_dir)
        return SuperLinkError(
            f"no SuperLink answers at {address}: start it ('genba server start --kit {server.folder.root}'), "
            "then the run again"
        )
    return SuperLinkError(
        f"the federated run produced no result (flwr run exit {code}); see {run_dir / 'flwr-run.log'}"
    )


def _interrupted(server: ServerFolder, run_dir: Path) -> RunInterruptedError:
    return RunInterruptedError(
        f"run {run_dir.name} stopped: the SuperLink went away while it ran, so it has no result and "
        "released nothing (the sites keep their models); once 'genba server start --kit "
        f"{server.folder.root}' runs, start the run again (the sites rejoin by themselves)"
    )


def _log_text(path: Path) -> str:
    try:
        return " ".join(path.read_text(encoding="utf-8", errors="replace").split())
    except OSError:
        return ""
