"""The audit sample: drawn at random whatever production answered, offered first, the gates' evidence."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edge_agent.agent import Agent
from edge_agent.answers import Item
from edge_agent.config import GateConfig, StoreConfig
from edge_agent.site import SiteFolder
from genba.errors import ConfigError

GATES = {"auto_advance": False, "evaluate_every_s": 3600, "min_items": 12, "min_labels": 6}


def _settings(share: float, **gates: Any) -> dict[str, dict[str, Any]]:
    return {
        "runtime": {"provider": "cpu", "intra_op_threads": 1},
        "gates": GATES | gates,
        "store": {"audit_share": share},
    }


@pytest.fixture
def open_agent(
    make_site: Callable[..., SiteFolder], bert_bundle: Path, keypair: tuple[Path, Path], tmp_path: Path,
    agent_harness: Any,
) -> Iterator[Callable[..., Agent]]:  # fmt: skip
    """An agent serving the tiny BERT bundle with a head that always answers "ok" (``constant``) or
    a random one, with a candidate that always answers "dent" if asked."""
    opened: list[Agent] = []

    def open_(share: float, candidate: bool = False, constant: bool = True, **gates: Any) -> Agent:
        agent = Agent.open(make_site(settings=_settings(share, **gates))).__enter__()
        opened.append(agent)
        bundle = agent_harness.constant_head_bundle
        production = (
            bundle(bert_bundle, keypair[0], tmp_path / "ok", "ok", 1)
            if constant
            else agent_harness.random_head_bundle(bert_bundle, keypair[0], tmp_path / "random", 1)
        )
        agent.install(production, actor="supervisor")
        if candidate:
            agent.install(bundle(bert_bundle, keypair[0], tmp_path / "dent", "dent", 2), actor="supervisor")
        return agent

    yield open_
    for agent in opened:
        agent.__exit__(None, None, None)


def _serve(agent: Agent, texts: list[str]) -> list[int]:
    ids = []
    for start in range(0, len(texts), 100):
        answers = agent.predict(
            [Item("text", t, t.encode(), {}, "operator") for t in texts[start : start + 100]]
        )
        ids += [a.input_id for a in answers]
    return ids


def _audited(agent: Agent, input_ids: list[int]) -> set[int]:
    queued = agent.store.audit_queue(limit=len(input_ids) + 10)
    return {item.input_id for item in queued} & set(input_ids)


def test_about_the_configured_share_of_served_inputs_is_drawn_whatever_production_answered(
    open_agent: Callable[..., Agent],
) -> None:
    agent = open_agent(0.2, constant=False)
    words = ["scratch", "dent", "housing", "flange", "rim", "left", "surface", "line"]
    words += ["good", "part", "ok", "no", "issues", "found", "on", "the"]
    rng = np.random.default_rng(0)
    texts = [" ".join(rng.choice(words, size=int(rng.integers(3, 9)))) + f" #{i}" for i in range(1500)]
    ids = _serve(agent, texts)
    audited = _audited(agent, ids)
    n = len(ids)
    assert abs(len(audited) - 0.2 * n) < 4 * np.sqrt(n * 0.2 * 0.8)  # binomial, 4 sigma
    with sqlite3.connect(agent.site.store_file) as db:
        margin = dict(db.execute("SELECT input_id, margin FROM predictions WHERE served = 1").fetchall())
    assert len(set(margin.values())) > 100  # production's certainty varies: the draw could follow it
    by_margin = sorted(ids, key=lambda i: margin[i])
    unsure, sure = set(by_margin[: n // 2]), set(by_margin[n // 2 :])
    gap = len(audited & unsure) / len(unsure) - len(audited & sure) / len(sure)
    assert abs(gap) < 4 * np.sqrt(0.2 * 0.8 * (2 / (n // 2)))
    assert agent.status()["audit_sample"] == {
        "drawn": len(audited),
        "labelled": 0,
        "held_out": 0,
        "share": 0.2,
    }


def test_the_queue_offers_audit_items_first_and_marks_them(open_agent: Callable[..., Agent]) -> None:
    agent = open_agent(0.0)
    ids = _serve(agent, [f"report {i} about a dent" for i in range(30)])
    agent.store.add_to_audit_sample(ids[20:23])
    queue = agent.queue(limit=10)
    assert [item.input_id for item in queue[:3]] == ids[20:23] and all(item.audit for item in queue[:3])
    assert not any(item.audit for item in queue[3:]) and len(queue) == 10
    assert len({item.input_id for item in queue}) == 10


def test_nothing_is_drawn_with_a_share_of_zero(open_agent: Callable[..., Agent]) -> None:
    agent = open_agent(0.0)
    ids = _serve(agent, [f"report {i}" for i in range(300)])
    assert _audited(agent, ids) == set()


def _label_held_out(agent: Agent, texts: list[str], label: str) -> list[int]:
    ids = _serve(agent, texts)
    for input_id in ids:
        agent.store.add_label(input_id, label, actor="operator", split="holdout")
    return ids


def test_the_gates_judge_on_audit_labels_only_and_pilot_on_its_own_fresh_labels(
    open_agent: Callable[..., Agent], waiter: Callable[..., Any]
) -> None:
    agent = open_agent(0.0, candidate=True, evidence="audit")
    chosen = _label_held_out(agent, [f"dent {i} in the housing" for i in range(20)], "dent")
    candidate = agent.active.candidate
    assert candidate is not None
    waiter(lambda: agent.store.stage_count(candidate.model_id, "shadow", 0.0) >= 20, what="answers")
    report = agent.gate_report()
    assert report is not None and report.ready
    accuracy = {g.name: g for g in report.gates}["accuracy"]
    assert not accuracy.passed and accuracy.detail == "0 held-out audit-sample labels, 6 needed"

    agent.store.add_to_audit_sample(chosen[:12])  # now drawn: 12 of the 20 count
    report = agent.gate_report()
    assert report is not None
    accuracy = {g.name: g for g in report.gates}["accuracy"]
    assert accuracy.evidence is not None and accuracy.evidence["labels"] == 12

    agent.slots.promote(actor="supervisor", to_stage="pilot")
    assert agent.active.stage == "pilot"
    _serve(agent, [f"part {i} in pilot" for i in range(15)])  # enough answers in pilot to judge
    report = agent.gate_report()
    assert report is not None
    accuracy = {g.name: g for g in report.gates}["accuracy"]
    assert accuracy.detail == "0 held-out audit-sample labels given in pilot, 6 needed"
    fresh = _label_held_out(agent, [f"dent {i} on the rim, again" for i in range(8)], "dent")
    agent.store.add_to_audit_sample(fresh)
    report = agent.gate_report()
    assert report is not None
    accuracy = {g.name: g for g in report.gates}["accuracy"]
    assert accuracy.evidence is not None and accuracy.evidence["labels"] == 8


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: StoreConfig(audit_share=1.5), "store.audit_share must be between 0 and 1"),
        (lambda: GateConfig(evidence="queue"), "gates.evidence must be one of disagreement, audit, all"),
        (lambda: GateConfig(decision="better"), "gates.decision must be one of"),
        (lambda: GateConfig(alpha=0.7), "gates.alpha must be between 0 and 0.5"),
    ],
)
def test_bad_settings_are_refused_with_their_name(build: Callable[[], Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        build()


def test_the_kpi_report_says_which_accuracy_is_unbiased(open_agent: Callable[..., Agent]) -> None:
    from edge_agent.config import CostConfig
    from edge_agent.report.build import build_report

    agent = open_agent(0.0)  # production always answers "ok"
    ids = _serve(agent, [f"report {i} of the day" for i in range(16)])
    agent.store.add_to_audit_sample(ids[:6])  # drawn: all six really are "ok"
    for index, input_id in enumerate(ids):  # the queue's hard cases (the other ten) mostly are not
        label = "ok" if index < 6 or index % 5 == 0 else "dent"
        agent.store.add_label(input_id, label, actor="operator", split="train")
    report = build_report(agent.store, CostConfig(), days=1)
    assert report["unbiased"] == ["accuracy_audit", "acceptance_audit"]
    audited = report["accuracy_audit"]["overall"]
    assert (audited["labelled"], audited["correct"], audited["value"]) == (6, 6, 1.0)
    assert report["accuracy"]["overall"]["labelled"] == 16 and report["accuracy"]["overall"]["correct"] == 8
    assert "random" in report["definitions"]["accuracy_audit"]
