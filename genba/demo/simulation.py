"""``genba simulate``: rehearse a federated run with many simulated sites on one machine.

Flower's simulation engine runs the kit's own ServerApp and ClientApp (SecAgg+, the privacy
floor, DP when asked) with one virtual SuperNode per simulated site, loopback only: Ray is
bound to 127.0.0.1 with its dashboard and usage reporting off. Every simulated site is a real
site folder (settings, site store, the bundle installed and verified against the key that
signed it) whose operators labelled a few reports of the synthetic shop-floor generator
(sites take the generator's three site profiles in turn, each with its own seed), so each
ClientApp trains and evaluates on a site store exactly as at a plant. Nothing leaves the
machine and nothing is delivered: the result is the run's per-round figures and its head.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from genba.errors import OutputPathError, UsageError
from genba.protocol import MIN_SITES_PER_ROUND


@dataclass(frozen=True)
class SimulationConfig:
    bundle: Path
    #: The public key that signed ``bundle`` (each simulated site trusts it).
    trust: Path
    out: Path
    sites: int = 10
    rounds: int = 2
    labels_per_class: int = 3
    holdout_per_class: int = 2
    min_sites: int = MIN_SITES_PER_ROUND
    secagg_timeout_s: float = 600.0

    def __post_init__(self) -> None:
        if self.sites < self.min_sites or self.min_sites < MIN_SITES_PER_ROUND:
            raise UsageError(
                f"--sites must be at least --min-sites, and that at least {MIN_SITES_PER_ROUND} "
                "(the privacy floor)"
            )
        if self.rounds < 1 or self.labels_per_class < 1 or self.holdout_per_class < 1:
            raise UsageError("--rounds, labels and held-out labels per class must be at least 1")


def simulate(config: SimulationConfig) -> dict[str, Any]:
    """Build the simulated sites, run the simulation, and return the run's results and timings."""
    out = Path(config.out).absolute()
    if out.exists():
        raise OutputPathError(f"{out} already exists; choose another --out or remove it")
    started = time.perf_counter()
    sites = [_simulated_site(out / "sites", config, index) for index in range(config.sites)]
    setup_s = time.perf_counter() - started
    run_config = _run_config(config, out)
    started = time.perf_counter()
    _run_engine(config.sites, run_config, out / "sites")
    results = json.loads((out / "results" / "results.json").read_text(encoding="utf-8"))
    seconds = time.perf_counter() - started
    return {
        **results,
        "sites": [site.name for site in sites],
        "setup_s": round(setup_s, 1),
        "simulation_s": round(seconds, 1),
        "seconds_per_round": round(seconds / config.rounds, 1),
        "results": str(out / "results"),
    }


def _simulated_site(root: Path, config: SimulationConfig, index: int) -> Path:
    from edge_agent.agent import Agent
    from edge_agent.answers import Item
    from edge_agent.site_init import init_site

    site = init_site(root / f"sim-{index:03d}", site_name=f"sim-{index:03d}", trust=[Path(config.trust)])
    _one_thread_each(site.config_file)  # many simulated sites share this machine's cores
    with Agent.open(site) as agent:
        agent.install(Path(config.bundle), actor="supervisor")
        labels = set(agent.active.production.model.labels) if agent.active.production else set()
        rows = _site_reports(index, labels, config)
        answers = agent.predict([Item(kind="text", value=t, raw=t.encode()) for t, _, _ in rows])
        # Simulated sites are seeded with the generator's own train and evaluation parts, written to the
        # store as such: a rehearsal's fixture. A real site's labels go through Agent.label (by content).
        for answer, (_, label, split) in zip(answers, rows, strict=True):
            agent.store.add_label(answer.input_id, label, actor="operator", split=split)
    return site.root


def _one_thread_each(config_file: Path) -> None:
    import tomllib

    import tomli_w

    document = tomllib.loads(config_file.read_text(encoding="utf-8"))
    document.setdefault("runtime", {})["intra_op_threads"] = 1
    config_file.write_text(tomli_w.dumps(document), encoding="utf-8")


def _site_reports(index: int, labels: set[str], config: SimulationConfig) -> list[tuple[str, str, str]]:
    """A few training and held-out reports per class the model knows, from one site profile."""
    from export.datasets.shopfloor import SITES, site_split

    split = site_split(SITES[index % len(SITES)], seed=index // len(SITES))
    rows: list[tuple[str, str, str]] = []
    for part, count, name in (
        (split.train, config.labels_per_class, "train"),
        (split.eval, config.holdout_per_class, "holdout"),
    ):
        taken: dict[str, int] = {}
        for report in part:
            if report.true_label in labels and taken.get(report.true_label, 0) < count:
                taken[report.true_label] = taken.get(report.true_label, 0) + 1
                rows.append((report.text, report.true_label, name))
    if len({label for _, label, _ in rows}) < 2:
        raise UsageError(
            "the bundle's labels are not the shop-floor generator's: simulation needs its classes"
        )
    return rows


def _run_config(config: SimulationConfig, out: Path) -> dict[str, Any]:
    import numpy as np

    from export.head_swap import backbone_sha256, read_head
    from genba.bundle import verify_directory

    bundle = verify_directory(Path(config.bundle), None)
    head = read_head(bundle)
    (out / "results").mkdir(parents=True, exist_ok=True)
    np.savez(out / "initial-head.npz", weight=head.weight, bias=head.bias)
    return {
        "num-server-rounds": config.rounds,
        "min-sites": config.min_sites,
        "expected-sites": config.sites,
        "wait-s": 60.0,
        "secagg-timeout-s": float(config.secagg_timeout_s),
        "initial-head": str(out / "initial-head.npz"),
        "backbone-sha256": backbone_sha256(bundle.manifest),
        "results": str(out / "results"),
    }


def _run_engine(sites: int, run_config: dict[str, Any], sites_dir: Path) -> None:
    """Flower's simulation engine (Ray, loopback only), the kit's ServerApp and ClientApp in process."""
    from edge_agent.federation.node import SIMULATED_SITES_ENV as SITES_ENV

    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    os.environ[SITES_ENV] = str(sites_dir)  # Ray's workers inherit this process's environment
    from flwr.app import Context, RecordDict
    from flwr.common.constant import RUN_ID_NUM_BYTES, SUPERLINK_NODE_ID, TASK_ID_NUM_BYTES
    from flwr.server.superlink.linkstate.utils import generate_rand_int_from_bytes
    from flwr.simulation.run_simulation import _run_simulation
    from flwr.supercore.constant import NOOP_FEDERATION_ID
    from flwr.supercore.run import Run
    from flwr.supercore.task_identity import TaskIdentity
    from flwr.supercore.telemetry import EventType

    from edge_agent.federation.client_app import app as client_app
    from genba.federation import FAB_DIR
    from server.server_app import app as server_app

    # What flwr.simulation.run_simulation does, plus the run config it cannot pass.
    run = Run.create_empty(run_id=generate_rand_int_from_bytes(RUN_ID_NUM_BYTES))
    run.primary_task_id = generate_rand_int_from_bytes(TASK_ID_NUM_BYTES)
    run.federation_id = NOOP_FEDERATION_ID
    run.override_config = dict(run_config)
    TaskIdentity.task_id, TaskIdentity.run_id, TaskIdentity.node_id = 1, run.run_id, SUPERLINK_NODE_ID
    context = Context(
        run_id=run.run_id, node_id=0, node_config={}, state=RecordDict(), run_config=dict(run_config)
    )
    backend: Any = {
        "init_args": {
            "num_cpus": max(1, os.cpu_count() or 1),
            "include_dashboard": False,
            "_node_ip_address": "127.0.0.1",
        },
        "client_resources": {"num_cpus": 1, "num_gpus": 0.0},
    }
    _run_simulation(
        num_supernodes=sites,
        exit_event=EventType.PYTHON_API_RUN_SIMULATION_LEAVE,
        client_app=client_app,
        server_app=server_app,
        backend_config=backend,
        server_app_context=context,
        app_dir=str(FAB_DIR),
        run=run,
    )
