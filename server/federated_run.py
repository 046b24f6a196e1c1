"""``genba server train``: a federated run of the kit's FAB on the running SuperLink, and its result.

The global head starts as the head of a bundle IT signed (verified against ``it/it-sign.pem.pub``
before anything is sent): the ``--bundle`` given, which the registry records as a version, or
the registry's newest version. The run's files live in ``it/server/runs/RUN/``: the initial
head, the ServerApp's ``results.json`` and final ``head.npz``, and the ``flwr run`` log. Per-site
figures are reported by site name (node ids mapped through ``it/server/nodes.json``).

When at least one round was aggregated, the final head becomes a global bundle: a head swap of
the starting bundle, signed with IT's key, numbered above every version the registry and the
sites hold, recorded in the registry with the run's rounds, and delivered to the sites, where
it becomes the candidate. A run that the SuperLink's stop or restart cut short is recorded as
``interrupted`` and raises :class:`server.runs.RunInterruptedError`: nothing of it is released.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from genba import keys
from genba.bundle import VerifiedBundle, verify_directory
from genba.errors import UsageError
from genba.federation import FAB_DIR
from genba.protocol import MIN_SITES_PER_ROUND as PRIVACY_FLOOR
from server.privacy import PrivacyConfig
from server.provision import ITFolder
from server.publish import deliver, it_public_key, manifest_sha256
from server.registry import Registry, VersionRow
from server.runs import RunInterruptedError, flwr_run, new_run_dir, node_names, require_superlink
from server.superlink import ServerFolder


@dataclass(frozen=True)
class TrainConfig:
    kit: Path
    #: The IT-signed bundle whose head starts the run; default: the registry's newest version.
    bundle: Path | None = None
    rounds: int = 3
    min_sites: int = PRIVACY_FLOOR
    secagg_timeout_s: float = 120.0
    run_timeout_s: float = 3600.0
    #: Deliver the global bundle to the sites when the run ends (waiting this long for them).
    deliver: bool = True
    delivery_wait_s: float = 60.0
    #: How long round 1 waits for every active site to be connected (it starts with those there).
    join_wait_s: float = 60.0
    #: Keep every reply the server receives in the run folder (``received.jsonl``), for an audit.
    keep_received: bool = False
    #: Site-level differential privacy (clipping at the sites, noise on the aggregate), or none.
    privacy: PrivacyConfig | None = None
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
    require_superlink(server)
    with Registry(server.root) as registry:
        base = _starting_version(folder, registry, config.bundle)
        bundle = verify_directory(base.path, [it_public_key(folder)])
        run_dir = new_run_dir(server.root / "runs")
        run = run_dir.name
        _write_initial_head(bundle, run_dir / "initial-head.npz")
        registry.start_run(
            run, name=base.name, base_version=base.version, rounds=config.rounds,
            min_sites=config.min_sites, privacy=config.privacy.to_json() if config.privacy else {},
        )  # fmt: skip
        run_config = {
            "num-server-rounds": config.rounds,
            "min-sites": config.min_sites,
            "secagg-timeout-s": float(config.secagg_timeout_s),
            "initial-head": str(run_dir / "initial-head.npz"),
            "expected-sites": _active_sites(folder),
            "backbone-sha256": _backbone(bundle),
            "keep-received": config.keep_received,
            "wait-s": float(config.join_wait_s),
        }
        if config.privacy is not None:
            run_config.update(
                {
                    "dp-noise": config.privacy.noise_multiplier,
                    "dp-clip": config.privacy.clipping_norm,
                    "dp-delta": config.privacy.delta,
                }
            )
        try:
            results = flwr_run(server, config.fab_dir, run_dir, run_config, config.run_timeout_s)
        except RunInterruptedError:
            registry.finish_run(run, outcome="interrupted", version=None)
            raise
        except BaseException:
            registry.finish_run(run, outcome="failed", version=None)
            raise
        names = node_names(server)
        results["per_site_by_round"] = {
            round_: {names.get(node, f"node {node}"): figures for node, figures in sites.items()}
            for round_, sites in results["per_site_by_round"].items()
        }
        for fit in results["fit_by_round"].values():
            for key in ("contributed", "dropped", "sampled"):
                if key in fit:
                    fit[key] = sorted(names.get(node, f"node {node}") for node in fit[key])
        registry.record_rounds(run, results)
        results.update(run=run, run_dir=str(run_dir), head=str(run_dir / "results" / "head.npz"))
        if not results["rounds_aggregated"]:
            registry.finish_run(run, outcome="nothing-aggregated", version=None, privacy=results["privacy"])
            return {**results, "global_bundle": None, "delivered": {}}
        row = _write_global_bundle(folder, registry, bundle, base, run, results)
        registry.finish_run(run, outcome="completed", version=row.version, privacy=results["privacy"])
        delivered = (
            deliver(folder, registry, row, "train", wait_s=config.delivery_wait_s, fab_dir=config.fab_dir)
            if config.deliver
            else {}
        )
    return {**results, "global_bundle": row.to_json(), "delivered": delivered}


def _backbone(bundle: VerifiedBundle) -> str:
    from export.head_swap import backbone_sha256

    return backbone_sha256(bundle.manifest)


def _active_sites(folder: ITFolder) -> int:
    return sum(1 for entry in folder.registry().values() if entry["state"] == "active")


def _starting_version(folder: ITFolder, registry: Registry, bundle: Path | None) -> VersionRow:
    """The ``--bundle`` given, registered (a copy kept beside the registry), or the newest version."""
    if bundle is None:
        versions = registry.versions(registry.only_name())
        return versions[-1]
    given = verify_directory(Path(bundle), [it_public_key(folder)])
    model = given.manifest.model
    name, version = str(model.name), model.release
    sha = manifest_sha256(given.path)
    known = registry.version(name, version)
    if known is not None and known.manifest_sha256 == sha:
        return known
    parent = given.manifest.lineage.parent
    parent_version = parent.release if parent and registry.version(name, parent.release) else None
    target = registry.bundle_path(name, version)
    if target.exists() and known is None:
        shutil.rmtree(target)  # a copy the registry never recorded (an interrupted registration)
    if known is None:
        shutil.copytree(given.path, target)
    return registry.add_version(
        name=name, version=version, manifest_sha256=sha, kind="export", parent_version=parent_version
    )


def _write_initial_head(bundle: VerifiedBundle, out: Path) -> None:
    from export.head_swap import read_head

    head = read_head(bundle)
    np.savez(out, weight=head.weight, bias=head.bias)


def _write_global_bundle(
    folder: ITFolder,
    registry: Registry,
    parent: VerifiedBundle,
    base: VersionRow,
    run: str,
    results: dict[str, Any],
) -> VersionRow:
    from export.graphs import HeadWeights
    from export.head_swap import write_head_swap

    newest_at_sites = [
        int(figures.get("newest_version") or 0)
        for sites in results["per_site_by_round"].values()
        for figures in sites.values()
    ]
    version = max([registry.next_version(base.name), *(v + 1 for v in newest_at_sites)])
    with np.load(results["head"]) as head:
        weights = HeadWeights(head["weight"].astype(np.float32), head["bias"].astype(np.float32))
    rounds = results["rounds_aggregated"]
    sites = sorted({site for by_site in results["per_site_by_round"].values() for site in by_site})
    accuracy = results.get("accuracy_by_round") or {}
    out = registry.bundle_path(base.name, version)
    write_head_swap(
        parent,
        weights,
        out,
        keys.load_private_key(folder.signing_key),
        source={"kind": "federated", "run": run, "rounds": rounds, "sites": sites},
        report_key="federated_training",
        report={
            "rounds_aggregated": rounds,
            "accuracy_by_round": {str(r): v for r, v in accuracy.items()},
            "sites": len(sites),
            "differential_privacy": results.get("privacy"),
        },
        version=version,
        lineage_fields={"federated_run": run, "round": max(rounds)},
    )
    return registry.add_written_bundle(
        base.name, version, kind="federated", parent_version=base.version, run=run
    )


def site_overview(kit: Path) -> dict[str, dict[str, Any]]:
    """Per provisioned site: its state, and what it last reported in a run (production version, accuracy)."""
    folder = ITFolder(Path(kit)).require()
    server = ServerFolder(folder)
    with Registry(server.root) as registry:
        latest = registry.latest_reports()
    return {
        name: {"state": entry["state"], "last_report": latest.get(name)}
        for name, entry in sorted(folder.registry().items())
    }
