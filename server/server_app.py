"""The ServerApp: FedAvg of the sites' heads under SecAgg+, with per-site evaluation and a privacy floor.

Flower 1.42's SecAgg+ runs only on the legacy path (``LegacyContext`` + ``DefaultWorkflow`` with
``SecAggPlusWorkflow``). The server sees the sum of the sites' masked, example-weighted updates,
never one site's. Every round needs at least ``min-sites`` sites (never fewer than
:data:`PRIVACY_FLOOR`): the strategy waits for that many, and SecAgg+'s reconstruction
threshold is set so that fewer survivors cannot be unmasked. Each round's evaluation is kept per
site (by node id; ``genba server train`` names the sites) with only the metrics
:mod:`genba.protocol` lets a site send. The run writes ``results.json`` and the final head
(``head.npz``) into ``results``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
from flwr.common import ndarrays_to_parameters, parameters_to_ndarrays
from flwr.server import LegacyContext, ServerApp, ServerConfig
from flwr.server.strategy import FedAvg
from flwr.server.workflow import DefaultWorkflow, SecAggPlusWorkflow
from flwr.server.workflow.constant import MAIN_PARAMS_RECORD

from genba.protocol import MIN_SITES_PER_ROUND as PRIVACY_FLOOR

app = ServerApp()


class RecordingFedAvg(FedAvg):
    """FedAvg that aggregates only rounds with at least ``floor`` sites, and keeps what each reported."""

    def __init__(self, *, floor: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.floor = floor
        self.evaluations: dict[int, dict[str, dict[str, Any]]] = {}
        self.fits: dict[int, dict[str, Any]] = {}

    def aggregate_fit(self, server_round: int, results: list[Any], failures: list[Any]) -> Any:
        sites = len(results)
        if sites < self.floor:  # the privacy floor: this round's sum is not used
            self.fits[server_round] = {"sites": sites, "failures": len(failures), "aggregated": False}
            return None, {}
        self.fits[server_round] = {"sites": sites, "failures": len(failures), "aggregated": True}
        return super().aggregate_fit(server_round, results, failures)

    def aggregate_evaluate(self, server_round: int, results: list[Any], failures: list[Any]) -> Any:
        if not results:
            return None, {}
        self.evaluations[server_round] = {
            str(proxy.node_id): {"loss": res.loss, "examples": res.num_examples, **dict(res.metrics)}
            for proxy, res in results
        }
        return super().aggregate_evaluate(server_round, results, failures)


def _weighted_accuracy(metrics: list[tuple[int, dict[str, Any]]]) -> dict[str, float]:
    total = sum(count for count, _ in metrics)
    if not total:
        return {}
    return {"accuracy": sum(count * float(m.get("accuracy", 0.0)) for count, m in metrics) / total}


@app.main()
def main(grid: Any, context: Any) -> None:
    config = context.run_config
    sites = max(PRIVACY_FLOOR, int(config["min-sites"]))
    rounds = int(config["num-server-rounds"])
    results = Path(str(config["results"]))
    with np.load(str(config["initial-head"])) as initial:
        head = [initial["weight"], initial["bias"]]
    strategy = RecordingFedAvg(
        floor=sites,
        fraction_fit=1.0,
        fraction_evaluate=1.0,
        min_fit_clients=sites,
        min_evaluate_clients=sites,
        min_available_clients=sites,
        initial_parameters=ndarrays_to_parameters(head),
        evaluate_metrics_aggregation_fn=_weighted_accuracy,
    )
    legacy = LegacyContext(context=context, config=ServerConfig(num_rounds=rounds), strategy=strategy)
    secagg = SecAggPlusWorkflow(
        num_shares=sites,
        reconstruction_threshold=sites - 1,
        timeout=float(config["secagg-timeout-s"]),
    )
    started = time.time()
    DefaultWorkflow(fit_workflow=secagg)(grid, legacy)
    final = parameters_to_ndarrays(_final_parameters(legacy))
    results.mkdir(parents=True, exist_ok=True)
    np.savez(results / "head.npz", weight=final[0], bias=final[1])
    document = {
        "rounds": rounds,
        "min_sites": sites,
        "seconds": round(time.time() - started, 1),
        "loss_by_round": dict(legacy.history.losses_distributed),
        "accuracy_by_round": {r: v for r, v in legacy.history.metrics_distributed.get("accuracy", [])},
        "per_site_by_round": strategy.evaluations,
        "fit_by_round": strategy.fits,
        "rounds_aggregated": sorted(r for r, fit in strategy.fits.items() if fit["aggregated"]),
    }
    (results / "results.json").write_text(
        json.dumps(document, indent=2, sort_keys=True) + "\n", encoding="utf-8"
    )


def _final_parameters(legacy: Any) -> Any:
    import flwr.compat.common.recorddict_compat as compat

    return compat.arrayrecord_to_parameters(legacy.state.array_records[MAIN_PARAMS_RECORD], keep_input=True)
