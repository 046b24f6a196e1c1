"""The read views are computed on reader threads of a lower CPU priority than the line's predictions
(``edge_agent.service.readers``), through the real app over a real agent."""

from __future__ import annotations

import os
import sys
import threading

import pytest

from edge_agent.agent import Agent
from edge_agent.service.readers import READER_NICENESS

POLLED = ("/v1/status", "/v1/gates", "/v1/queue", "/v1/kpis", "/v1/report", "/v1/drift", "/v1/groups")
POLLED += ("/v1/models", "/v1/federation", "/v1/audit", "/v1/egress")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread priority is Linux's")
def test_views_are_computed_on_lower_priority_threads_and_predictions_are_not(
    agent_serving_v1: Agent,
) -> None:
    from fastapi.testclient import TestClient

    from edge_agent.service.app import create_app
    from edge_agent.service.auth import TokenRegistry

    agent = agent_serving_v1
    headers = {"Authorization": f"Bearer {agent.site.read_token('supervisor')}"}
    seen: dict[str, set[str]] = {}
    original = agent.store.kpi_summary

    def kpi_summary() -> object:
        seen.setdefault("kpis", set()).add(threading.current_thread().name)
        return original()

    agent.store.kpi_summary = kpi_summary  # type: ignore[method-assign]
    with TestClient(create_app(agent, TokenRegistry.from_site(agent.site), agent.config.api)) as client:
        assert client.post("/v1/predict", json={"text": "dent near the flange"}, headers=headers).is_success
        for path in POLLED:
            assert client.get(path, headers=headers).status_code == 200, path
        readers = [t for t in threading.enumerate() if t.name.startswith("genba-reader")]
        assert readers and seen["kpis"] <= {t.name for t in readers}
        assert {_niceness(t) for t in readers} == {READER_NICENESS}
        batcher = [t for t in threading.enumerate() if t.name.startswith("genba-batch")]
        assert batcher and {_niceness(t) for t in batcher} == {_niceness(threading.main_thread())}


def _niceness(thread: threading.Thread) -> int:
    assert thread.native_id is not None
    return os.getpriority(os.PRIO_PROCESS, thread.native_id)
