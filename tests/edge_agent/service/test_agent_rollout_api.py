"""The agent end to end: a real `genba agent serve` process, a real bundle, the typed client."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

from edge_agent.config import StoreConfig
from edge_agent.service.client import AgentClient
from edge_agent.site import SiteFolder
from edge_agent.split import SplitRule

TEXTS = [
    "scratch on the housing surface",
    "dent near the flange",
    "part ok no issues found",
    "left rim dent",
    "surface scratch on line two",
    "good part",
    "oil on the bracket",
    "deep scratch near the rim",
]


#: Reports site-a's agent holds out (its rule decides, by content): their labels are what the gates judge on.
RULE = SplitRule("site-a", StoreConfig().holdout_fraction)
HELD_OUT = [
    report
    for report in (f"{text}, report {n}" for n in range(100) for text in TEXTS)
    if RULE.split_for("text", report.encode()) == "holdout"
]


def _feed(client: AgentClient, rounds: int) -> list[Any]:
    return [client.predict(text, groups={"line": "L1"}) for _ in range(rounds) for text in TEXTS]


def _label_holdout(client: AgentClient, count: int) -> None:
    """The operators confirm production's answers on ``count`` reports the agent holds out."""
    assert len(HELD_OUT) >= count
    for text in HELD_OUT[:count]:
        answer = client.predict(text, groups={"line": "L1"})
        assert client.label(answer.input_id, str(answer.label), operator_seconds=2.5).split == "holdout"


def test_predict_label_and_queue(
    make_site: Callable[..., SiteFolder], agent_process: Callable[..., Any], bundle_versions: dict[int, Path]
) -> None:
    site = make_site()
    agent = agent_process(site)
    with agent.client() as client:
        client.install(bundle_versions[1])
        single = client.predict(TEXTS[0], groups={"line": "L2"})
        batch = client.predict_batch(TEXTS[:4])
        assert (
            single.model.version == 1
            and single.stage == "production"
            and single.provider == "CPUExecutionProvider"
            and single.model.variant == "cpu"  # the bundle's cpu variant: no GPU here
        )
        assert single.label in single.scores and abs(sum(single.scores.values()) - 1.0) < 1e-4
        assert [r.input_id for r in batch] == sorted(r.input_id for r in batch)
        other = next(label for label in single.scores if label != single.label)
        corrected = client.label(single.input_id, other, operator_seconds=3.0)
        assert corrected.is_correction and corrected.split in ("train", "holdout")
        queued = {entry.input_id for entry in client.queue(limit=50)}
        assert single.input_id not in queued and {r.input_id for r in batch} <= queued
    with sqlite3.connect(site.store_file) as db:
        stored = db.execute(
            "SELECT label, provider, stage, served FROM predictions WHERE input_id = ?", (single.input_id,)
        ).fetchall()
        groups = db.execute("SELECT groups FROM inputs WHERE id = ?", (single.input_id,)).fetchone()[0]
    assert stored == [(single.label, "CPUExecutionProvider", "production", 1)]
    assert '"L2"' in groups


def test_candidate_walks_shadow_pilot_production_through_the_gates_then_rolls_back(
    make_site: Callable[..., SiteFolder],
    agent_process: Callable[..., Any],
    bundle_versions: dict[int, Path],
    waiter: Callable[..., Any],
    agent_harness: Any,
) -> None:
    # Both versions agree on the 8 held-out labels: with a 60-point non-inferiority margin the
    # gates can decide on so few (the statistics themselves: test_evidence.py, bench/rollout_safety.py).
    settings = agent_harness.TEST_SETTINGS
    site = make_site(settings=settings | {"gates": settings["gates"] | {"max_accuracy_drop_pts": 60.0}})
    agent = agent_process(site)
    with agent.client() as client:
        client.install(bundle_versions[1])
        _label_holdout(client, 8)
        installed = client.install(bundle_versions[2])
        assert installed.slot == "candidate"
        assert client.status().candidate.stage == "shadow"
        shadow_answers = _feed(client, 2)
        assert all(
            a.suggestion is None and a.model.version == 1 for a in shadow_answers
        )  # shadow: never returned
        waiter(
            lambda: client.status().candidate.stage == "pilot",
            what="gates moving the candidate to pilot",
        )
        pilot = client.predict(TEXTS[1])
        assert pilot.model.version == 1 and pilot.suggestion is not None
        assert pilot.suggestion.stage == "pilot" and pilot.suggestion.model.version == 2
        _label_holdout(client, 8)  # pilot is judged on labels given in pilot only
        _feed(client, 2)
        waiter(
            lambda: getattr(client.status().production, "version", None) == 2,
            what="gates promoting to production",
        )
        status = client.status()
        assert status.candidate is None and status.production.provider == "CPUExecutionProvider"
        production = status.production
        assert (production.variant, production.placement) == ("cpu", None)
        assert production.variant_reason == "provider policy cpu" and production.precision == "fp32"
        assert client.predict(TEXTS[2]).model.version == 2

        back = client.rollback()
        assert back.rolled_back_to.version == 1 and client.predict(TEXTS[3]).model.version == 1
        events = [e.fields["event"] for e in reversed(client.audit(limit=100).entries)]
        assert client.audit().verified is True
    for expected in ("install", "advance", "promote", "rollback"):
        assert expected in events
    assert (
        events.index("install") < events.index("advance") < events.index("promote") < events.index("rollback")
    )
    decisions = _decisions(site)
    assert ("shadow", "pilot", "gates", "advance") in decisions
    assert ("pilot", "production", "gates", "advance") in decisions


def _decisions(site: SiteFolder) -> list[tuple[str, str, str, str]]:
    with sqlite3.connect(site.store_file) as db:
        return db.execute("SELECT from_stage, to_stage, actor, outcome FROM stage_decisions").fetchall()


def test_a_supervisor_may_promote_without_waiting_for_the_gates(
    make_site: Callable[..., SiteFolder], agent_process: Callable[..., Any], bundle_versions: dict[int, Path]
) -> None:
    site = make_site(settings={"runtime": {"provider": "cpu"}, "gates": {"auto_advance": False}})
    agent = agent_process(site)
    with agent.client() as client:
        client.install(bundle_versions[1])
        client.install(bundle_versions[2])
        result = client.promote("production")
        assert result.promoted and result.stage == "production"
        assert client.status().production.version == 2
    assert ("shadow", "production", "supervisor", "advance") in _decisions(site)


def test_a_restart_keeps_models_stage_predictions_and_chains(
    make_site: Callable[..., SiteFolder], agent_process: Callable[..., Any], bundle_versions: dict[int, Path]
) -> None:
    site = make_site(settings={"runtime": {"provider": "cpu"}, "gates": {"auto_advance": False}})
    agent = agent_process(site)
    with agent.client() as client:
        client.install(bundle_versions[1])
        client.install(bundle_versions[2])
        client.promote()  # shadow -> pilot
        answers = _feed(client, 1)
        client.label(answers[0].input_id, answers[0].label)
        before = client.status()
        kpis_before = client.kpis().summary
    assert agent.stop() == 0
    assert not site.address_file.exists()  # a stopped agent leaves no address behind

    again = agent_process(site)
    with again.client() as client:
        after = client.status()
        assert after.production.version == before.production.version == 1
        assert after.candidate.version == 2 and after.candidate.stage == "pilot"
        assert client.kpis().summary.predictions == kpis_before.predictions
        assert client.audit().verified and client.egress().verified
        assert client.predict(TEXTS[0]).suggestion is not None  # still in pilot after the restart


def _spoil_head(root: Path) -> None:
    """Negate the head's weights: the candidate now ranks every class the other way round."""
    import numpy as np
    import onnx
    from onnx import numpy_helper

    model = onnx.load(root / "head.onnx")
    for index, tensor in enumerate(model.graph.initializer):
        spoiled = numpy_helper.from_array(-numpy_helper.to_array(tensor), tensor.name)
        model.graph.initializer[index].CopyFrom(spoiled)
    onnx.save(model, root / "head.onnx")
    assert np.any(numpy_helper.to_array(model.graph.initializer[0]) != 0)


def test_a_candidate_worse_on_held_out_labels_is_held_in_shadow(
    make_site: Callable[..., SiteFolder],
    agent_process: Callable[..., Any],
    bundle_versions: dict[int, Path],
    make_version: Callable[..., Path],
    waiter: Callable[..., Any],
) -> None:
    site = make_site()
    agent = agent_process(site)
    worse = make_version(bundle_versions[1], 5, edit=_spoil_head)
    with agent.client() as client:
        client.install(bundle_versions[1])
        _label_holdout(client, 8)
        client.install(worse)
        _feed(client, 3)
        held = waiter(
            lambda: [d for d in client.gates().decisions if d.outcome == "hold"],
            what="the gates holding the candidate back",
        )
        assert (held[0].from_stage, held[0].to_stage, held[0].actor) == ("shadow", "pilot", "gates")
        report = client.gates().gates
        assert report is not None
        gates = {g.name: g for g in report.gates}
        accuracy = gates["accuracy"]
        assert accuracy.passed is False and accuracy.value is not None and accuracy.value < 0
        assert gates["items"].passed is True
        _feed(client, 1)
        status = client.status()
        assert status.candidate.version == 5 and status.candidate.stage == "shadow"
        assert status.production.version == 1
