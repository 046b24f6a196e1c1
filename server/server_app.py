"""The ServerApp: FedAvg of the sites' heads under SecAgg+, with per-site evaluation and a privacy floor.

Flower 1.42's SecAgg+ runs only on the legacy path (``LegacyContext`` + ``DefaultWorkflow`` with
``SecAggPlusWorkflow``). The server sees the sum of the sites' masked, example-weighted updates,
never one site's. Every round needs at least ``min-sites`` sites (never fewer than
:data:`PRIVACY_FLOOR`): the strategy waits for that many. Every sampled site
shares its secrets with all the others, and half of them (at least 2) are needed to unmask
one, so a site that leaves mid-round costs the round nothing. Each round's evaluation is
kept per site (by node id; ``genba server train`` names the sites) with only the metrics
:mod:`genba.protocol` lets a site send. The run writes ``results.json`` and the final head
(``head.npz``) into ``results``.

With ``action = "publish"`` the app trains nothing: it sends one signed bundle to every
connected site (``genba server publish``, ``rollback``, and the end of ``genba server train``)
and records each site's receipt.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
from flwr.common import ndarrays_to_parameters, parameters_to_ndarrays
from flwr.server import LegacyContext, ServerApp, ServerConfig
from flwr.server.strategy import DifferentialPrivacyClientSideFixedClipping, FedAvg
from flwr.server.workflow import DefaultWorkflow, SecAggPlusWorkflow
from flwr.server.workflow.constant import MAIN_CONFIGS_RECORD, MAIN_PARAMS_RECORD, Key

from genba.protocol import MIN_SITES_PER_ROUND as PRIVACY_FLOOR

app = ServerApp()


class RecordingFedAvg(FedAvg):
    """FedAvg that aggregates only rounds with at least ``floor`` sites, and keeps what each reported."""

    def __init__(self, *, floor: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.floor = floor
        self.evaluations: dict[int, dict[str, dict[str, Any]]] = {}
        self.fits: dict[int, dict[str, Any]] = {}
        self.sampled: dict[int, list[str]] = {}

    def configure_fit(self, server_round: int, parameters: Any, client_manager: Any) -> Any:
        sampled = super().configure_fit(server_round, parameters, client_manager)
        self.sampled[server_round] = sorted(str(proxy.node_id) for proxy, _ in sampled)
        return sampled

    def aggregate_fit(self, server_round: int, results: list[Any], failures: list[Any]) -> Any:
        sites = len(results)
        contributed = sorted(str(proxy.node_id) for proxy, _ in results)
        aggregated = sites >= self.floor  # below the privacy floor, this round's sum is not used
        self.fits[server_round] = {
            "sites": sites,
            "failures": len(failures),
            "aggregated": aggregated,
            "contributed": contributed,
            "dropped": sorted(set(self.sampled.get(server_round, [])) - set(contributed)),
        }
        if not aggregated:
            return None, {}
        return super().aggregate_fit(server_round, results, failures)

    def rounds_report(self) -> dict[int, dict[str, Any]]:
        """Each round's fit: who contributed and who was sampled but sent nothing; a round whose
        secure aggregation halted (too few shares to unmask) is reported as such."""
        report = dict(self.fits)
        for round_, sampled in self.sampled.items():
            report.setdefault(
                round_,
                {
                    "sites": 0,
                    "failures": 0,
                    "aggregated": False,
                    "halted": True,
                    "contributed": [],
                    "dropped": [],
                    "sampled": sampled,
                },
            )
        return {round_: report[round_] for round_ in sorted(report)}

    def aggregate_evaluate(self, server_round: int, results: list[Any], failures: list[Any]) -> Any:
        if not results:
            return None, {}
        self.evaluations[server_round] = {
            str(proxy.node_id): {"loss": res.loss, "examples": res.num_examples, **dict(res.metrics)}
            for proxy, res in results
        }
        return super().aggregate_evaluate(server_round, results, failures)


class SiteLevelDP(DifferentialPrivacyClientSideFixedClipping):
    """Flower's client-side fixed-clipping DP, except that a site that failed does not void the round.

    Flower's wrapper aggregates nothing when any site failed; here the privacy floor decides (the
    inner strategy aggregates only with at least ``min-sites`` results, the count the noise is
    calibrated to), and the Gaussian noise goes on whatever was aggregated.
    """

    def aggregate_fit(self, server_round: int, results: list[Any], failures: list[Any]) -> Any:
        from flwr.supercore.differential_privacy import add_gaussian_noise_to_params

        aggregated, metrics = self.strategy.aggregate_fit(server_round, results, failures)
        if aggregated:
            aggregated = add_gaussian_noise_to_params(
                aggregated, self.noise_multiplier, self.clipping_norm, self.num_sampled_clients
            )
        return aggregated, metrics


class SecAggPlus(SecAggPlusWorkflow):
    """Flower's SecAgg+ workflow, tolerant of a site that leaves before it shares its keys.

    Flower 1.42 counts every site sampled at setup as "dead" at the unmask stage when it sent
    no masked update, and asks the others for its key shares; a site that left before the
    share-keys stage distributed none, so the round halts ("Not enough shares"). Such a site
    never entered anyone's masks (a site masks only with the sites whose shares it received),
    so after the share-keys stage the sites that did not share are dropped from the round.
    """

    def share_keys_stage(self, grid: Any, context: Any, state: Any) -> bool:
        proceed = bool(super().share_keys_stage(grid, context, state))
        shared = set(state.active_node_ids)
        state.sampled_node_ids = shared
        state.nid_to_neighbours = {
            nid: neighbours & shared for nid, neighbours in state.nid_to_neighbours.items() if nid in shared
        }
        return proceed


class RecordingGrid:
    """The Grid, keeping every reply the server receives (``keep-received``: for audits and tests).

    One JSON line per reply: round, sending node and its records (bytes as base64), exactly what
    reached the ServerApp, so an audit can check what the server could have learned.
    """

    def __init__(self, grid: Any, path: Path) -> None:
        self._grid = grid
        self._path = path
        path.parent.mkdir(parents=True, exist_ok=True)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._grid, name)

    def send_and_receive(self, messages: Any, *, timeout: float | None = None) -> Any:
        replies = list(self._grid.send_and_receive(messages, timeout=timeout))
        with self._path.open("a", encoding="utf-8") as out:
            for reply in replies:
                out.write(json.dumps(_reply_record(reply)) + "\n")
        return replies


def _reply_record(reply: Any) -> dict[str, Any]:
    import base64

    def plain(value: Any) -> Any:
        if isinstance(value, bytes):
            return {"b64": base64.b64encode(value).decode("ascii")}
        if isinstance(value, list):
            return [plain(item) for item in value]
        data = getattr(value, "data", None)
        return {"b64": base64.b64encode(data).decode("ascii")} if isinstance(data, bytes) else value

    content = {} if reply.has_error() else {
        name: {key: plain(value) for key, value in record.items()} for name, record in reply.content.items()
    }  # fmt: skip
    return {
        "round": reply.metadata.group_id,
        "node": str(reply.metadata.src_node_id),
        "error": reply.has_error(),
        "content": content,
    }


def _weighted_accuracy(metrics: list[tuple[int, dict[str, Any]]]) -> dict[str, float]:
    total = sum(count for count, _ in metrics)
    if not total:
        return {}
    return {"accuracy": sum(count * float(m.get("accuracy", 0.0)) for count, m in metrics) / total}


@app.main()
def main(grid: Any, context: Any) -> None:
    config = context.run_config
    action = str(config.get("action", "train"))
    if action == "publish":
        publish(grid, config)
    elif action == "bench":
        bench(grid, config, context)
    else:
        train(grid, config, context)


def train(grid: Any, config: Any, context: Any) -> None:
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
        fraction_evaluate=1.0,
        min_fit_clients=sites,
        min_evaluate_clients=sites,
        min_available_clients=sites,
        initial_parameters=ndarrays_to_parameters(head),
        evaluate_metrics_aggregation_fn=_weighted_accuracy,
        on_fit_config_fn=lambda round_: {
            **pinned,
            **(_privacy_fit_config(privacy, round_) if privacy else {}),
        },
        on_evaluate_config_fn=lambda round_: dict(pinned),
    )
    strategy: Any = recording
    if privacy is not None:
        strategy = SiteLevelDP(
            recording,
            noise_multiplier=privacy["noise_multiplier"],
            clipping_norm=privacy["clipping_norm"],
            num_sampled_clients=sites,  # the fewest sites a round is aggregated with
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


def checkpoint_each_round(strategy: Any, folder: Path) -> None:
    """After each aggregated round, the global tensors as released (noise included) in ``folder``.

    Wraps the outermost strategy's ``aggregate_fit`` on this instance, so the checkpoint is what
    the round produced, after DP noise if any: ``round-N.npz``.
    """
    aggregate = strategy.aggregate_fit

    def aggregate_and_keep(server_round: int, results: list[Any], failures: list[Any]) -> Any:
        parameters, metrics = aggregate(server_round, results, failures)
        if parameters is not None:
            folder.mkdir(parents=True, exist_ok=True)
            tensors = parameters_to_ndarrays(parameters)
            np.savez(folder / f"round-{server_round}.npz", weight=tensors[0], bias=tensors[1])
        return parameters, metrics

    strategy.aggregate_fit = aggregate_and_keep


def _privacy_settings(config: Any) -> dict[str, float]:
    return {
        "noise_multiplier": float(config["dp-noise"]),
        "clipping_norm": float(config["dp-clip"]),
        "delta": float(config["dp-delta"]),
    }


def _privacy_fit_config(privacy: dict[str, float], server_round: int) -> dict[str, Any]:
    """What a site is told with each DP round: the settings and the run's epsilon after this round."""
    from server.privacy import epsilon

    spent = epsilon(privacy["noise_multiplier"], server_round, privacy["delta"])
    return {
        "dp-noise": privacy["noise_multiplier"],
        "dp-clip": privacy["clipping_norm"],
        "dp-delta": privacy["delta"],
        "dp-epsilon": spent,
    }


def _privacy_spent(privacy: dict[str, float] | None, rounds: int) -> dict[str, Any] | None:
    from server.privacy import epsilon

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
        on_fit_config_fn=lambda round_: {"bench": True},
    )  # fmt: skip
    legacy = LegacyContext(
        context=context, config=ServerConfig(num_rounds=rounds, round_timeout=600.0), strategy=recording
    )
    secagg = SecAggPlus(
        num_shares=1.0, reconstruction_threshold=0.5, timeout=float(config["secagg-timeout-s"])
    )
    timings: dict[int, dict[str, Any]] = {}

    def timed_fit(grid: Any, context: Any) -> None:
        round_ = int(context.state.config_records[MAIN_CONFIGS_RECORD][Key.CURRENT_ROUND])
        kind, workflow = ("secagg", secagg) if round_ % 2 else ("plain", default_fit_workflow)
        started = time.perf_counter()
        workflow(grid, context)
        timings[round_] = {"kind": kind, "seconds": round(time.perf_counter() - started, 3)}

    _wait_for_nodes(grid, int(config.get("expected-sites", 0)), float(config["wait-s"]))
    DefaultWorkflow(fit_workflow=timed_fit, evaluate_workflow=lambda grid, context: None)(grid, legacy)
    _write_results(
        Path(str(config["results"])),
        {"timings": timings, "fit_by_round": recording.rounds_report(), "tensor_bytes": _fp32_bytes(tensors)},
    )


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
