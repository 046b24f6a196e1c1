"""Explanations are bounded: one computed at a time on a low-priority thread, one more waiting, and
any beyond refused at once with 503 in the one error shape; through the real app over a real agent."""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from edge_agent.agent import Agent
from edge_agent.service.app import EXPLANATIONS_AT_ONCE
from edge_agent.service.readers import READER_NICENESS


def test_explanations_beyond_the_limit_are_refused_and_the_others_run_one_at_a_time(
    agent_serving_v1: Agent,
) -> None:
    from fastapi.testclient import TestClient

    from edge_agent.service.app import create_app
    from edge_agent.service.auth import TokenRegistry

    agent = agent_serving_v1
    headers = {"Authorization": f"Bearer {agent.site.read_token('supervisor')}"}
    release = threading.Event()
    running: list[int] = []
    most_at_once, niceness = 0, set()
    real_explain = agent.explain

    def held_explain(input_id: int) -> Any:  # the real explanation, held until the test lets it go
        nonlocal most_at_once
        running.append(input_id)
        most_at_once = max(most_at_once, len(running))
        niceness.add(os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))
        release.wait(30)
        try:
            return real_explain(input_id)
        finally:
            running.remove(input_id)

    agent.explain = held_explain  # type: ignore[method-assign]
    with TestClient(create_app(agent, TokenRegistry.from_site(agent.site), agent.config.api)) as client:
        texts = [f"dent near the flange {n}" for n in range(EXPLANATIONS_AT_ONCE + 1)]
        ids = [
            client.post("/v1/predict", json={"text": t}, headers=headers).json()["input_id"] for t in texts
        ]
        path = "/v1/inputs/{}/explanation"
        with ThreadPoolExecutor(EXPLANATIONS_AT_ONCE) as pool:
            held = [pool.submit(client.get, path.format(i), headers=headers) for i in ids[:-1]]
            _wait(lambda: len(running) == 1 and client.app.state.explanations.taken == EXPLANATIONS_AT_ONCE)
            refused = client.get(path.format(ids[-1]), headers=headers)
            release.set()
            answers = [future.result(timeout=60) for future in held]

    assert refused.status_code == 503
    error = refused.json()["error"]
    assert set(refused.json()) == {"error"} and "ask again in a moment" in error["message"]
    assert "\n" not in error["message"]
    assert [a.status_code for a in answers] == [200] * EXPLANATIONS_AT_ONCE
    assert {a.json()["input_id"] for a in answers} == set(ids[:-1])
    assert most_at_once == 1  # the waiting one started only after the first had finished
    if sys.platform.startswith("linux"):
        assert niceness == {READER_NICENESS}


def _wait(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    import time

    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)
