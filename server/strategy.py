"""The pieces the ServerApp assembles: a recording FedAvg with the privacy floor, site-level DP,
a dropout-tolerant SecAgg+ workflow, per-round checkpoints and a Grid that keeps what it receives.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, cast

import numpy as np
from flwr.app import ConfigRecord
from flwr.common import parameters_to_ndarrays
from flwr.common.secure_aggregation.secaggplus_constants import RECORD_KEY_CONFIGS
from flwr.common.secure_aggregation.secaggplus_constants import Key as SecAggKey
from flwr.server.strategy import DifferentialPrivacyClientSideFixedClipping, FedAvg
from flwr.server.workflow import SecAggPlusWorkflow
from flwr.server.workflow.constant import MAIN_CONFIGS_RECORD
from flwr.server.workflow.constant import Key as WorkflowKey

from genba.masking import MASKED_RECORD, use_genba_masks, widen_masked
from genba.protocol import MIN_SITES_PER_ROUND as PRIVACY_FLOOR


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

    def halted_below_floor(self, server_round: int, answered: list[str], what: str, floor: int) -> None:
        """Record a round that secure aggregation halted before unmasking: fewer than ``floor``
        sampled sites sent ``what`` (public keys, key shares or masked updates)."""
        sampled = self.sampled.get(server_round, [])
        self.fits[server_round] = {
            "sites": 0,
            "failures": len(set(sampled) - set(answered)),
            "aggregated": False,
            "halted": True,
            "halted_reason": (
                f"below the privacy floor: {len(answered)} of {len(sampled)} sampled sites sent {what}, "
                f"at least {floor} are needed; nothing was unmasked"
            ),
            "contributed": [],
            "dropped": sorted(set(sampled) - set(answered)),
            "sampled": sampled,
        }

    def rounds_report(self) -> dict[int, dict[str, Any]]:
        """Each round's fit: who contributed and who was sampled but sent nothing; a round whose
        secure aggregation halted says why (below the privacy floor, or too few shares to unmask)."""
        report = dict(self.fits)
        for round_, sampled in self.sampled.items():
            report.setdefault(
                round_,
                {
                    "sites": 0,
                    "failures": 0,
                    "aggregated": False,
                    "halted": True,
                    "halted_reason": "secure aggregation halted: too few sites answered a stage, or too few "
                    "shares arrived to unmask",
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
    """Flower's client-side fixed clipping with the noise left to the sites (distributed DP).

    ``configure_fit`` tells every site the clipping norm (Flower's ``fixedclipping_mod`` reads it);
    each site adds its own share of the Gaussian noise before SecAgg+ masks its update
    (:mod:`edge_agent.federation.dp`), so this wrapper adds none: the unmasked sum is already noised.
    Unlike Flower's wrapper, a site that failed or declined does not void the round: the privacy
    floor decides (the inner strategy aggregates only with at least ``min-sites`` results, the count
    the sites' noise is calibrated to).
    """

    def aggregate_fit(self, server_round: int, results: list[Any], failures: list[Any]) -> Any:
        return self.strategy.aggregate_fit(server_round, results, failures)


class SecAggPlus(SecAggPlusWorkflow):
    """Flower's SecAgg+ workflow with the privacy floor before unmasking, tolerant of a site that
    leaves before it shares its keys.

    Flower 1.42 unmasks whatever sum arrived as soon as ``threshold`` (2) shares of each secret
    do, and the strategy's ``aggregate_fit`` sees the round only after that. Here, after each of
    the setup, share-keys and collect stages, a round in which fewer than the floor's sites
    answered halts: no unmask request is sent, so no share is asked for, and the strategy's
    ``rounds_report`` says why. The floor is the larger of ``floor`` (never below
    :data:`genba.protocol.MIN_SITES_PER_ROUND`) and the recording strategy's (the run's
    ``min-sites``): a sum the strategy would not aggregate is not unmasked either. Each site
    enforces the floor too (:mod:`edge_agent.federation.floor`).

    Flower counts every site sampled at setup as "dead" at the unmask stage when it sent no
    masked update, and asks the others for its key shares; a site that left before the
    share-keys stage distributed none, so the round halts ("Not enough shares"). Such a site
    never entered anyone's masks (a site masks only with the sites whose shares it received),
    so after the share-keys stage the sites that did not share are dropped from the round.
    """

    def __init__(self, *args: Any, floor: int = PRIVACY_FLOOR, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.floor = max(int(floor), PRIVACY_FLOOR)
        use_genba_masks()  # the sites mask with them: unmasking must draw the same

    def setup_stage(self, grid: Any, context: Any, state: Any) -> bool:
        proceed = bool(super().setup_stage(grid, context, state))
        return self._floor_holds(context, state, "public keys") and proceed

    def share_keys_stage(self, grid: Any, context: Any, state: Any) -> bool:
        proceed = bool(super().share_keys_stage(grid, context, state))
        shared = set(state.active_node_ids)
        state.sampled_node_ids = shared
        state.nid_to_neighbours = {
            nid: neighbours & shared for nid, neighbours in state.nid_to_neighbours.items() if nid in shared
        }
        return self._floor_holds(context, state, "key shares") and proceed

    def collect_masked_vectors_stage(self, grid: Any, context: Any, state: Any) -> bool:
        proceed = bool(super().collect_masked_vectors_stage(cast(Any, WideningGrid(grid)), context, state))
        return self._floor_holds(context, state, "masked updates") and proceed

    def _floor_holds(self, context: Any, state: Any, what: str) -> bool:
        """Whether at least the floor's sites answered the stage (``state.active_node_ids``); if
        not, the halt is recorded with the strategy, and the round ends before anything is unmasked."""
        if not state.nid_to_proxies:  # nobody was sampled: Flower has already cancelled the round
            return True
        recording = _recording(context.strategy)
        floor = max(self.floor, int(getattr(recording, "floor", 0)))
        if len(state.active_node_ids) >= floor:
            return True
        if recording is not None:
            round_ = int(context.state.config_records[MAIN_CONFIGS_RECORD][WorkflowKey.CURRENT_ROUND])
            answered = sorted(str(node) for node in state.active_node_ids)
            recording.halted_below_floor(round_, answered, what, floor)
        return False


class WideningGrid:
    """The Grid, giving Flower's workflow each site's masked update (uint32 arrays in the ArrayRecord
    ``MASKED_RECORD``) as int64 blobs in SecAgg+'s ConfigRecord again (:func:`genba.masking.widen_masked`),
    so its sum is computed as Flower computes it."""

    def __init__(self, grid: Any) -> None:
        self._grid = grid

    def __getattr__(self, name: str) -> Any:
        return getattr(self._grid, name)

    def send_and_receive(self, messages: Any, *, timeout: float | None = None) -> list[Any]:
        replies = list(self._grid.send_and_receive(messages, timeout=timeout))
        return [reply for reply in replies if _widened(reply)]


def _widened(reply: Any) -> bool:
    """Move a reply's masked update into SecAgg+'s ConfigRecord as int64 blobs; False for a malformed
    one (arrays not named 0..n-1, or not uint32), which the workflow then counts as not received."""
    if reply.has_error() or MASKED_RECORD not in reply.content.array_records:
        return True
    masked = reply.content.array_records[MASKED_RECORD]
    del reply.content[MASKED_RECORD]
    if RECORD_KEY_CONFIGS not in reply.content.config_records or set(masked) != {
        str(index) for index in range(len(masked))
    }:
        return False
    try:
        widened = widen_masked(masked[str(index)].numpy() for index in range(len(masked)))
    except Exception:  # not uint32, or not a serialised array at all: a site that sent no usable update
        return False
    # A new record, not the received one changed: an inflated message shares one object between its
    # records of equal content (SecAgg+'s empty ConfigRecord and empty metrics, say).
    configs = dict(reply.content.config_records[RECORD_KEY_CONFIGS])
    reply.content[RECORD_KEY_CONFIGS] = ConfigRecord({**configs, SecAggKey.MASKED_PARAMETERS: widened})
    return True


def _recording(strategy: Any) -> RecordingFedAvg | None:
    """The RecordingFedAvg inside ``strategy`` (itself, or wrapped by SiteLevelDP), if any."""
    for _ in range(4):
        if isinstance(strategy, RecordingFedAvg):
            return strategy
        strategy = getattr(strategy, "strategy", None)
    return None


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


def received_sha256(record: dict[str, Any]) -> str:
    """The SHA-256 of a reply, from its line in ``received.jsonl``, by the protocol's canonical form:
    what the site's egress ledger holds for it (``genba.protocol.content_sha256``), so IT can match
    every reply that arrived to a ledger entry."""
    import base64

    from genba.protocol import content_sha256

    if record["error"]:
        return content_sha256({"error": dict(record["error_reply"])})

    def raw(value: Any) -> Any:
        if isinstance(value, dict) and set(value) == {"b64"}:
            return base64.b64decode(value["b64"])
        return [raw(item) for item in value] if isinstance(value, list) else value

    content = record["content"].items()
    return content_sha256(
        {name: {key: raw(value) for key, value in fields.items()} for name, fields in content}
    )


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
        # What an error reply carried: a site may send only a code and its fixed reason (genba.protocol).
        "error_reply": (
            {"code": int(reply.error.code), "reason": reply.error.reason} if reply.has_error() else None
        ),
        "content": content,
    }


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
