"""The agent splits labels by content, counts the candidates each held-out set judged, and renews it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from edge_agent.agent import Agent
from edge_agent.answers import Item
from edge_agent.site import SiteFolder

SETTINGS = {
    "runtime": {"provider": "cpu", "intra_op_threads": 1},
    # every held-out label counts: the epochs are the subject here, not the audit sample
    "gates": {
        "auto_advance": False,
        "evaluate_every_s": 3600,
        "min_items": 4,
        "min_labels": 3,
        "evidence": "all",
    },
    "store": {"holdout_reuse_limit": 2},
}


def _item(text: str) -> Item:
    return Item("text", text, text.encode(), {}, "operator")


def _texts(agent: Agent, split: str, count: int, prefix: str) -> list[str]:
    """Reports the site's rule puts on ``split``, found by trying (the rule is the agent's, not ours)."""
    pool = (f"{prefix} report {n} on the rim" for n in range(10_000))
    found = [t for t in pool if agent.split_rule.split_for("text", t.encode()) == split]
    return found[:count]


@pytest.fixture
def agent(make_site: Callable[..., SiteFolder], bundle_versions: dict[int, Path]) -> Iterator[Agent]:
    with Agent.open(make_site(settings=SETTINGS)) as opened:
        opened.install(bundle_versions[1], actor="supervisor")
        yield opened


def _judge(agent: Agent, texts: list[str], waiter: Callable[..., Any]) -> dict[str, Any]:
    """Shadow answers enough for the gates, then a supervisor's promotion records their report."""
    candidate = agent.active.candidate
    assert candidate is not None
    agent.predict([_item(t) for t in texts])
    waiter(lambda: agent.store.stage_count(candidate.model_id, "shadow", 0.0) >= len(texts), what="shadow")
    return agent.promote(actor="supervisor")


def test_labels_are_split_by_content_and_a_twin_follows_its_original(agent: Agent) -> None:
    held, trained = _texts(agent, "holdout", 1, "a")[0], _texts(agent, "train", 1, "a")[0]
    answers = agent.predict([_item(t) for t in (held, f"  {held.upper()} ", trained, trained.title())])
    splits = [agent.label(a.input_id, "ok", actor="operator").split for a in answers]
    assert splits == ["holdout", "holdout", "train", "train"]
    assert [i for i, _ in agent.store.labelled_keys("train")] == [answers[3].input_id, answers[2].input_id]


def test_the_held_out_set_is_renewed_after_the_reuse_limit_and_status_shows_it(
    agent: Agent, bundle_versions: dict[int, Path], waiter: Callable[..., Any]
) -> None:
    held_out = _texts(agent, "holdout", 5, "b")
    answers = agent.predict([_item(t) for t in held_out])
    for answer in answers:
        assert (
            agent.label(answer.input_id, answer.production.label or "ok", actor="operator").split == "holdout"
        )
    before = agent.status()["holdout"]
    counts = (before["epoch"], before["labels"], before["candidates_judged"], before["reuse_limit"])
    assert counts == (0, 5, 0, 2)

    agent.install(bundle_versions[2], actor="supervisor")
    first = _judge(agent, held_out, waiter)
    assert first["promoted"] and first["gates"]["ready"]
    assert agent.status()["holdout"]["candidates_judged"] == 1 and agent.status()["holdout"]["epoch"] == 0

    agent.install(bundle_versions[3], actor="supervisor")  # the next candidate, judged on the same set
    assert _judge(agent, held_out, waiter)["promoted"]
    after = agent.status()["holdout"]
    counts = (after["epoch"], after["labels"], after["history_labels"], after["candidates_judged"])
    assert counts == (1, 0, 5, 0)
    assert "2 candidates judged on held-out set 0" in after["reason"]

    agent.predict([_item(t) for t in held_out])  # v3 answers in pilot: its gates can decide again
    report = agent.gate_report()  # ... but no longer on the used set
    assert report is not None and report.ready and report.stage == "pilot"
    accuracy = next(g for g in report.gates if g.name == "accuracy")
    assert accuracy.value is None and "0 held-out operator labels" in accuracy.detail
    (fresh,) = agent.predict([_item(_texts(agent, "holdout", 6, "b")[5])])
    agent.label(fresh.input_id, "ok", actor="operator")
    assert agent.store.labelled_keys("holdout") == [(fresh.input_id, "ok")]
    assert agent.status()["holdout"]["labels"] == 1


def test_the_reuse_limit_is_a_store_setting_with_a_default_of_ten(tmp_path: Path, keypair: Any) -> None:
    from edge_agent.config import config_from_mapping, load_agent_config
    from edge_agent.site_init import init_site
    from genba.errors import ConfigError

    site = init_site(tmp_path / "data", site_name="line-3", trust=[keypair[1]])
    assert "holdout_reuse_limit = 10" in site.config_file.read_text(encoding="utf-8")
    assert load_agent_config(site.config_file).store.holdout_reuse_limit == 10
    for bad in (0, 2.5, True):
        with pytest.raises(ConfigError, match="store.holdout_reuse_limit"):
            config_from_mapping({"store": {"holdout_reuse_limit": bad}})


def test_a_candidate_held_before_and_after_its_held_out_labels_counts_as_judged(
    agent: Agent, bundle_versions: dict[int, Path], waiter: Callable[..., Any]
) -> None:
    agent.install(bundle_versions[2], actor="supervisor")
    candidate = agent.active.candidate
    assert candidate is not None
    texts = _texts(agent, "holdout", 5, "c")
    agent.predict([_item(t) for t in texts])
    waiter(lambda: agent.store.stage_count(candidate.model_id, "shadow", 0.0) >= 5, what="shadow")
    agent.slots.advance_if_gates_pass()  # ready, no held-out labels yet: held, not judged
    assert agent.status()["holdout"]["candidates_judged"] == 0
    for answer in agent.predict([_item(t) for t in texts]):
        agent.label(answer.input_id, answer.production.label or "ok", actor="operator")  # 5 ties: too few
    agent.slots.advance_if_gates_pass()
    agent.slots.advance_if_gates_pass()  # recorded once
    assert agent.status()["holdout"]["candidates_judged"] == 1
    holds = [d for d in agent.store.decisions(candidate.model_id) if d["outcome"] == "hold"]
    assert len(holds) == 2
