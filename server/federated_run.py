"""``genba server train``: a federated run of the kit's FAB on the running SuperLink, and its result.

The global head starts as the head of a bundle IT signed (verified against ``it/it-sign.pem.pub``
before anything is sent). The run's files live in ``it/server/runs/RUN/``: the initial head, the
ServerApp's ``results.json`` and final ``head.npz``, and the ``flwr run`` log. Per-site figures
are reported by site name (node ids mapped through ``it/server/nodes.json``).
"""

from __future__ import annotations

import json
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from genba import keys
from genba.bundle import verify_directory
from genba.errors import UsageError
from genba.federation import FAB_DIR
from genba.protocol import MIN_SITES_PER_ROUND as PRIVACY_FLOOR
from genba.tools import console_tool
from server.provision import ITFolder
from server.superlink import CONNECTION, ServerFolder, SuperLinkError


@dataclass(frozen=True)
class TrainConfig:
    kit: Path
    bundle: Path
    rounds: int = 3
    min_sites: int = PRIVACY_FLOOR
    secagg_timeout_s: float = 120.0
    run_timeout_s: float = 3600.0
    #: The Flower app to run; sites run only the one their own Genba builds (and any they approved).
    fab_dir: Path = FAB_DIR

    def __post_init__(self) -> None:
        if self.rounds < 1:
            raise UsageError("--rounds must be at least 1")
        if self.min_sites < PRIVACY_FLOOR:
            raise UsageError(
                f"--min-sites must be at least {PRIVACY_FLOOR}: "
                "with fewer, an aggregate could reveal one site's update"
            )


def train_federated(config: TrainConfig) -> dict[str, Any]:
    folder = ITFolder(Path(config.kit)).require()
    server = ServerFolder(folder)
    if not (server.flwr_home / "config.toml").is_file():
        raise UsageError(
            f"no SuperLink was started for {folder.root}; run 'genba server start --kit {folder.root}' first"
        )
    bundle = verify_directory(
        Path(config.bundle), [keys.load_public_key(folder.signing_key.with_name("it-sign.pem.pub"))]
    )
    run_dir = _new_run_dir(server.root / "runs")
    _write_initial_head(bundle.path / bundle.manifest["graphs"]["head"]["file"], run_dir / "initial-head.npz")
    run_config = " ".join(
        [
            f"num-server-rounds={config.rounds}",
            f"min-sites={config.min_sites}",
            f"secagg-timeout-s={float(config.secagg_timeout_s)}",
            f'initial-head="{run_dir / "initial-head.npz"}"',
            f'results="{run_dir / "results"}"',
        ]
    )
    command = [
        console_tool("flwr"),
        "run",
        str(config.fab_dir),
        CONNECTION,
        "--run-config",
        run_config,
        "--stream",
    ]
    with (run_dir / "flwr-run.log").open("wb") as log:
        done = subprocess.run(
            command,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=server.environment(),
            timeout=config.run_timeout_s,
        )
    results_file = run_dir / "results" / "results.json"
    if done.returncode != 0 or not results_file.is_file():
        raise SuperLinkError(
            f"the federated run produced no result (flwr run exit {done.returncode}); "
            f"see {run_dir / 'flwr-run.log'}"
        )
    results = json.loads(results_file.read_text(encoding="utf-8"))
    names = {node["node_id"]: name for name, node in server.nodes().items()}
    results["per_site_by_round"] = {
        round_: {names.get(node, f"node {node}"): figures for node, figures in sites.items()}
        for round_, sites in results["per_site_by_round"].items()
    }
    results["run_dir"] = str(run_dir)
    results["head"] = str(run_dir / "results" / "head.npz")
    return results


def _new_run_dir(runs: Path) -> Path:
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


def _write_initial_head(head_graph: Path, out: Path) -> None:
    import onnx

    from export.graphs import head_weights

    weights = head_weights(onnx.load(str(head_graph)))
    if weights is None:
        raise UsageError(
            f"{head_graph} holds no linear head; federated training needs a backbone + head bundle"
        )
    np.savez(out, weight=weights.weight.astype(np.float32), bias=weights.bias.astype(np.float32))


def site_overview(kit: Path) -> dict[str, dict[str, Any]]:
    """Per provisioned site: its state, and what it last reported in a run (production version, accuracy)."""
    folder = ITFolder(Path(kit)).require()
    server = ServerFolder(folder)
    names = {node["node_id"]: name for name, node in server.nodes().items()}
    latest: dict[str, dict[str, Any]] = {}
    for results_file in sorted((server.root / "runs").glob("*/results/results.json")):
        run = results_file.parent.parent.name
        document = json.loads(results_file.read_text(encoding="utf-8"))
        for round_, sites in sorted(
            document.get("per_site_by_round", {}).items(), key=lambda item: int(item[0])
        ):
            for node, figures in sites.items():
                latest[names.get(node, f"node {node}")] = {
                    "run": run,
                    "round": int(round_),
                    "production_version": figures.get("production_version"),
                    "accuracy": figures.get("accuracy"),
                }
    return {
        name: {"state": entry["state"], "last_report": latest.get(name)}
        for name, entry in sorted(folder.registry().items())
    }
