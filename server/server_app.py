"""The ServerApp: FedAvg of the sites' heads under SecAgg+, with per-site evaluation and a privacy floor.

Flower 1.42's SecAgg+ runs only on the legacy path (``LegacyContext`` + ``DefaultWorkflow`` with
``SecAggPlusWorkflow``). The server sees the sum of the sites' masked, example-weighted updates,
never one site's. Every round needs at least ``min-sites`` sites (never fewer than
:data:`PRIVACY_FLOOR`): the strategy waits for that many. Every sampled site
shares its secrets with all the others, and half of them (at least 2) are needed to unmask
one, so a site that leaves mid-round costs the round nothing. Each round's evaluation is
kept per site (by node id; ``genba server train`` names the sites) with only the metrics
:mod:`genba.protocol` lets a site send. The run writes ``results.json`` and the final head
(``head.npz``) into ``results``. With ``dp-noise`` the run is differentially private with the noise
added by the sites before masking (:mod:`server.privacy`); the server adds none and only announces
the settings. ``action = "bench-train"`` is a training run answered by sites joined for a benchmark
(deterministic updates, no evaluation): what the DP tests measure the noise against.

With ``action = "publish"`` the app trains nothing: it sends one signed bundle to every
connected site (``genba server publish``, ``rollback``, and the end of ``genba server train``)
and records each site's receipt. ``action = "bench"`` is ``bench/federated.py``'s side-by-side
of SecAgg+ and plain rounds. The strategy and workflow pieces are in :mod:`server.strategy`.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
from flwr.common import ndarrays_to_parameters, parameters_to_ndarrays
from flwr.server import LegacyContext, ServerApp, ServerConfig
from flwr.server.workflow import DefaultWorkflow
from flwr.server.workflow.constant import MAIN_CONFIGS_RECORD, MAIN_PARAMS_RECORD, Key

from genba.protocol import MIN_SITES_PER_ROUND as PRIVACY_FLOOR
from server.strategy import RecordingFedAvg, RecordingGrid, SecAggPlus, SiteLevelDP, checkpoint_each_round

app = ServerApp()


def _weighted_accuracy(metrics: list[tuple[int, dict[str, Any]]]) -> dict[str, float]:
    total = sum(count for count, _ in metrics)
    if not total:
        return {}
    return {"accuracy": sum(count * float(m.get("accuracy", 0.0)) for count, m in metrics) / total}


@app.main()
def main(grid: Any, context: Any) -> None:
    from server.prompt_grid import PromptGrid

    grid = PromptGrid(grid)  # replies collected as they arrive, not every 3 s
    config = context.run_config
    action = str(config.get("action", "train"))
    if action == "publish":
        publish(grid, config)
    elif action == "bench":
        bench(grid, config, context)
    else:
        train(grid, config, context, bench_updates=action == "bench-train")


def train(grid: Any, config: Any, context: Any, *, bench_updates: bool = False) -> None:
    """A training run; ``bench_updates`` (action ``bench-train``): the same run, but sites joined for a
    benchmark answer with a deterministic update and nobody evaluates (others refuse such rounds)."""
    sites = max(PRIVACY_FLOOR, int(config["min-sites"]))
    rounds = int(config["num-server-rounds"])
    results = Path(str(config["results"]))
    with np.load(str(config["initial-head"])) as initial:
        head = [initial["weight"], initial["bias"]]
    # Sites serving another backbone refuse the round: a head fits only the backbone it was trained on.
    pinned = {"backbone-sha256": str(config["backbone-sha256"])}
    noise = float(config.get("dp-noise", 0.0))
    privacy = _privacy_settings(config) if noise > 0 else None
    recording = RecordingFedAvg(
        floor=sites,
        fraction_fit=1.0,
        fraction_evaluate=0.0 if bench_updates else 1.0,
        min_fit_clients=sites,
        min_evaluate_clients=sites,
        min_available_clients=sites,
        initial_parameters=ndarrays_to_parameters(head),
        evaluate_metrics_aggregation_fn=_weighted_accuracy,
        on_fit_config_fn=lambda round_: {
            **pinned,
            **(_privacy_fit_config(privacy, round_) if privacy else {}),
            **({"bench": True} if bench_updates else {}),
        },
        on_evaluate_config_fn=lambda round_: dict(pinned),
    )
    strategy: Any = recording
    if privacy is not None:  # the sites clip and add the noise; the server only tells them the settings
        strategy = SiteLevelDP(
            recording,
            noise_multiplier=privacy["noise_multiplier"],
            clipping_norm=privacy["clipping_norm"],
            num_sampled_clients=sites,
        )
    checkpoint_each_round(strategy, results / "checkpoints")
    # Evaluation waits at most this long for a site (one that left mid-run never answers).
    round_timeout = 2 * float(config["secagg-timeout-s"])
    legacy = LegacyContext(
        context=context,
        config=ServerConfig(num_rounds=rounds, round_timeout=round_timeout),
        strategy=strategy,
    )
    # Every sampled site shares its secrets with every other (a site that leaves mid-round can
    # always be unmasked by the rest); half of them are needed to reconstruct one, never fewer than 2.
    secagg = SecAggPlus(
        num_shares=1.0,
        reconstruction_threshold=0.5,
        timeout=float(config["secagg-timeout-s"]),
        **_privacy_secagg(privacy),
    )
    started = time.time()
    # Give every registered site the chance to be in round 1 (a run starts with whoever is there).
    _wait_for_nodes(grid, int(config.get("expected-sites", 0)), float(config["wait-s"]))
    if bool(config.get("keep-received", False)):
        grid = RecordingGrid(grid, results / "received.jsonl")
    DefaultWorkflow(fit_workflow=secagg)(grid, legacy)
    final = parameters_to_ndarrays(_final_parameters(legacy))
    aggregated = sorted(r for r, fit in recording.fits.items() if fit["aggregated"])
    results.mkdir(parents=True, exist_ok=True)
    np.savez(results / "head.npz", weight=final[0], bias=final[1])
    document = {
        "rounds": rounds,
        "min_sites": sites,
        "seconds": round(time.time() - started, 1),
        "loss_by_round": dict(legacy.history.losses_distributed),
        "accuracy_by_round": {r: v for r, v in legacy.history.metrics_distributed.get("accuracy", [])},
        "per_site_by_round": recording.evaluations,
        "fit_by_round": recording.rounds_report(),
        "rounds_aggregated": aggregated,
        "privacy": _privacy_spent(privacy, len(aggregated)),
    }
    _write_results(results, document)


def _privacy_settings(config: Any) -> dict[str, float]:
    return {
        "noise_multiplier": float(config["dp-noise"]),
        "clipping_norm": float(config["dp-clip"]),
        "delta": float(config["dp-delta"]),
    }


def _privacy_secagg(privacy: dict[str, float] | None) -> dict[str, Any]:
    """Under DP every site weighs 1, so SecAgg+'s ``max_weight`` is 1: values are quantised as they
    are, on a grid of 2**22 steps over +/-8 (the default ``max_weight`` of 1000 would make each step
    1000 times coarser), and the range the sites check their noised values against is that of the
    values themselves."""
    return {"max_weight": 1.0} if privacy is not None else {}


def _privacy_fit_config(privacy: dict[str, float], server_round: int) -> dict[str, Any]:
    """What a site is told with each DP round: the settings and the run's epsilon after this round.

    A site computes its noise share from these itself and checks them (against its own privacy
    floor, SecAgg+'s range and its lifetime budget) before it adds anything to what it sends."""
    from genba.privacy import epsilon

    spent = epsilon(privacy["noise_multiplier"], server_round, privacy["delta"])
    return {
        "dp-noise": privacy["noise_multiplier"],
        "dp-clip": privacy["clipping_norm"],
        "dp-delta": privacy["delta"],
        "dp-epsilon": spent,
    }


def _privacy_spent(privacy: dict[str, float] | None, rounds: int) -> dict[str, Any] | None:
    from genba.privacy import epsilon

    if privacy is None:
        return None
    return {
        **privacy,
        "rounds": rounds,
        "epsilon": epsilon(privacy["noise_multiplier"], rounds, privacy["delta"]),
    }


def bench(grid: Any, config: Any, context: Any) -> None:
    """``bench/federated.py``: the same sites and update, odd rounds under SecAgg+, even rounds plain.

    Plain FedAvg rounds need sites that allow unmasked replies (only a SuperNode started for a
    benchmark does); each round's fit phase is timed. No evaluation.
    """
    from flwr.server.workflow.default_workflows import default_fit_workflow

    sites = max(PRIVACY_FLOOR, int(config["min-sites"]))
    rounds = int(config["num-server-rounds"])
    with np.load(str(config["initial-head"])) as initial:
        tensors = [initial[name] for name in sorted(initial.files)]
    recording = RecordingFedAvg(
        floor=sites, fraction_fit=1.0, fraction_evaluate=0.0, min_fit_clients=sites,
        min_available_clients=sites, initial_parameters=ndarrays_to_parameters(tensors),
        on_fit_config_fn=lambda round_: {"bench": True, "bench-per-site": True},  # distinct updates
    )  # fmt: skip
    legacy = LegacyContext(
        context=context, config=ServerConfig(num_rounds=rounds, round_timeout=600.0), strategy=recording
    )
    secagg = SecAggPlus(
        num_shares=1.0, reconstruction_threshold=0.5, timeout=float(config["secagg-timeout-s"])
    )
    timings: dict[int, dict[str, Any]] = {}
    stages: dict[str, float] = {}
    _time_stages(secagg, stages)
    _keep_float32(recording)  # SecAgg+ unmasks to float64: both kinds of round start from fp32 tensors

    def timed_fit(grid: Any, context: Any) -> None:
        round_ = int(context.state.config_records[MAIN_CONFIGS_RECORD][Key.CURRENT_ROUND])
        kind, workflow = ("secagg", secagg) if round_ % 2 else ("plain", default_fit_workflow)
        stages.clear()
        started = time.perf_counter()
        workflow(grid, context)
        timings[round_] = {"kind": kind, "seconds": round(time.perf_counter() - started, 3)}
        if stages:
            timings[round_]["stages"] = dict(stages)

    _wait_for_nodes(grid, int(config.get("expected-sites", 0)), float(config["wait-s"]))
    DefaultWorkflow(fit_workflow=timed_fit, evaluate_workflow=lambda grid, context: None)(grid, legacy)
    _write_results(
        Path(str(config["results"])),
        {"timings": timings, "fit_by_round": recording.rounds_report(), "tensor_bytes": _fp32_bytes(tensors)},
    )


def _keep_float32(strategy: Any) -> None:
    """The strategy's aggregate, cast back to float32 (the dtype of the benchmark's tensors)."""
    aggregate = strategy.aggregate_fit

    def aggregate_fp32(server_round: int, results: list[Any], failures: list[Any]) -> Any:
        parameters, metrics = aggregate(server_round, results, failures)
        if parameters is not None:
            tensors = [t.astype(np.float32) for t in parameters_to_ndarrays(parameters)]
            parameters = ndarrays_to_parameters(tensors)
        return parameters, metrics

    strategy.aggregate_fit = aggregate_fp32


def _time_stages(secagg: Any, stages: dict[str, float]) -> None:
    """Each SecAgg+ stage's seconds (the exchange with the sites included) into ``stages``."""

    def timed(name: str) -> Any:
        stage = getattr(secagg, name)

        def run(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return stage(*args, **kwargs)
            finally:
                stages[name.removesuffix("_stage")] = round(time.perf_counter() - started, 3)

        return run

    for name in ("setup_stage", "share_keys_stage", "collect_masked_vectors_stage", "unmask_stage"):
        setattr(secagg, name, timed(name))


def _fp32_bytes(tensors: list[np.ndarray]) -> int:
    return int(sum(t.size for t in tensors) * 4)


def publish(grid: Any, config: Any) -> None:
    """Send the signed bundle in ``delivery`` (a plan ``genba server publish`` wrote) to every site.

    Waits up to ``wait-s`` for the plan's expected sites to be connected, sends one
    ``query.bundle`` message to each connected site and writes each site's receipt.
    """
    from flwr.app import ConfigRecord, Message, RecordDict

    from genba.protocol import DELIVERY_MESSAGE_TYPE

    plan = json.loads(Path(str(config["delivery"])).read_text(encoding="utf-8"))
    bundle = Path(plan["bundle"])
    records: dict[str, Any] = {
        "bundle": ConfigRecord(
            {
                "manifest": (bundle / "manifest.json").read_bytes(),
                "signature": (bundle / "manifest.sig").read_bytes(),
            }
        )
    }
    if plan["send"]:
        records["files"] = ConfigRecord(
            {"names": list(plan["send"]), "contents": [(bundle / name).read_bytes() for name in plan["send"]]}
        )
    nodes = _wait_for_nodes(grid, int(plan["expected_sites"]), float(config["wait-s"]))
    messages = [
        Message(
            RecordDict(records), dst_node_id=node, message_type=DELIVERY_MESSAGE_TYPE, group_id="delivery"
        )
        for node in nodes
    ]
    replies = grid.send_and_receive(messages, timeout=float(config["wait-s"]) + 300.0) if messages else []
    _write_results(
        Path(str(config["results"])), {"connected": [str(n) for n in nodes], "receipts": _receipts(replies)}
    )


def _wait_for_nodes(grid: Any, expected: int, wait_s: float) -> list[int]:
    deadline = time.monotonic() + wait_s
    nodes = list(grid.get_node_ids())
    while len(nodes) < expected and time.monotonic() < deadline:
        time.sleep(1.0)
        nodes = list(grid.get_node_ids())
    return sorted(nodes)


def _receipts(replies: Any) -> dict[str, dict[str, Any]]:
    from genba.protocol import RECEIPT_OUTCOMES

    receipts: dict[str, dict[str, Any]] = {}
    for reply in replies:
        node = str(reply.metadata.src_node_id)
        if reply.has_error():
            receipts[node] = {"outcome": "failed", "error_code": int(reply.error.code)}
            continue
        receipt = reply.content["bundle_receipt"]
        code = int(receipt["outcome"])
        outcome = RECEIPT_OUTCOMES[code] if 0 <= code < len(RECEIPT_OUTCOMES) else "failed"
        receipts[node] = {"version": int(receipt["version"]), "outcome": outcome}
    return receipts


def _write_results(results: Path, document: dict[str, Any]) -> None:
    results.mkdir(parents=True, exist_ok=True)
    (results / "results.json").write_text(
        json.dumps(document, indent=2, sort_keys=True) + "\n", encoding="utf-8"
    )


def _final_parameters(legacy: Any) -> Any:
    import flwr.compat.common.recorddict_compat as compat

    return compat.arrayrecord_to_parameters(legacy.state.array_records[MAIN_PARAMS_RECORD], keep_input=True)
