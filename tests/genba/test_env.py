from __future__ import annotations

from genba import env


def test_privacy_switches_are_forced_over_user_settings() -> None:
    environ = {"FLWR_TELEMETRY_ENABLED": "1", "ORT_DISABLE_TELEMETRY": "0", "PATH": "/bin"}
    env.apply(environ)
    assert environ["FLWR_TELEMETRY_ENABLED"] == "0"
    assert environ["ORT_DISABLE_TELEMETRY"] == "1"
    assert environ["HF_HUB_OFFLINE"] == "1"
    assert environ["RAY_USAGE_STATS_ENABLED"] == "0"
    assert environ["PATH"] == "/bin"


def test_child_environments_carry_the_switches() -> None:
    child = env.child_environment({"FLWR_TELEMETRY_ENABLED": "1"})
    for name, value in env.PRIVACY_ENVIRONMENT.items():
        assert child[name] == value
