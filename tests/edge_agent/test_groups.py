"""Per-group checks: a candidate better overall but worse on one line is held back; figures per group."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edge_agent.agent import Agent
from edge_agent.answers import Item
from edge_agent.site import SiteFolder
from export.graphs import HeadWeights
from export.head_swap import read_head, write_head_swap
from genba import keys
from genba.bundle import verify_directory
from genba.errors import UsageError

#: line -> (reports, the operators' label). Production always answers "ok", the candidate "dent":
#: the candidate is right on 23 of 39 held-out labels, production on 16, but line L3 loses 100 points.
LINES = {"L1": (10, "dent"), "L2": (10, "dent"), "L3": (16, "ok"), "L4": (3, "dent")}
SETTINGS = {
    "runtime": {"provider": "cpu", "intra_op_threads": 1},
    "gates": {"auto_advance": False, "evaluate_every_s": 3600, "min_items": 12, "min_labels": 6,
              "evidence": "audit", "max_accuracy_drop_pts": 2.0},  # the groups gate on chosen labels
    "groups": {"min_labels": 5, "max_drop_pts": 5.0},
}


def _constant(bert_bundle: Path, key: Path, out: Path, label: str, version: int) -> Path:
    """The tiny BERT bundle with a head that always answers ``label``."""
    parent = verify_directory(bert_bundle, None)
    head = read_head(parent)
    bias = np.full_like(head.bias, -5.0)
    bias[list(parent.manifest.labels or ()).index(label)] = 5.0
    write_head_swap(parent, HeadWeights(np.zeros_like(head.weight), bias), out, keys.load_private_key(key),
                    source={"kind": "test"}, report_key="test", report={}, version=version)  # fmt: skip
    return out


@pytest.fixture
def agent(
    make_site: Callable[..., SiteFolder], bert_bundle: Path, keypair: tuple[Path, Path], tmp_path: Path
) -> Iterator[Agent]:
    site = make_site(settings=SETTINGS)
    with Agent.open(site) as opened:
        opened.install(
            _constant(bert_bundle, keypair[0], tmp_path / "always-ok", "ok", 1), actor="supervisor"
        )
        yield opened


def _serve_and_label(agent: Agent) -> dict[str, list[int]]:
    inputs: dict[str, list[int]] = {}
    for line, (count, _) in LINES.items():
        texts = [f"report {i} on the {line.lower()} housing" for i in range(count)]
        answers = agent.predict([Item("text", t, t.encode(), {"line": line}, "operator") for t in texts])
        inputs[line] = [a.input_id for a in answers]
    for line, ids in inputs.items():
        agent.store.add_to_audit_sample(ids)  # as if drawn: the gates judge on the audit sample
        for input_id in ids:
            agent.store.add_label(input_id, LINES[line][1], actor="operator", split="holdout")
    return inputs


def test_a_candidate_better_overall_but_worse_on_one_line_is_held_back(
    agent: Agent, bert_bundle: Path, keypair: tuple[Path, Path], tmp_path: Path, waiter: Callable[..., Any]
) -> None:
    agent.install(_constant(bert_bundle, keypair[0], tmp_path / "always-dent", "dent", 2), actor="supervisor")
    candidate = agent.active.candidate
    assert candidate is not None and agent.active.stage == "shadow"
    _serve_and_label(agent)
    waiter(lambda: agent.store.stage_count(candidate.model_id, "shadow", 0.0) >= 39, what="shadow answers")

    report = agent.gate_report()
    assert report is not None and report.ready and not report.passed
    gates = {gate.name: gate for gate in report.gates}
    accuracy = gates["accuracy"]
    assert accuracy.passed and accuracy.limit == -2.0 and accuracy.evidence is not None
    wanted = {"labels": 39, "first_only": 23, "second_only": 16, "delta_pts": 17.95, "established": True}
    assert {k: accuracy.evidence[k] for k in wanted} == wanted
    assert accuracy.value is not None and accuracy.value < 17.95
    groups = gates["groups"]
    assert not groups.passed and groups.value == -100.0 and groups.limit == -5.0
    assert "group line=L3 shown harmed: candidate -100.00 points on 16 held-out labels, " in groups.detail
    assert "unjudged (5 held-out labels needed): line=L4" in groups.detail
    rows = {row["group"]: row for row in groups.breakdown}
    line_1 = {"labels": 10, "candidate": 1.0, "production": 0.0, "delta_pts": 100.0, "too_small": False}
    assert {k: rows["line=L1"][k] for k in line_1} == line_1 and rows["line=L1"]["harmed"] is False
    assert rows["line=L3"]["delta_pts"] == -100.0 and rows["line=L3"]["harmed"] is True
    assert rows["line=L3"]["upper_bound_pts"] < -5.0
    assert (
        rows["line=L4"]["too_small"]
        and rows["line=L4"]["delta_pts"] is None
        and rows["line=L4"]["labels"] == 3
    )

    agent.slots.advance_if_gates_pass()
    assert agent.active.stage == "shadow"
    held = agent.store.decisions(candidate.model_id)[0]
    assert held["outcome"] == "hold" and any(
        g["name"] == "groups" and not g["passed"] for g in held["gates"]["gates"]
    )


def test_production_accuracy_per_group_and_the_too_small_groups(agent: Agent) -> None:
    _serve_and_label(agent)
    figures = agent.group_figures()
    assert figures["labels"] == 39 and figures["untagged_labels"] == 0 and figures["unknown_tags"] == []
    by_group = {(g["key"], g["value"]): g for g in figures["groups"]}
    assert by_group[("line", "L1")] == {"key": "line", "value": "L1", "labels": 10, "accuracy": 0.0,
                                        "too_small": False}  # fmt: skip
    assert by_group[("line", "L3")]["accuracy"] == 1.0
    assert by_group[("line", "L4")] == {"key": "line", "value": "L4", "labels": 3, "accuracy": None,
                                        "too_small": True}  # fmt: skip
    assert agent.group_figures("line")["keys"] == ["line"]
    with pytest.raises(
        UsageError, match="unknown group tag 'colour'; ask for one of line, shift, product, site"
    ):
        agent.group_figures("colour")


def test_an_operator_may_correct_an_inputs_group_with_the_label(agent: Agent) -> None:
    (answer,) = agent.predict(
        [Item("text", "dent on the rim", b"dent on the rim", {"line": "L1"}, "operator")]
    )
    agent.label(answer.input_id, "dent", actor="operator", groups={"line": "L2"})
    assert agent.store.group_tags([answer.input_id]) == {answer.input_id: {"line": "L2"}}


def test_unknown_tags_are_answered_and_kept_with_a_warning_and_never_block(agent: Agent) -> None:
    from fastapi.testclient import TestClient

    from edge_agent.service.app import create_app
    from edge_agent.service.auth import TokenRegistry

    app = create_app(agent, TokenRegistry.from_site(agent.site), agent.config.api)
    headers = {"Authorization": f"Bearer {agent.site.read_token('operator')}"}
    with TestClient(app) as client:
        answered = client.post("/v1/predict", json={"text": "dent near the rim", "groups": {"colour": "red"}},
                               headers=headers)  # fmt: skip
        known = client.post("/v1/predict", json={"text": "dent near the rim", "groups": {"line": "L1"}},
                            headers=headers)  # fmt: skip
        relabel = {"input_id": answered.json()["input_id"], "label": "dent", "groups": {"colour": "blue"}}
        labelled = client.post("/v1/labels", json=relabel, headers=headers)
        refused = client.get("/v1/groups", params={"key": "colour"}, headers=headers)
        figures = client.get("/v1/groups", headers=headers)
    assert answered.status_code == 200 and answered.json()["label"] == "ok"
    assert answered.json()["warnings"] == [
        "unknown group tag 'colour' (known: line, shift, product, site); it is stored but no group figure "
        "uses it until it is added to [groups] keys in agent.toml"
    ]
    assert "warnings" not in known.json()
    assert labelled.status_code == 200 and len(labelled.json()["warnings"]) == 1
    assert refused.status_code == 400 and "unknown group tag 'colour'" in refused.json()["error"]["message"]
    assert figures.status_code == 200 and figures.json()["unknown_tags"] == ["colour"]
    assert figures.json()["untagged_labels"] == 1
    stored = agent.store.get_input(answered.json()["input_id"])
    assert stored.groups == {"colour": "red"}


def test_a_group_too_small_to_judge_holds_the_candidate_when_the_site_says_so(
    make_site: Callable[..., SiteFolder],
    bert_bundle: Path,
    keypair: tuple[Path, Path],
    tmp_path: Path,
    waiter: Callable[..., Any],
) -> None:
    settings = SETTINGS | {"groups": {"min_labels": 5, "max_drop_pts": 5.0, "unjudged": "hold"}}
    with Agent.open(make_site(settings=settings)) as agent:
        agent.install(_constant(bert_bundle, keypair[0], tmp_path / "ok", "ok", 1), actor="supervisor")
        agent.install(_constant(bert_bundle, keypair[0], tmp_path / "dent", "dent", 2), actor="supervisor")
        for line, count in (("L1", 40), ("L4", 3)):  # the candidate is right on every one
            texts = [f"dent {i} on the {line.lower()} rim" for i in range(count)]
            answers = agent.predict([Item("text", t, t.encode(), {"line": line}, "operator") for t in texts])
            agent.store.add_to_audit_sample([answer.input_id for answer in answers])
            for answer in answers:
                agent.store.add_label(answer.input_id, "dent", actor="operator", split="holdout")
        candidate = agent.active.candidate
        assert candidate is not None
        waiter(lambda: agent.store.stage_count(candidate.model_id, "shadow", 0.0) >= 43, what="answers")
        report = agent.gate_report()
    assert report is not None and report.ready
    gates = {gate.name: gate for gate in report.gates}
    assert gates["accuracy"].passed
    assert not gates["groups"].passed
    assert "no group shown harmed" in gates["groups"].detail
    assert "unjudged (5 held-out labels needed, holding the candidate): line=L4" in gates["groups"].detail
