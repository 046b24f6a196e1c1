"""kill -9 during a burst of predictions and during promotions: the store must come back whole."""

from __future__ import annotations

import signal
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from edge_agent.site import SiteFolder
from edge_agent.store import SiteStore
from genba.errors import GenbaError

pytestmark = pytest.mark.fault  # kill -9: make reliability repeats these


def _check_store(site: SiteFolder) -> tuple[int, set[int]]:
    """After a crash: integrity ok, chains verify, one production; returns it and the prediction ids."""
    with SiteStore(site.store_file) as store:
        assert store.integrity_check() == "ok"
        reports = store.verify_chains()
        assert reports["audit"].ok and reports["egress"].ok, reports
        slots = store.slots()
        assert slots.production is not None
        open_rows = [row for row in store.production_history() if row["ended_at"] is None]
        assert len(open_rows) == 1 and open_rows[0]["model_id"] == slots.production.model_id
    with sqlite3.connect(site.store_file) as db:
        assert db.execute("SELECT COUNT(*) FROM slots WHERE slot = 'production'").fetchone()[0] == 1
        ids = {row[0] for row in db.execute("SELECT id FROM predictions")}
        return slots.production.model_id, ids


def _burst(agent: Any, acknowledged: list[int], stop: threading.Event) -> None:
    try:
        with agent.client("integration") as client:
            while not stop.is_set():
                acknowledged.append(client.predict("dent on the left flange, part 4711").prediction_id)
    except GenbaError:
        return  # the agent was killed under us; what it acknowledged before is what counts


def test_kill_during_a_burst_of_predictions_loses_nothing_acknowledged(
    make_site: Callable[..., SiteFolder], agent_process: Callable[..., Any], bundle_versions: dict[int, Path]
) -> None:
    site = make_site()
    agent = agent_process(site)
    with agent.client() as client:
        client.install(bundle_versions[1])
        client.install(bundle_versions[2])  # a shadow candidate: its answers are being written too
    acknowledged: list[int] = []
    stop = threading.Event()
    threads = [threading.Thread(target=_burst, args=(agent, acknowledged, stop)) for _ in range(8)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 30
    while len(acknowledged) < 150 and time.monotonic() < deadline:
        time.sleep(0.01)
    agent.stop(signal.SIGKILL)
    stop.set()
    for thread in threads:
        thread.join(timeout=30)
    assert len(acknowledged) >= 150
    _, stored = _check_store(site)
    assert set(acknowledged) <= stored
    again = agent_process(site)
    with again.client() as client:
        assert client.predict("scratch on the housing").model.version == 1


def test_kill_during_promotions_leaves_exactly_one_production(
    make_site: Callable[..., SiteFolder], agent_process: Callable[..., Any], bundle_versions: dict[int, Path]
) -> None:
    site = make_site(settings={"runtime": {"provider": "cpu"}, "gates": {"auto_advance": False}})
    agent = agent_process(site)
    with agent.client() as client:
        client.install(bundle_versions[1])
    for delay in (0.0, 0.002, 0.005, 0.01, 0.03):
        with agent.client() as client:
            status = client.status()
            if status.candidate is None:  # a kill before the switch leaves the candidate waiting
                target = 2 if status.production.version == 1 else 1
                client.install(bundle_versions[target], rollback=target == 1)
        promoting = threading.Thread(target=_promote_quietly, args=(agent,))
        promoting.start()
        time.sleep(delay)
        agent.stop(signal.SIGKILL)
        promoting.join(timeout=30)
        production_id, _ = _check_store(site)
        agent = agent_process(site)
        with agent.client() as client:
            status = client.status()
            assert status.production.model_id == production_id
            assert client.predict("misaligned bracket").model.version == status.production.version


def _promote_quietly(agent: Any) -> None:
    try:
        with agent.client() as client:
            client.promote("production")
    except GenbaError:
        return
