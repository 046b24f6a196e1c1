"""The demo's acts, each through the kit's own public pieces: provisioning, export, the agents' API,
the federation, the gates. ``genba.demo.story`` plays them in order and times them."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from genba.demo.operators import label_audit_sample, label_from_queue, serve

if TYPE_CHECKING:
    from edge_agent.service.schemas import StatusResponse

#: One thread per agent: three sites, a SuperLink and the demo share this machine's cores.
SITE_SETTINGS: dict[str, dict[str, Any]] = {
    "runtime": {"intra_op_threads": 1},
    "drift": {"window_items": 100},
    # The gates judge on the audit sample: a demo's few hundred reports need a large one.
    "store": {"audit_share": 0.25},
}
ROLLOUT_CHUNK = 40


@dataclass
class Site:
    name: str
    folder: Any  # edge_agent.site.SiteFolder
    profile: str
    seed: int

    def client(self) -> Any:
        from edge_agent.service.client import AgentClient

        return AgentClient.for_site(self.folder.root, "supervisor", timeout=120.0)


@dataclass(frozen=True)
class SiteData:
    stream: list[Any]
    rollout: list[Any]
    eval: list[Any]

    @property
    def truth(self) -> dict[str, str]:
        return {report.text: report.true_label for report in [*self.stream, *self.rollout]}


def provision(work: Path, names: list[str]) -> Any:
    """IT provisions its folder; each site makes its own keys and request, and IT answers with a kit.

    The sites' folders are left awaiting their kits (``start_sites`` finishes them): IT never
    holds a site's private key, here as in a plant.
    """
    from edge_agent.site_init import enrol_site
    from genba.tools import free_loopback_port
    from server.provision import ProvisionConfig, add_site
    from server.provision import provision as make_it_folder

    it = make_it_folder(ProvisionConfig(out=work / "it", server_host="127.0.0.1", port=free_loopback_port()))
    requests = work / "requests"
    requests.mkdir(parents=True, exist_ok=True)
    for name in names:
        request = requests / f"{name}.json"
        enrolled = enrol_site(work / "sites" / name, name, request)
        added = add_site(it.root, request)
        if added["fingerprint"] != enrolled["fingerprint"]:  # what IT and the site confirm by phone
            raise RuntimeError(f"{name}'s request changed on its way to IT")
    return it


def export_bundle(work: Path, it: Any, seed: int, say: Any) -> Path:
    from export.default_model import (
        DEFAULT_MODEL_NAME,
        export_default_bundle,
        train_default_head,
        write_default_data,
    )

    data = write_default_data(work / "data", seed=seed)
    head = train_default_head(seed=seed)
    bundle = work / "bundles" / f"{DEFAULT_MODEL_NAME}-v1"
    export_default_bundle(bundle, data, head, signing_key=it.signing_key, threads=2,
                          progress=lambda line: say(f"    {line}"))  # fmt: skip
    return bundle


def start_sites(
    work: Path, it: Any, names: list[str], bundle: Path, config: Any, fleet: Any
) -> dict[str, Site]:
    import tomllib

    import tomli_w

    from edge_agent.site_init import init_site
    from genba.demo.story import PROFILES

    sites = {}
    for index, name in enumerate(names):
        folder = init_site(work / "sites" / name, site_name=None, kit=it.kits / name)
        document = tomllib.loads(folder.config_file.read_text(encoding="utf-8"))
        for section, values in {**SITE_SETTINGS, "gates": dict(config.gates)}.items():
            document.setdefault(section, {}).update(values)
        folder.config_file.write_text(tomli_w.dumps(document), encoding="utf-8")
        fleet.agent(folder)
        site = Site(name, folder, PROFILES[index % len(PROFILES)], config.seed + index // len(PROFILES))
        with site.client() as client:
            client.install(bundle)
        sites[name] = site
    return sites


def site_data(site: Site, config: Any) -> SiteData:
    from export.datasets.shopfloor import site_split

    split = site_split(
        site.profile,
        seed=site.seed,
        n_pool=config.stream_items + config.rollout_items,
        n_eval=config.eval_items,
    )
    pool = list(split.train)
    return SiteData(pool[: config.stream_items], pool[config.stream_items :], list(split.eval))


def serve_streams(sites: dict[str, Site], config: Any) -> dict[str, SiteData]:
    from tqdm import tqdm

    data = {name: site_data(site, config) for name, site in sites.items()}
    total = sum(len(d.stream) for d in data.values())
    with tqdm(total=total, desc="  reports served", unit=" reports", leave=False) as bar:
        for name, site in sites.items():
            with site.client() as client:
                serve(client, data[name].stream, bar.update)
    return data


def label(sites: dict[str, Site], data: dict[str, SiteData], config: Any, results: dict[str, Any]) -> None:
    for name, site in sites.items():
        with site.client() as client:
            production = client.status().production
            labels = list(production.labels) if production is not None else []
            given = label_from_queue(client, data[name].truth, labels, config.labels_per_class, site.seed)
        results[name]["labels"] = given


def train_locally(sites: dict[str, Site], results: dict[str, Any]) -> None:
    for name, site in sites.items():
        with site.client() as client:
            client.train("head")
            job = _wait_for_training(client)
        if job.get("state") != "succeeded":
            results[name]["local_only_error"] = job.get("message") or "local training failed"
            continue
        training = (job.get("result") or {}).get("training") or {}
        results[name]["local_bundle"] = training.get("bundle")


def _wait_for_training(client: Any, timeout: float = 600.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.training()
        if job is not None and job.state != "running":
            return dict(job.model_dump(mode="json"))
        time.sleep(0.5)
    return {"state": "failed", "message": f"local training took longer than {timeout:.0f} s"}


def federate(it: Any, bundle: Path, sites: dict[str, Site], config: Any, fleet: Any) -> dict[str, Any]:
    from server.federated_run import TrainConfig, train_federated
    from server.privacy import PrivacyConfig

    link = fleet.superlink(it.root)
    link.sync_sites()
    for site in sites.values():
        fleet.supernode(site.folder)
    privacy = (
        PrivacyConfig(noise_multiplier=config.dp_noise, clipping_norm=1.0) if config.dp_noise > 0 else None
    )
    train = TrainConfig(
        kit=it.root, bundle=bundle, rounds=config.rounds, min_sites=len(sites),
        secagg_timeout_s=180.0, delivery_wait_s=120.0, privacy=privacy,
    )  # fmt: skip
    return _with_round_progress(lambda: train_federated(train), next(iter(sites.values())), config.rounds)


def _with_round_progress(job: Any, site: Site, rounds: int) -> dict[str, Any]:
    """Run ``job`` here (so Ctrl-C reaches it) while a daemon thread moves a bar by the rounds one
    site has sent a masked update for, read from its egress ledger."""
    import threading

    from tqdm import tqdm

    from edge_agent.store import SiteStore

    bar = tqdm(total=rounds, desc="  SecAgg+ rounds", leave=False)
    stop = threading.Event()

    def watch() -> None:
        while not stop.wait(1.0):
            with SiteStore.read_only(site.folder.store_file) as store:
                sent, _ = store.egress_count("masked_update")
            bar.update(max(0, min(sent, rounds) - bar.n))

    watcher = threading.Thread(target=watch, name="genba-demo-rounds", daemon=True)
    watcher.start()
    try:
        return dict(job())
    finally:
        stop.set()
        watcher.join(timeout=5)
        bar.close()


def roll_out(
    sites: dict[str, Site], data: dict[str, SiteData], federated: dict[str, Any], config: Any,
    results: dict[str, Any],
) -> None:  # fmt: skip
    """Serve more reports while the gates judge the global bundle; stop once it is in production."""
    global_bundle = federated.get("global_bundle") or {}
    version = global_bundle.get("version")
    for name, site in sites.items():
        history: list[dict[str, Any]] = []
        reports = data[name].rollout
        with site.client() as client:
            served = 0
            while served < len(reports):
                serve(client, reports[served : served + ROLLOUT_CHUNK])
                served = min(served + ROLLOUT_CHUNK, len(reports))
                label_audit_sample(client, data[name].truth, site.seed + served)
                time.sleep(1.0)  # the gatekeeper evaluates between batches
                where = _where(client.status(), version)
                if not history or history[-1]["stage"] != where:
                    history.append({"after_items": served, "stage": where})
                if where == "production" or version is None:
                    break
            results[name]["rollout"] = {"version": version, "stages": history, "served": served,
                                        "gates": client.gates().model_dump(mode="json")}  # fmt: skip


def _where(status: StatusResponse, version: int | None) -> str:
    """Where the global bundle is at this site: production, a candidate stage, or not there."""
    if version is None:
        return "none"
    if status.production is not None and status.production.version == version:
        return "production"
    candidate = status.candidate
    return str(candidate.stage) if candidate is not None and candidate.version == version else "not installed"


def evaluate(
    sites: dict[str, Site],
    data: dict[str, SiteData],
    bundle: Path,
    federated: dict[str, Any],
    results: dict[str, Any],
) -> None:
    from tqdm import tqdm

    global_bundle = (federated.get("global_bundle") or {}).get("path")
    jobs = [
        (name, kind, path)
        for name in sites
        for kind, path in (
            ("untuned", bundle),
            ("local_only", results[name].get("local_bundle")),
            ("federated", global_bundle),
        )  # fmt: skip
        if path
    ]
    for name, kind, path in tqdm(jobs, desc="  evaluating", leave=False):
        results[name][kind] = accuracy(Path(path), data[name].eval)


def accuracy(bundle: Path, reports: list[Any]) -> float:
    from genba.bundle import verify_directory
    from genba.runtime.config import RuntimeConfig
    from genba.runtime.model import BundleModel

    model = BundleModel(verify_directory(bundle, None), RuntimeConfig(provider="cpu", intra_op_threads=2))
    correct = 0
    for start in range(0, len(reports), 64):
        chunk = reports[start : start + 64]
        answers = model.predict([report.text for report in chunk])
        correct += sum(a.label == r.true_label for a, r in zip(answers, chunk, strict=True))
    return round(correct / len(reports), 4)


def summarize(
    sites: dict[str, Site], bundle: Path, federated: dict[str, Any], results: dict[str, Any],
    steps: dict[str, float], config: Any,
) -> dict[str, Any]:  # fmt: skip
    from edge_agent.store import SiteStore

    summary_sites = {}
    for name, site in sites.items():
        with SiteStore.read_only(site.folder.store_file) as store:
            bytes_out = store.egress_totals()
            kpis = store.kpi_summary()
        with site.client() as client:
            production = client.status().production
        figures = results[name]
        summary_sites[name] = {
            "untuned": figures.get("untuned"),
            "local_only": figures.get("local_only"),
            "federated": figures.get("federated"),
            "bytes_out": bytes_out,
            "labels": figures.get("labels"),
            "production_version": production.version if production is not None else None,
            "provider": production.provider if production is not None else None,
            "latency_ms_p50": kpis.get("latency_ms_p50"),
            "latency_ms_p95": kpis.get("latency_ms_p95"),
            "rollout": figures.get("rollout"),
            "local_only_error": figures.get("local_only_error"),
            "folder": str(site.folder.root),
        }
    global_bundle = federated.get("global_bundle") or {}
    return {
        "sites": summary_sites,
        "steps_s": steps,
        "bundles": {
            "exported": {"path": str(bundle), "bytes": _size(bundle)},
            "federated": {
                "path": global_bundle.get("path"),
                "version": global_bundle.get("version"),
                "bytes": _size(Path(global_bundle["path"])) if global_bundle else None,
            },
        },  # fmt: skip
        "federation": {
            "rounds": config.rounds,
            "rounds_aggregated": federated.get("rounds_aggregated"),
            "accuracy_by_round": federated.get("accuracy_by_round"),
            "privacy": federated.get("privacy"),
        },
        "config": {
            "sites": config.sites,
            "rounds": config.rounds,
            "stream_items": config.stream_items,
            "labels_per_class": config.labels_per_class,
            "eval_items": config.eval_items,
            "seed": config.seed,
        },  # fmt: skip
    }


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in Path(path).rglob("*") if p.is_file())


def open_gui(site: Site, say: Any) -> None:
    from genba.errors import UsageError

    try:
        from gui.cli import require_display

        require_display()
    except UsageError as error:
        say(f"(no operator app: {error})")
        return
    from gui.app import run
    from gui.config import GuiConfig

    say(f"opening the operator app for {site.name}; close it to end the demo")
    run(GuiConfig(data=site.folder.root))
