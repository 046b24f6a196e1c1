"""The gates' default evidence on a real agent: every held-out input both models answered, labels
asked only where they disagree, drawn at random, offered first; nothing else moves the gate."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from edge_agent.agent import Agent
from edge_agent.answers import Item
from edge_agent.site import SiteFolder
from edge_agent.split import HOLDOUT

GATES = {"auto_advance": False, "evaluate_every_s": 3600, "min_items": 12, "min_agreement": 0.0}


@pytest.fixture
def judged_agent(
    make_site: Callable[..., SiteFolder], bert_bundle: Path, keypair: tuple[Path, Path], tmp_path: Path,
    agent_harness: Any,
) -> Iterator[Callable[..., Agent]]:  # fmt: skip
    """An agent whose production always answers "ok" and whose candidate, in shadow, "dent"."""
    opened: list[Agent] = []

    def open_(groups: dict[str, Any] | None = None, **gates: Any) -> Agent:
        settings: dict[str, Any] = {
            "runtime": {"provider": "cpu", "intra_op_threads": 1},
            "gates": GATES | gates,
            "store": {"audit_share": 0.0},
        }
        if groups is not None:
            settings["groups"] = groups
        agent = Agent.open(make_site(settings=settings)).__enter__()
        opened.append(agent)
        bundle = agent_harness.constant_head_bundle
        agent.install(bundle(bert_bundle, keypair[0], tmp_path / "ok", "ok", 1), actor="supervisor")
        agent.install(bundle(bert_bundle, keypair[0], tmp_path / "dent", "dent", 2), actor="supervisor")
        return agent

    yield open_
    for agent in opened:
        agent.__exit__(None, None, None)


def _serve(agent: Agent, texts: list[str]) -> list[int]:
    answers = agent.predict([Item("text", t, t.encode(), {}, "operator") for t in texts])
    return [a.input_id for a in answers]


def _accuracy(agent: Agent) -> Any:
    report = agent.gate_report()
    assert report is not None and report.ready
    return {g.name: g for g in report.gates}["accuracy"]


def _shadowed(agent: Agent, waiter: Callable[..., Any], ids: list[int]) -> None:
    candidate = agent.active.candidate
    assert candidate is not None
    waiter(lambda: agent.store.stage_count(candidate.model_id, "shadow", 0.0) >= len(ids), what="shadow")


def test_held_out_disagreements_are_drawn_at_the_share_offered_first_and_decide_the_gate(
    judged_agent: Callable[..., Agent], waiter: Callable[..., Any]
) -> None:
    agent = judged_agent(disagreement_share=0.5, decision="superiority")
    texts = [f"report {i}: a mark on the housing" for i in range(160)]
    ids = _serve(agent, texts)
    _shadowed(agent, waiter, ids)
    candidate, production = agent.active.candidate, agent.active.production
    assert candidate is not None and production is not None
    rows = agent.store.paired_sequence(candidate.model_id, production.model_id, "shadow")
    rule = agent.split_rule
    held_out = [i for i, t in zip(ids, texts, strict=True) if rule.split_for("text", t.encode()) == HOLDOUT]
    assert [r.input_id for r in rows] == held_out  # every held-out input, in order; no train input
    drawn = [r.input_id for r in rows if r.drawn]
    assert 0.25 * len(rows) < len(drawn) < 0.75 * len(rows)  # every row disagrees; about half drawn

    queue = agent.queue(limit=len(drawn) + 5)
    assert [q.input_id for q in queue[: len(drawn)]] == drawn
    assert all(q.disagreement for q in queue[: len(drawn)])
    assert not any(q.disagreement for q in queue[len(drawn) :])

    accuracy = _accuracy(agent)
    assert not accuracy.passed and "waiting for" in accuracy.detail  # the first draw holds the gate
    # Labels an operator gives elsewhere (undrawn inputs, train inputs) never move the evidence.
    for input_id in [i for i in ids if i not in drawn][:20]:
        agent.label(input_id, "dent", actor="operator")
    assert "waiting for" in _accuracy(agent).detail and _accuracy(agent).value == accuracy.value

    # The drawn labels are the candidate's: it is right where production is wrong, every time.
    for input_id in drawn[:3]:
        agent.label(input_id, "dent", actor="operator")
    evidence = _accuracy(agent).evidence
    assert evidence["labels"] == 3 and evidence["first_only"] == 3 and evidence["sample_share"] == 0.5
    assert evidence["items"] == held_out.index(drawn[3])  # the sequence stops at the first unlabelled draw
    for input_id in drawn[3:]:
        agent.label(input_id, "dent", actor="operator")
    accuracy = _accuracy(agent)
    assert accuracy.passed and accuracy.evidence["items"] == len(held_out)
    assert accuracy.evidence["delta_pts"] == pytest.approx(100.0 * len(drawn) / 0.5 / len(held_out), abs=0.01)


def test_a_candidate_shown_worse_on_its_drawn_disagreements_is_held(
    judged_agent: Callable[..., Agent], waiter: Callable[..., Any]
) -> None:
    agent = judged_agent(disagreement_share=1.0)
    ids = _serve(agent, [f"report {i}: clean part, no defect" for i in range(120)])
    _shadowed(agent, waiter, ids)
    for item in agent.queue(limit=200):
        if item.disagreement:
            agent.label(item.input_id, "ok", actor="operator")  # production was right every time
    accuracy = _accuracy(agent)
    assert not accuracy.passed and accuracy.evidence["second_only"] > 20
    assert accuracy.evidence["lower_bound_pts"] < -50


def test_groups_are_judged_on_the_paired_sample_and_a_group_too_small_holds_when_asked(
    judged_agent: Callable[..., Agent], waiter: Callable[..., Any]
) -> None:
    """Line L3's operators say "ok": production is right there and the candidate wrong, every time."""
    groups = {"min_labels": 5, "max_drop_pts": 5.0, "unjudged": "hold"}
    agent = judged_agent(groups, disagreement_share=1.0)
    truth = {"L1": "dent", "L3": "ok", "L4": "dent"}
    line_of: dict[int, str] = {}
    held_out = [t for t in _reports("L4", 40) if _held_out(agent, t)][:2]  # too small, judged all the same
    for line, texts in (("L1", _reports("L1", 150)), ("L3", _reports("L3", 150)), ("L4", held_out)):
        answers = agent.predict([Item("text", t, t.encode(), {"line": line}, "operator") for t in texts])
        line_of |= {a.input_id: line for a in answers}
    _shadowed(agent, waiter, list(line_of))
    for item in agent.queue(limit=500):
        if item.disagreement:
            agent.label(item.input_id, truth[line_of[item.input_id]], actor="operator")
    report = agent.gate_report()
    assert report is not None
    gate = {g.name: g for g in report.gates}["groups"]
    rows = {row["group"]: row for row in gate.breakdown}
    assert rows["line=L3"]["harmed"] and not rows["line=L1"]["harmed"]
    assert rows["line=L3"]["labels"] == rows["line=L3"]["inputs"] >= 5  # every L3 row disagrees, drawn
    assert rows["line=L4"]["too_small"] and rows["line=L4"]["inputs"] == 2
    assert not gate.passed and "group line=L3 shown harmed" in gate.detail
    assert "unjudged (5 held-out inputs both answered needed, holding the candidate): line=L4" in gate.detail


def _reports(line: str, count: int) -> list[str]:
    return [f"report {i} on the {line} housing" for i in range(count)]


def _held_out(agent: Agent, text: str) -> bool:
    return agent.split_rule.split_for("text", text.encode()) == HOLDOUT
