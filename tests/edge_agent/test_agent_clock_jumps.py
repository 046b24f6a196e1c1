"""The PC's clock jumping back or forward (an NTP correction, a time fixed by hand) changes no
interval the agent measures, breaks no chain and promotes nothing early. The agent takes its wall
clock and its monotonic clock as arguments; the tests move each on its own."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path

import pytest

from edge_agent.agent import Agent
from edge_agent.answers import Item
from edge_agent.config import load_agent_config
from edge_agent.site import SiteFolder

pytestmark = pytest.mark.fault

HOUR = 3600.0
T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z


class Clock:
    """Seconds that move only when the test says so."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clocks() -> tuple[Clock, Clock]:
    return Clock(T0), Clock(100.0)  # the wall clock, the monotonic clock


@pytest.fixture
def agent(
    make_site: Callable[..., SiteFolder], bundle_versions: dict[int, Path], clocks: tuple[Clock, Clock]
) -> Iterator[Agent]:
    site = make_site(
        settings={"runtime": {"provider": "cpu"}, "gates": {"auto_advance": False, "min_items": 6}}
    )
    wall, monotonic = clocks
    opened = Agent(site, load_agent_config(site.config_file), clock=wall, monotonic=monotonic)
    try:
        opened.start()
        opened.install(bundle_versions[1], actor="supervisor")
        yield opened
    finally:
        opened.close()


def _answer(agent: Agent, count: int) -> list[int]:
    items = [
        Item("text", f"dent {i} on the rim", f"dent {i} on the rim".encode(), {}, "operator")
        for i in range(count)
    ]
    return [answer.input_id for answer in agent.predict(items)]


def _shadow_items(agent: Agent, waiter: Callable[..., object], at_least: int) -> int:
    def counted() -> int:
        report = agent.gate_report()
        return report.items if report is not None and report.items >= at_least else 0

    waiter(counted, timeout=30, what=f"{at_least} shadow answers")
    report = agent.gate_report()
    assert report is not None
    return report.items


def _stamps_never_step_back(agent: Agent) -> None:
    with closing(sqlite3.connect(agent.site.store_file)) as db:
        for table, key in (("inputs", "id"), ("predictions", "id"), ("audit_log", "seq")):
            stamps = [row[0] for row in db.execute(f"SELECT created_at FROM {table} ORDER BY {key}")]
            assert stamps == sorted(stamps), table


def _whole(agent: Agent) -> None:
    assert agent.store.integrity_check() == "ok"
    reports = agent.store.verify_chains(full=True)
    assert reports["audit"].ok and reports["egress"].ok, reports
    _stamps_never_step_back(agent)


def test_a_clock_set_back_an_hour_neither_stalls_a_stage_nor_breaks_a_chain(
    agent: Agent, bundle_versions: dict[int, Path], clocks: tuple[Clock, Clock], waiter: Callable[..., object]
) -> None:
    wall, _ = clocks
    agent.install(bundle_versions[2], actor="supervisor")  # a candidate in shadow since T0
    wall.now += 60.0
    _answer(agent, 3)
    assert _shadow_items(agent, waiter, 3) == 3
    wall.now -= HOUR  # NTP corrects the clock by an hour
    _answer(agent, 3)
    assert _shadow_items(agent, waiter, 6) == 6  # the answers after the jump count toward the stage
    agent.store.append_audit("note", "supervisor", {"after": "the jump"})
    status = agent.status()
    assert status["uptime_s"] >= 0.0
    assert any("clock is 3600 s behind" in problem for problem in status["problems"]), status["problems"]
    _whole(agent)
    wall.now += 2 * HOUR  # the clock catches up: stamps are the clock's again, the problem is gone
    _answer(agent, 1)
    assert not any("clock" in problem for problem in agent.status()["problems"])
    _whole(agent)


def test_a_candidate_installed_again_after_the_clock_went_back_does_not_count_its_old_answers(
    agent: Agent, bundle_versions: dict[int, Path], clocks: tuple[Clock, Clock], waiter: Callable[..., object]
) -> None:
    wall, _ = clocks
    agent.install(bundle_versions[2], actor="supervisor")
    for _ in range(3):
        wall.now += 60.0
        _answer(agent, 3)
    assert _shadow_items(agent, waiter, 9) == 9  # past the items gate (6)
    agent.discard(actor="supervisor", reason="looked at it too early")
    wall.now -= HOUR
    agent.install(bundle_versions[2], actor="supervisor")  # the same model, in shadow again
    report = agent.gate_report()
    assert report is not None and report.items == 0  # its earlier stint's answers are not this stage's
    assert not next(gate for gate in report.gates if gate.name == "items").passed
    _whole(agent)


def test_uptime_and_the_gate_reports_age_follow_the_monotonic_clock(
    agent: Agent, bundle_versions: dict[int, Path], clocks: tuple[Clock, Clock]
) -> None:
    wall, monotonic = clocks
    agent.install(bundle_versions[2], actor="supervisor")
    monotonic.now += 30.0
    first = agent.status()
    assert first["uptime_s"] == 30.0
    wall.now -= 10 * HOUR
    assert agent.status()["uptime_s"] == 30.0  # a wall-clock jump changes no interval
    wall.now += 20 * HOUR
    assert agent.recent_gate_report() is agent.recent_gate_report()  # still fresh: no time has passed
    monotonic.now += agent.config.gates.evaluate_every_s
    assert agent.status()["uptime_s"] == 30.0 + agent.config.gates.evaluate_every_s
    _whole(agent)
