"""The server's registry (real SQLite), the differential-privacy accountant and IT's DP settings."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from genba.errors import UsageError
from genba.privacy import epsilon
from server.privacy import PrivacyConfig
from server.registry import Registry


def test_versions_keep_their_lineage_and_a_number_is_never_reused(tmp_path: Path) -> None:
    with Registry(tmp_path) as registry:
        registry.add_version(name="m", version=1, manifest_sha256="a" * 64, kind="export")
        registry.add_version(
            name="m", version=2, manifest_sha256="b" * 64, kind="federated", parent_version=1
        )
        registry.add_version(name="m", version=3, manifest_sha256="c" * 64, kind="rollback", parent_version=1)
        assert registry.next_version("m") == 4
        assert registry.root_version("m", 3).version == 1
        assert (
            registry.add_version(name="m", version=2, manifest_sha256="b" * 64, kind="federated").version == 2
        )
        with pytest.raises(UsageError, match="new version number"):
            registry.add_version(name="m", version=2, manifest_sha256="d" * 64, kind="federated")
        assert registry.only_name() == "m"
        registry.add_version(name="other", version=1, manifest_sha256="e" * 64, kind="export")
        with pytest.raises(UsageError, match="several models"):
            registry.only_name()
    with Registry(tmp_path) as reopened:  # it is on disk
        assert [(r.version, r.kind) for r in reopened.versions("m")] == [
            (1, "export"),
            (2, "federated"),
            (3, "rollback"),
        ]
        assert reopened.version("m", 2).path == tmp_path / "bundles" / "m-v2"


def test_a_runs_rounds_participation_and_deliveries_are_recorded(tmp_path: Path) -> None:
    results = {
        "accuracy_by_round": {"1": 0.5, "2": 0.75},
        "loss_by_round": {"1": 1.0, "2": 0.7},
        "fit_by_round": {
            "1": {
                "sites": 3,
                "failures": 0,
                "aggregated": True,
                "contributed": ["a", "b", "c"],
                "dropped": [],
            },
            "2": {
                "sites": 2,
                "failures": 0,
                "aggregated": False,
                "contributed": ["a", "b"],
                "dropped": ["c"],
            },
        },
        "per_site_by_round": {
            "1": {s: {"examples": 6, "accuracy": 0.5, "loss": 1.0, "production_version": 1} for s in "abc"},
            "2": {s: {"examples": 6, "accuracy": 0.75, "loss": 0.7, "production_version": 1} for s in "ab"},
        },
    }
    with Registry(tmp_path) as registry:
        registry.add_version(name="m", version=1, manifest_sha256="a" * 64, kind="export")
        registry.start_run("r1", name="m", base_version=1, rounds=2, min_sites=3, privacy={})
        registry.record_rounds("r1", results)
        registry.finish_run("r1", outcome="completed", version=None, privacy={"epsilon": 1.5})
        registry.record_deliveries("m", 1, "publish", {"a": "installed", "b": "refused"})
        registry.record_deliveries("m", 1, "publish", {"b": "installed"})
        (run,) = registry.runs()
        assert run["outcome"] == "completed" and run["privacy"] == {"epsilon": 1.5}
        assert run["rounds_by_number"][2] == {
            "sites": 2, "failures": 0, "aggregated": False, "accuracy": 0.75, "loss": 0.7,
            "dropped": ["c"], "evaluated_by": ["a", "b"],
        }  # fmt: skip
        assert registry.deliveries("m", 1) == {
            "a": {"action": "publish", "outcome": "installed"},
            "b": {"action": "publish", "outcome": "installed"},
        }
        assert registry.latest_reports()["c"]["round"] == 1 and registry.latest_reports()["a"]["round"] == 2


def test_epsilon_follows_the_gaussian_mechanisms_rdp_bound() -> None:
    delta = 1e-5
    for z, rounds in ((0.8, 1), (1.0, 3), (2.0, 10), (4.0, 50)):
        # Full participation: each round is a Gaussian mechanism with RDP(a) = a / (2 z^2).
        classic = min(
            rounds * a / (2 * z * z) + math.log(1 / delta) / (a - 1)
            for a in [1 + x / 10 for x in range(1, 2560)]
        )
        assert 0 < epsilon(z, rounds, delta) <= classic + 1e-6
        assert epsilon(z, rounds, delta) > 0.8 * classic  # the same bound, only a tighter conversion
    assert epsilon(1.0, 5, delta) > epsilon(1.0, 3, delta) > epsilon(2.0, 3, delta)
    assert epsilon(1.0, 0, delta) == 0.0
    import server.privacy

    assert server.privacy.epsilon is epsilon  # IT and the sites account with the same function


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"noise_multiplier": 0.0, "clipping_norm": 1.0}, "--dp-noise"),
        ({"noise_multiplier": 1.0, "clipping_norm": -1.0}, "--dp-clip"),
        ({"noise_multiplier": 1.0, "clipping_norm": 1.0, "delta": 1.0}, "--dp-delta"),
        ({"noise_multiplier": float("nan"), "clipping_norm": 1.0}, "--dp-noise"),
        # each site's noise (std 3/sqrt(3)) with 6 std of headroom on a unit clip leaves SecAgg+'s +/-8
        (
            {"noise_multiplier": 3.0, "clipping_norm": 1.0},
            r"--dp-noise 3 with --dp-clip 1: .* range of \+/-8",
        ),
    ],
)
def test_privacy_settings_are_checked(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        PrivacyConfig(**kwargs)
