"""Global bundles to the sites: ``genba server publish`` and ``rollback``, and the end of a run.

A delivery is a Flower run of the kit's FAB with no training round: the ServerApp sends the
signed manifest and the files the sites do not hold yet (what differs from the export the
model's lineage started from, which IT shipped to every site), and each site answers with a
receipt. A rollback is a new version whose files are the chosen version's, byte for byte, and
whose signed lineage marks it a rollback of that version; sites accept it although its model
is older than theirs because the mark says so.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from genba import keys
from genba.bundle import verify_directory
from genba.errors import UsageError
from genba.federation import FAB_DIR
from server.provision import ITFolder
from server.registry import Registry, VersionRow
from server.runs import flwr_run, new_run_dir, node_names, require_superlink
from server.superlink import ServerFolder

ACTIVE = "active"


@dataclass(frozen=True)
class PublishConfig:
    kit: Path
    version: int
    #: The model's name; needed only when the registry holds several.
    model: str | None = None
    rollback: bool = False
    #: How long to wait for the sites to be connected before sending.
    wait_s: float = 60.0
    run_timeout_s: float = 900.0
    fab_dir: Path = FAB_DIR


def publish(config: PublishConfig) -> dict[str, Any]:
    """Send a registered version (or a rollback to it) to the sites; what each site answered."""
    folder = ITFolder(Path(config.kit)).require()
    server = ServerFolder(folder)
    require_superlink(server)
    with Registry(server.root) as registry:
        name = config.model or registry.only_name()
        row = registry.version(name, config.version)
        if row is None:
            raise UsageError(f"the registry holds no {name} v{config.version}: see 'genba server models'")
        if config.rollback:
            row = write_rollback(folder, registry, row)
        action = "rollback" if config.rollback else "publish"
        outcomes = deliver(
            folder, registry, row, action, wait_s=config.wait_s, fab_dir=config.fab_dir,
            timeout_s=config.run_timeout_s,
        )  # fmt: skip
    return {"model": name, "version": row.version, "action": action, "sites": outcomes}


def write_rollback(folder: ITFolder, registry: Registry, target: VersionRow) -> VersionRow:
    """A new version with ``target``'s files and a signed lineage that marks a rollback to it."""
    from export.head_swap import reissue

    bundle = verify_directory(target.path, [it_public_key(folder)])
    version = registry.next_version(target.name)
    out = registry.bundle_path(target.name, version)
    reissue(
        bundle,
        out,
        keys.load_private_key(folder.signing_key),
        source={"kind": "rollback", "to_version": target.version},
        version=version,
        lineage_fields={"rollback": True},
    )
    return registry.add_written_bundle(target.name, version, kind="rollback", parent_version=target.version)


def deliver(
    folder: ITFolder,
    registry: Registry,
    row: VersionRow,
    action: str,
    *,
    wait_s: float = 60.0,
    fab_dir: Path = FAB_DIR,
    timeout_s: float = 900.0,
) -> dict[str, dict[str, Any]]:
    """One delivery run; each active site's receipt (``not-reached`` where none came back)."""
    server = ServerFolder(folder)
    bundle = verify_directory(row.path, [it_public_key(folder)])
    root = verify_directory(registry.root_version(row.name, row.version).path, None)
    held = {entry.sha256 for entry in root.manifest.files.values()}
    send = sorted(name for name, entry in bundle.manifest.files.items() if entry.sha256 not in held)
    active = sorted(name for name, entry in folder.registry().items() if entry["state"] == ACTIVE)
    run_dir = new_run_dir(server.root / "runs")
    plan = {"bundle": str(bundle.path), "send": send, "expected_sites": len(active)}
    (run_dir / "delivery.json").write_text(json.dumps(plan, indent=2) + "\n", encoding="utf-8")
    run_config = {"action": "publish", "delivery": str(run_dir / "delivery.json"), "wait-s": float(wait_s)}
    results = flwr_run(server, fab_dir, run_dir, run_config, timeout_s)
    names = node_names(server)
    receipts = {names.get(node, f"node {node}"): receipt for node, receipt in results["receipts"].items()}
    outcomes = {site: receipts.get(site, {"outcome": "not-reached"}) for site in active}
    outcomes.update({site: r for site, r in receipts.items() if site not in outcomes})
    registry.record_deliveries(row.name, row.version, action, {s: r["outcome"] for s, r in outcomes.items()})
    return {site: {**receipt, "files_sent": send} for site, receipt in outcomes.items()}


def list_models(kit: Path) -> dict[str, Any]:
    """``genba server models``: every version with its lineage, and the runs with their rounds."""
    folder = ITFolder(Path(kit)).require()
    with Registry(ServerFolder(folder).root) as registry:
        return {
            "versions": [
                {**row.to_json(), "deliveries": registry.deliveries(row.name, row.version)}
                for row in registry.versions()
            ],
            "runs": registry.runs(),
        }


def it_public_key(folder: ITFolder) -> Any:
    return keys.load_public_key(folder.signing_key.with_name("it-sign.pem.pub"))


def manifest_sha256(bundle: Path) -> str:
    import hashlib

    return hashlib.sha256((bundle / "manifest.json").read_bytes()).hexdigest()
