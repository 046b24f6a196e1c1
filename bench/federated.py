"""Benchmark: what secure aggregation costs a federated round, and what a site uploads.

Three provisioned sites run real SuperNodes against a real SuperLink (TLS, node auth) on loopback.
The run is made twice: once counted, each site through a byte-counting proxy (a Python relay: it
adds a hop and CPU to every request, so that run's rounds are slower and are reported apart,
``counted_run``), then timed, the sites dialling the server's front as a plant's would. The update
is the size of a ``last-k`` update with k = 1: the top transformer block of the packaged
all-MiniLM-L6-v2 plus a 384 x 8 head, sent as one float32 vector (``--layout tensors``: one array
per tensor, 22 arrays: Flower moves each array as its own objects, one HTTP request per object per
hop, so the layout changes the round time). One Flower run alternates rounds: odd rounds under
SecAgg+, even rounds plain FedAvg, same sites (the SuperNodes are joined for a benchmark: they
answer with the global tensors moved a little, each site its own way and in float32, and may send
unmasked updates; ``genba agent join`` never allows that). Distinct updates matter: Flower's object
store de-duplicates identical objects.

* ``secagg_round_ratio``: median fit-round wall time under SecAgg+ over plain FedAvg, timed run;
  ``counted_run`` has the counted run's round times and ratio.
* ``upload_ratio``: bytes a site sends in a SecAgg+ round (its egress ledger: public keys, key
  shares, the masked update, unmask shares) over the fp32 size of the trainable tensors.
* ``fixed_overhead_bytes``: a site's per-round SecAgg+ bytes beyond its masked update (keys and
  shares: independent of the tensors' size, growing with the number of sites).
* ``masked_update_over_fp32``: the masked update's payload over the fp32 tensors (Flower's SecAgg+
  sends the masked integers as int64; Genba's sites send them as uint32, :mod:`genba.masking`).
* ``wire_over_ledger``: bytes the proxies counted from SuperNode to SuperLink (TLS, HTTP,
  polling) over the ledger's payload bytes.
* ``control_bytes_per_round``: the site's control traffic in a SecAgg+ round as the product reports
  it (``genba agent status``: what its SuperNode counted on the wire for the round, less the
  ledger's payload for it: registration, heartbeats, polling, HTTP and TLS framing), median over
  sites and rounds; ``control_bytes_per_plain_round`` likewise for plain rounds.
* ``unexplained_over_ledger``: bytes the proxies counted that neither the ledger nor the sites'
  control report account for, over the ledger's payload bytes.
* ``before``: the headline figures of an earlier run of this benchmark (``--before FILE``), so one
  document shows both.
* ``sim_50_sites_round_s``: seconds per round with 50 simulated sites (``--sim-sites``), Flower's
  simulation engine running the same ClientApp code in one process, loopback only.

    .venv/bin/python bench/federated.py [--pairs 3] [--out bench-out/federated]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import shutil
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from genba import env  # noqa: F401  (telemetry off before Flower loads)

SITES = ("bench-a", "bench-b", "bench-c")
HEAD_LABELS = 8
TIMING = ("plain_round_s_median", "secagg_round_s_median", "secagg_round_ratio", "rounds")
HEADLINE = ("plain_round_s_median", "secagg_round_s_median", "secagg_round_ratio", "upload_ratio",
            "wire_over_ledger", "control_bytes_per_round", "sim_50_sites_round_s")  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pairs", type=int, default=3, help="SecAgg+ and plain rounds, this many each")
    parser.add_argument("--out", type=Path, default=Path("bench-out/federated"))
    parser.add_argument("--sim-sites", type=int, default=50, help="simulated sites (0: skip the simulation)")
    parser.add_argument("--sim-rounds", type=int, default=2)
    parser.add_argument("--skip-secagg", action="store_true", help="only the simulation")
    parser.add_argument("--bundle", type=Path, help="a signed bundle (default: export the default one)")
    parser.add_argument("--trust", type=Path, help="public key that signed --bundle")
    parser.add_argument("--layout", choices=("flat", "tensors"), default="flat",
                        help="the update as one float32 vector or one array per tensor")  # fmt: skip
    parser.add_argument("--before", type=Path, help="an earlier run's JSON: its headline figures as 'before'")
    args = parser.parse_args()
    shutil.rmtree(args.out, ignore_errors=True)
    args.out.mkdir(parents=True)
    figures: dict[str, Any] = {}
    if not args.skip_secagg:
        tensors = _last_block_tensors(args.out, args.layout)
        counted = _secagg_vs_plain(args.out / "counted", tensors, args.pairs, counted=True)
        timed = _secagg_vs_plain(args.out / "timed", tensors, args.pairs, counted=False)
        figures.update(counted | timed)
        figures["counted_run"] = {key: counted[key] for key in TIMING}
        figures["update_layout"] = args.layout
    if args.sim_sites:
        figures.update(_simulation(args))
    if args.before is not None:
        earlier = json.loads(args.before.read_text(encoding="utf-8"))
        figures["before"] = {key: earlier[key] for key in HEADLINE if key in earlier}
    print(json.dumps(figures, indent=2, sort_keys=True))
    return 0


def _simulation(args: argparse.Namespace) -> dict[str, Any]:
    """``genba simulate`` with the default MiniLM bundle: the real model and labelled site stores."""
    from genba.demo.simulation import SimulationConfig, simulate

    bundle, trust = _default_bundle(args)
    result = simulate(
        SimulationConfig(bundle=bundle, trust=trust, out=args.out / "sim", sites=args.sim_sites,
                         rounds=args.sim_rounds, labels_per_class=3)
    )  # fmt: skip
    key = f"sim_{args.sim_sites}_sites_round_s"
    return {
        key: result["seconds_per_round"],
        "sim_setup_s": result["setup_s"],
        "sim_rounds_aggregated": result["rounds_aggregated"],
        "sim_accuracy_by_round": result["accuracy_by_round"],
    }


def _default_bundle(args: argparse.Namespace) -> tuple[Path, Path]:
    """``--bundle``/``--trust``, or the default bundle exported once into bench-out/bundle."""
    if args.bundle is not None:
        if args.trust is None:
            sys.exit("--bundle needs --trust PUBKEY (the key that signed it)")
        return args.bundle, args.trust
    from genba.demo.sites import signed_default_bundle

    return signed_default_bundle(args.out.parent / "default-bundle")


def _last_block_tensors(out: Path, layout: str = "flat") -> int:
    """The top MiniLM block's parameters and a head, as the run's initial tensors; their fp32 bytes.

    ``flat``: one float32 vector (how a site would ship a last-k update); ``tensors``: one array per
    tensor (22). Flower moves every array as its own objects, each one HTTP request per hop."""
    from edge_agent.training.source import load_sentence_model, transformer_blocks
    from export.default_model import pretrained_model_dir

    path = pretrained_model_dir()
    block = transformer_blocks(load_sentence_model(path), path)[-1]
    arrays = {
        f"block.{name}": t.detach().numpy().astype(np.float32) for name, t in block.state_dict().items()
    }
    rng = np.random.default_rng(0)
    arrays["head.weight"] = rng.normal(0, 0.05, size=(HEAD_LABELS, 384)).astype(np.float32)
    arrays["head.bias"] = np.zeros(HEAD_LABELS, dtype=np.float32)
    if layout == "flat":
        arrays = {"update": np.concatenate([a.ravel() for a in arrays.values()])}
    np.savez(out / "initial.npz", **arrays)
    return int(sum(a.size for a in arrays.values()) * 4)


def _secagg_vs_plain(out: Path, fp32_bytes: int, pairs: int, counted: bool) -> dict[str, Any]:
    """One Flower run of ``pairs`` SecAgg+ and plain rounds: its round times; ``counted``: each site
    dials through a byte-counting proxy, and the byte figures come with the times."""
    from edge_agent.federation.supernode import JoinConfig, SuperNode
    from edge_agent.federation.traffic_report import control_traffic
    from edge_agent.site_init import enrol_site, init_site
    from edge_agent.store import SiteStore
    from genba.federation import FAB_DIR
    from genba.tools import free_loopback_port
    from server.provision import ProvisionConfig, add_site, provision
    from server.runs import flwr_run, new_run_dir
    from server.superlink import ServerConfig, SuperLink

    proxy_module = _load(Path(__file__).parent.parent / "tests" / "server" / "byte_proxy.py")
    out.mkdir(parents=True)
    folder = provision(ProvisionConfig(out=out / "it", server_host="127.0.0.1", port=free_loopback_port()))
    for name in SITES:  # each site makes its own keys and request; IT answers with a kit
        enrol_site(out / name, name, out / f"{name}-request.json")
        add_site(folder.root, out / f"{name}-request.json")
    sites = [init_site(out / name, site_name=None, kit=folder.kits / name) for name in SITES]
    with SuperLink(ServerConfig(kit=folder.root)) as link:
        link.sync_sites()
        proxies = [proxy_module.ByteCountingProxy(link.port).__enter__() for _ in sites] if counted else []
        dials = [proxy.port for proxy in proxies] if counted else [link.port] * len(sites)
        nodes = [
            SuperNode(JoinConfig(data=site.root, superlink=f"127.0.0.1:{port}", benchmark=True)).start()
            for site, port in zip(sites, dials, strict=True)
        ]
        try:
            run_dir = new_run_dir(link.server.root / "runs")
            results = flwr_run(
                link.server,
                FAB_DIR,
                run_dir,
                {
                    "action": "bench",
                    "num-server-rounds": 2 * pairs,
                    "min-sites": 3,
                    "secagg-timeout-s": 600.0,
                    "initial-head": str(out.parent / "initial.npz"),
                    "expected-sites": len(sites),
                    "wait-s": 60.0,
                },
                timeout_s=3600.0,
            )
        finally:
            for node in nodes:
                node.stop()
            for proxy in proxies:
                proxy.__exit__()
    if not counted:
        return _timing_figures(results)
    ledgers, reports = [], []
    for site in sites:
        with SiteStore.read_only(site.store_file) as store:
            ledgers.append([entry.fields for entry in store.egress(limit=100_000)])
            reports.append(control_traffic(site.root, store.egress_payload, last=10_000) or {"rounds": []})
    figures = _timing_figures(results) | _byte_figures(
        results, ledgers, [p.counts.upstream for p in proxies], fp32_bytes
    )
    return figures | _control_figures(results, reports, ledgers, [p.counts.upstream for p in proxies])


def _control_figures(
    results: dict[str, Any],
    reports: list[dict[str, Any]],
    ledgers: list[list[dict[str, Any]]],
    upstream: list[int],
) -> dict[str, Any]:
    """Control traffic per round as each site's own status reports it, and what no report explains."""
    kinds = {str(r): t["kind"] for r, t in results["timings"].items()}
    by_kind: dict[str, list[int]] = {"secagg": [], "plain": []}
    for report in reports:
        for entry in report["rounds"]:
            if entry["round"] in kinds:
                by_kind[kinds[entry["round"]]].append(entry["control"])
    ledgered = sum(e["payload_bytes"] for ledger in ledgers for e in ledger)
    control = sum(e["control"] for report in reports for e in report["rounds"])
    return {
        "control_bytes_per_round": int(statistics.median(by_kind["secagg"])) if by_kind["secagg"] else None,
        "control_bytes_per_plain_round": int(statistics.median(by_kind["plain"]))
        if by_kind["plain"]
        else None,
        "unexplained_over_ledger": round((sum(upstream) - ledgered - control) / ledgered, 5),
    }


def _timing_figures(results: dict[str, Any]) -> dict[str, Any]:
    timings = results["timings"].values()
    secagg_s = [t["seconds"] for t in timings if t["kind"] == "secagg"]
    plain_s = [t["seconds"] for t in timings if t["kind"] == "plain"]
    return {
        "secagg_round_s_median": round(statistics.median(secagg_s), 2),
        "plain_round_s_median": round(statistics.median(plain_s), 2),
        "secagg_round_ratio": round(statistics.median(secagg_s) / statistics.median(plain_s), 3),
        "rounds": {str(r): t for r, t in sorted(results["timings"].items(), key=lambda item: int(item[0]))},
    }


def _byte_figures(
    results: dict[str, Any], ledgers: list[list[dict[str, Any]]], upstream: list[int], fp32_bytes: int
) -> dict[str, Any]:
    secagg_rounds = {int(r) for r, t in results["timings"].items() if t["kind"] == "secagg"}
    per_round, masked, plain = [], [], []
    for ledger in ledgers:
        for round_ in secagg_rounds:
            entries = [e for e in ledger if e["round"] == round_]
            per_round.append(sum(e["payload_bytes"] for e in entries))
            masked += [e["payload_bytes"] for e in entries if e["kind"] == "masked_update"]
        plain += [e["payload_bytes"] for e in ledger if e["kind"] == "unmasked_update"]
    round_bytes = statistics.median(per_round)
    masked_bytes = statistics.median(masked)
    ledger_total = sum(e["payload_bytes"] for ledger in ledgers for e in ledger)
    return {
        "sites": len(ledgers),
        "trainable_fp32_bytes": fp32_bytes,
        "upload_bytes_per_round": int(round_bytes),
        "upload_ratio": round(round_bytes / fp32_bytes, 3),
        "fixed_overhead_bytes": int(round_bytes - masked_bytes),
        "masked_update_over_fp32": round(masked_bytes / fp32_bytes, 3),
        "plain_update_over_fp32": round(statistics.median(plain) / fp32_bytes, 3) if plain else None,
        "wire_over_ledger": round(sum(upstream) / ledger_total, 3),
    }


def _load(path: Path) -> Any:
    spec = importlib.util.spec_from_file_location("genba_bench_byte_proxy", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


if __name__ == "__main__":
    started = time.perf_counter()
    code = main()
    print(f"# {time.perf_counter() - started:.0f} s", file=sys.stderr)
    sys.exit(code)
