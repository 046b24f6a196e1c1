"""Distributed differential privacy: each site noises its clipped update before SecAgg+ masks it, and
keeps a lifetime ε budget of its own.

The run test uses a real SuperLink and four real SuperNodes joined for a benchmark: they answer a
training round with a deterministic update (``benchmark_update``), so the noise-free aggregate is
known and what is left in each round's checkpoint is the noise the sites added. The mod tests call
the ClientApp's DP mods with real Flower messages on a real site store.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edge_agent.federation import dp
from edge_agent.federation.client_app import BENCH_ENV, benchmark_update, dp_clipping_mod
from edge_agent.federation.state import federation_state
from edge_agent.site import SiteFolder
from edge_agent.store import SiteStore
from genba.errors import ConfigError
from genba.privacy import SITE_DELTA, aggregate_noise_std, epsilon, epsilon_of_rounds, site_noise_std

pytestmark = pytest.mark.timeout(900)

NOISE, CLIP, ROUNDS = 1.0, 0.05, 3
#: One round at noise multiplier 1 (ε 4.73 at δ 1e-5) fits; a second (ε 7.08) does not.
LOW_BUDGET = 5.0
#: Noise 3 with clipping norm 1: 1 + 6 σ (σ = 3/√3) reaches past SecAgg+'s range of ±8.
OUT_OF_RANGE = {"dp-noise": 3.0, "dp-clip": 1.0}


def _audit(site: SiteFolder, event: str) -> list[dict[str, Any]]:
    with SiteStore(site.store_file) as store:
        return [e.fields["details"] for e in reversed(store.audit(limit=1000, event=event))]


def _clipped(update: list[np.ndarray], norm: float) -> list[np.ndarray]:
    """Flower's fixed clipping: one L2 norm over all the update's tensors."""
    total = math.sqrt(sum(float(np.sum(u.astype(np.float64) ** 2)) for u in update))
    return [u * min(1.0, norm / total) for u in update]


def test_the_aggregate_carries_the_calibrated_noise_and_a_site_past_its_budget_declines(
    tmp_path: Path, enrolment: Any, agent_harness: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from edge_agent.federation.supernode import JoinConfig, SuperNode
    from genba.federation import FAB_DIR
    from genba.tools import free_loopback_port
    from server.runs import flwr_run, new_run_dir
    from server.superlink import ServerConfig, SuperLink

    names = ("dp-a", "dp-b", "dp-c", "dp-d")
    folder, sites = enrolment.provision_with_sites(tmp_path, names, port=free_loopback_port())
    agent_harness.write_settings(sites["dp-d"], {"federation": {"epsilon_budget": LOW_BUDGET}})
    rng = np.random.default_rng(7)
    initial = [rng.normal(0.0, 0.05, size=(8, 384)).astype(np.float32), np.zeros(8, dtype=np.float32)]
    np.savez(tmp_path / "initial.npz", weight=initial[0], bias=initial[1])

    with SuperLink(ServerConfig(kit=folder.root)) as link:
        link.sync_sites()
        nodes = [SuperNode(JoinConfig(data=site.root, benchmark=True)).start() for site in sites.values()]

        def run(rounds: int, **privacy: float) -> tuple[dict[str, Any], Path]:
            run_dir = new_run_dir(link.server.root / "runs")
            settings = {
                "action": "bench-train", "num-server-rounds": rounds, "min-sites": 3, "expected-sites": 4,
                "secagg-timeout-s": 120.0, "wait-s": 60.0, "initial-head": str(tmp_path / "initial.npz"),
                "backbone-sha256": "bench", "dp-noise": NOISE, "dp-clip": CLIP, "dp-delta": 1e-5, **privacy,
            }  # fmt: skip
            return flwr_run(link.server, FAB_DIR, run_dir, settings, timeout_s=900.0), run_dir

        try:
            noisy, run_dir = run(ROUNDS)
            refused, _ = run(1, **OUT_OF_RANGE)
        finally:
            for node in nodes:
                node.stop()

    # Round 1: all four sites; then dp-d declines (its budget), and three sites carry the run.
    fits = noisy["fit_by_round"]
    assert noisy["rounds_aggregated"] == list(range(1, ROUNDS + 1)), fits
    assert [fits[str(r)]["sites"] for r in range(1, ROUNDS + 1)] == [4] + [3] * (ROUNDS - 1)

    # What each round released, less the noise-free mean of the clipped updates, is the sites' noise:
    # its std is the calibration's for that many sites, within 10%, and it is centred on zero.
    monkeypatch.setenv(BENCH_ENV, "1")
    previous, measured = initial, {}
    for round_ in range(1, ROUNDS + 1):
        with np.load(run_dir / "results" / "checkpoints" / f"round-{round_}.npz") as released:
            current = [released["weight"], released["bias"]]
        update = [b - p for b, p in zip(benchmark_update(previous), previous, strict=True)]
        expected = [p + u for p, u in zip(previous, _clipped(update, CLIP), strict=True)]
        residual = np.concatenate([(c - e).ravel() for c, e in zip(current, expected, strict=True)])
        calibrated = aggregate_noise_std(NOISE, CLIP, fits[str(round_)]["sites"])
        measured[round_] = round(float(residual.std() / calibrated), 3)
        assert abs(residual.std() / calibrated - 1) < 0.1, (round_, residual.std(), calibrated)
        assert abs(residual.mean()) < 5 * calibrated / math.sqrt(residual.size)
        previous = current
    print(json.dumps({"noise_std_over_calibration_by_round": measured}))

    # Every site recorded its spend; dp-d spent one round, declined the next and says so.
    for name in names[:3]:
        spent = _audit(sites[name], dp.SPENT_EVENT)
        assert [s["round"] for s in spent] == list(range(1, ROUNDS + 1))
        assert spent[-1]["epsilon_spent"] == pytest.approx(epsilon(NOISE, ROUNDS, SITE_DELTA))
        assert [s["noise_std"] for s in spent] == [pytest.approx(site_noise_std(NOISE, CLIP))] * ROUNDS
    with SiteStore.read_only(sites["dp-d"].store_file) as store:
        status = federation_state(sites["dp-d"], store)["privacy_budget"]
    assert status["rounds"] == 1 and status["epsilon_budget"] == LOW_BUDGET
    assert status["epsilon_spent"] == pytest.approx(epsilon(NOISE, 1, SITE_DELTA))
    declined = [r["reason"] for r in _audit(sites["dp-d"], dp.REFUSED_EVENT) if r["step"] == "privacy"]
    assert declined[0].startswith("this round would bring the site's lifetime ε to 7.08")
    assert "past its budget of 5" in declined[0] and "epsilon_budget in agent.toml" in declined[0]

    # Settings whose noise would leave SecAgg+'s range: every site declines, nothing is aggregated.
    assert refused["rounds_aggregated"] == []
    for site in sites.values():
        reasons = [r["reason"] for r in _audit(site, dp.REFUSED_EVENT) if r["step"] == "privacy"]
        assert "could leave SecAgg+'s range of +/-8: lower --dp-noise or --dp-clip" in reasons[-1]
        assert len(_audit(site, dp.SPENT_EVENT)) == (1 if site.root.name == "dp-d" else ROUNDS)


# ---------------------------------------------------------------- the mods, with real Flower messages


def _train_message(params: list[np.ndarray], config: dict[str, Any], *, secagg: bool, round_: int = 1) -> Any:
    from flwr.app import ConfigRecord, Metadata
    from flwr.app.message.message import make_message
    from flwr.common import FitIns, ndarrays_to_parameters
    from flwr.compat.common import recorddict_compat as compat

    content = compat.fitins_to_recorddict(FitIns(ndarrays_to_parameters(params), config), keep_input=True)
    if secagg:
        content.config_records[dp.SECAGG_CONFIGS] = ConfigRecord({})
    metadata = Metadata(
        run_id=7, message_id=f"m{round_}", src_node_id=0, dst_node_id=1, reply_to_message_id="",
        group_id=str(round_), created_at=time.time(), ttl=3600.0, message_type="train",
    )  # fmt: skip
    return make_message(metadata, content)


def _context(site: SiteFolder, max_weight: float | None = 1.0) -> Any:
    from flwr.app import ConfigRecord, Context, RecordDict

    state = RecordDict()
    if max_weight is not None:  # what SecAgg+'s setup left at this site
        state.config_records[dp.SECAGG_STATE] = ConfigRecord(
            {"clipping_range": 8.0, "target_range": 1 << 22, "max_weight": max_weight}
        )
    return Context(run_id=7, node_id=1, node_config={"data": str(site.root)}, state=state, run_config={})


def _site_trains(update: list[np.ndarray], calls: list[int]) -> Callable[[Any, Any], Any]:
    """The site's fit: the global tensors plus ``update``, with 7 examples."""
    from flwr.app import Message
    from flwr.common import Code, FitRes, Status, ndarrays_to_parameters, parameters_to_ndarrays
    from flwr.compat.common import recorddict_compat as compat

    def fit(msg: Any, context: Any) -> Any:
        calls.append(1)
        params = parameters_to_ndarrays(compat.recorddict_to_fitins(msg.content, keep_input=True).parameters)
        trained = [p + u for p, u in zip(params, update, strict=True)]
        res = FitRes(Status(Code.OK, ""), ndarrays_to_parameters(trained), 7, {})
        return Message(compat.fitres_to_recorddict(res, keep_input=True), reply_to=msg)

    return fit


def _dp_config(noise: float = NOISE, clip: float = CLIP) -> dict[str, Any]:
    return {"dp-noise": noise, "dp-clip": clip, "dp-delta": 1e-5, "clipping_norm": clip, "dp-epsilon": 0.0}


def _send(
    site: SiteFolder, params: list[np.ndarray], config: dict[str, Any], **kwargs: Any
) -> tuple[Any, int]:
    """A training message through ``distributed_noise_mod`` and ``dp_clipping_mod`` to the site's fit."""
    calls: list[int] = []
    update = [np.full_like(p, 0.5) for p in params]  # far beyond the clipping norm
    fit = _site_trains(update, calls)
    msg = _train_message(params, config, secagg=kwargs.pop("secagg", True), round_=kwargs.pop("round_", 1))
    reply = dp.distributed_noise_mod(msg, _context(site, **kwargs), lambda m, c: dp_clipping_mod(m, c, fit))
    return reply, len(calls)


@pytest.fixture
def site(tmp_path: Path, keypair: tuple[Path, Path], agent_harness: Any) -> SiteFolder:
    from edge_agent.site_init import init_site

    folder = init_site(tmp_path / "dp-site", site_name="dp-site", trust=[keypair[1]])
    agent_harness.write_settings(folder, {"federation": {"epsilon_budget": LOW_BUDGET}})
    return folder


def test_a_site_adds_its_share_to_the_clipped_update_records_the_spend_and_declines_past_its_budget(
    site: SiteFolder,
) -> None:
    from flwr.common import parameters_to_ndarrays
    from flwr.compat.common import recorddict_compat as compat

    params = [np.zeros((64, 64), dtype=np.float32), np.zeros(64, dtype=np.float32)]
    reply, trained = _send(site, params, _dp_config())
    fit_res = compat.recorddict_to_fitres(reply.content, keep_input=True)
    sent = parameters_to_ndarrays(fit_res.parameters)
    clipped = _clipped([np.full_like(p, 0.5) for p in params], CLIP)
    residual = np.concatenate([(s - c).ravel() for s, c in zip(sent, clipped, strict=True)])
    assert trained == 1 and fit_res.num_examples == 1  # under DP every site weighs the same
    assert abs(residual.std() / site_noise_std(NOISE, CLIP) - 1) < 0.05 and abs(residual.mean()) < 0.002
    [spent] = _audit(site, dp.SPENT_EVENT)
    assert spent == {
        "run": 7, "round": 1, "noise_multiplier": NOISE, "clipping_norm": CLIP, "delta": SITE_DELTA,
        "noise_std": pytest.approx(site_noise_std(NOISE, CLIP)), "epsilon_budget": LOW_BUDGET,
        "epsilon_spent": pytest.approx(epsilon(NOISE, 1, SITE_DELTA)),
    }  # fmt: skip

    # A second round would take the site past its budget: declined before the site even trains.
    with pytest.raises(dp.PrivacyDeclinedError, match="past its budget of 5"):
        _send(site, params, _dp_config(), round_=2)
    with SiteStore.read_only(site.store_file) as store:
        budget = federation_state(site, store)["privacy_budget"]
    assert budget["epsilon_spent"] == pytest.approx(4.7285, abs=1e-3) and budget["rounds"] == 1
    assert budget["epsilon_left"] == pytest.approx(LOW_BUDGET - budget["epsilon_spent"])
    assert budget["last_declined"]["reason"].startswith(
        "this round would bring the site's lifetime ε to 7.08"
    )
    assert len(_audit(site, dp.SPENT_EVENT)) == 1


@pytest.mark.parametrize(
    "config, kwargs, reason",
    [
        (_dp_config(noise=0.0), {}, "announced dp-noise = 0.0; this site needs a number > 0"),
        (_dp_config(noise=float("nan")), {}, "announced dp-noise = nan"),
        ({**_dp_config(), "dp-delta": 1.5}, {}, "dp-delta = 1.5; it must be < 1"),
        ({**_dp_config(), "clipping_norm": 1.0}, {}, "asks to clip to 1.0 but calibrates the noise to 0.05"),
        (_dp_config(noise=3.0, clip=1.0), {}, "could leave SecAgg+'s range of +/-8"),
        (_dp_config(noise=0.5, clip=0.01), {"max_weight": 1000.0}, "quantisation step (0.00381) is coarse"),
        (_dp_config(), {"max_weight": None}, "no SecAgg+ setup for this round"),
    ],
)
def test_settings_a_site_cannot_keep_its_promise_with_are_declined_before_it_trains(
    site: SiteFolder, config: dict[str, Any], kwargs: dict[str, Any], reason: str
) -> None:
    params = [np.zeros((4, 4), dtype=np.float32)]
    with pytest.raises(dp.PrivacyDeclinedError, match=re.escape(reason)):
        _send(site, params, config, **kwargs)
    [refusal] = _audit(site, dp.REFUSED_EVENT)
    assert refusal["step"] == "privacy" and reason in refusal["reason"]
    assert _audit(site, dp.SPENT_EVENT) == []


def test_large_global_values_leave_no_room_for_the_noise_in_secaggs_range(site: SiteFolder) -> None:
    with pytest.raises(dp.PrivacyDeclinedError, match="on values up to 7.9"):
        _send(site, [np.full((4, 4), 7.9, dtype=np.float32)], _dp_config())


def test_a_round_without_dp_passes_untouched_and_spends_nothing(site: SiteFolder) -> None:
    reply, trained = _send(site, [np.zeros(4, dtype=np.float32)], {"bench": True}, secagg=False)
    assert trained == 1 and not reply.has_error() and _audit(site, dp.SPENT_EVENT) == []


# ---------------------------------------------------------------- calibration, accounting, settings


def test_any_floor_sized_sum_of_shares_has_the_noise_the_guarantee_needs() -> None:
    for sites in range(3, 20):  # the std of the sum of `sites` shares is never below z * C
        assert site_noise_std(NOISE, CLIP) * math.sqrt(sites) >= NOISE * CLIP * (1 - 1e-12)
        assert aggregate_noise_std(NOISE, CLIP, sites) == pytest.approx(
            site_noise_std(NOISE, CLIP) / math.sqrt(sites)
        )
    assert aggregate_noise_std(NOISE, CLIP, 3) == pytest.approx(
        NOISE * CLIP / 3
    )  # as the server added it before
    shares = [
        dp.add_noise([np.zeros(200_000)], site_noise_std(2.0, 0.5), np.random.default_rng(s))[0]
        for s in range(3)
    ]
    assert abs(np.sum(shares, axis=0).std() / (2.0 * 0.5) - 1) < 0.01


def test_a_lifetime_composes_every_round_of_every_run() -> None:
    assert epsilon_of_rounds([1.0] * 3, 1e-5) == epsilon(1.0, 3, 1e-5)
    two_runs = epsilon_of_rounds([1.0, 1.0, 1.0, 2.0, 2.0], 1e-5)
    assert epsilon(1.0, 3, 1e-5) < two_runs < epsilon(1.0, 3, 1e-5) + epsilon(2.0, 2, 1e-5)  # RDP is tighter
    assert epsilon_of_rounds([], 1e-5) == 0.0


@pytest.mark.parametrize(
    "value, message",
    [(0, "not 0"), (-1.0, "not -1.0"), ("ten", "not 'ten'"), (True, "not True"), (float("inf"), "not inf")],
)
def test_the_budget_setting_is_checked(value: Any, message: str) -> None:
    from edge_agent.config import config_from_mapping

    expected = "federation.epsilon_budget must be a number > 0 (the site's lifetime ε), " + message
    with pytest.raises(ConfigError, match=re.escape(expected)):
        config_from_mapping({"federation": {"epsilon_budget": value}})


def test_the_default_budget_is_written_and_read(tmp_path: Path) -> None:
    import tomllib

    from edge_agent.config import config_from_mapping, default_toml

    assert config_from_mapping(tomllib.loads(default_toml("s"))).federation.epsilon_budget == 10.0
    assert epsilon(1.0, 3, 1e-5) < 10.0 < epsilon(1.0, 4, 1e-5)  # the default allows 3 rounds at z = 1


def test_agent_status_shows_the_budget_and_a_broken_setting(site: SiteFolder, agent_harness: Any) -> None:
    from edge_agent.agent import Agent

    with Agent.open(site) as agent:
        assert agent.status()["privacy_budget"] == {
            "epsilon_budget": LOW_BUDGET, "epsilon_spent": 0.0, "epsilon_left": LOW_BUDGET,
            "delta": SITE_DELTA, "rounds": 0, "runs": 0, "last_declined": None, "problem": None,
        }  # fmt: skip
        agent_harness.write_settings(site, {"federation": {"epsilon_budget": -1}})  # read afresh at each call
        broken = agent.status()["privacy_budget"]
    assert broken["epsilon_budget"] is None and broken["epsilon_left"] is None
    assert "federation.epsilon_budget must be a number > 0" in broken["problem"]
    with pytest.raises(
        dp.PrivacyDeclinedError, match="this site's ε budget is unknown"
    ):  # and it takes no part
        _send(site, [np.zeros(4, dtype=np.float32)], _dp_config())
