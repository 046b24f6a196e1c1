"""The agent as a library: failures of a candidate never cost production, refusals leave nothing behind."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from edge_agent.agent import Agent
from edge_agent.answers import Item
from edge_agent.site import SiteFolder
from genba.errors import AgentUnavailableError, BundleFormatError, InstallRefusedError, RolloutError
from genba.versions import ModelVersion


def _item(text: str) -> Item:
    return Item("text", text, text.encode(), {}, "operator")


@pytest.fixture
def agent(make_site: Callable[..., SiteFolder], bundle_versions: dict[int, Path]) -> Iterator[Agent]:
    # No audit draws: an input drawn at random would come first in the queue, whatever its margin.
    settings = {"runtime": {"provider": "cpu"}, "gates": {"auto_advance": False}}
    settings["store"] = {"audit_share": 0.0}
    site = make_site(settings=settings)
    with Agent.open(site) as opened:
        opened.install(bundle_versions[1], actor="supervisor")
        yield opened


def _break(model: Any) -> None:
    def broken(items: Any) -> Any:
        raise RuntimeError("the candidate's graph failed")

    model.model.predict_arrays = broken


def test_a_failing_pilot_costs_its_suggestion_never_the_production_answer(
    agent: Agent, bundle_versions: dict[int, Path]
) -> None:
    agent.install(bundle_versions[2], actor="supervisor")
    agent.promote(actor="supervisor", to_stage="pilot")
    _break(agent.active.candidate)
    (answer,) = agent.predict([_item("dent near the flange")])
    assert answer.production.model["version"] == 1 and answer.suggestion is None
    assert any("pilot answers" in p and "RuntimeError" in p for p in agent.status()["problems"])


def test_a_failing_shadow_worker_keeps_running_and_close_never_hangs(
    agent: Agent, bundle_versions: dict[int, Path]
) -> None:
    agent.install(bundle_versions[2], actor="supervisor")
    _break(agent.active.candidate)
    for _ in range(40):  # more jobs than the shadow queue holds once the worker stalls
        agent.predict([_item("scratch on the rim")])
    assert any("shadow answers" in p for p in agent.status()["problems"])
    assert all(thread.is_alive() for thread in agent._threads)
    started = time.monotonic()
    agent.close()
    assert time.monotonic() - started < 10
    agent.store = type(agent.store)(agent.site.store_file)  # let the fixture's close() succeed


def test_refused_installs_write_nothing(
    agent: Agent, bundle_versions: dict[int, Path], make_version: Callable[..., Path]
) -> None:
    agent.install(bundle_versions[3], actor="supervisor")
    agent.promote(actor="supervisor", to_stage="production")
    before = sorted(p.name for p in agent.site.models_dir.iterdir())
    image_model = make_version(
        bundle_versions[1], 9,
        manifest_update={"task": "image-classification",
                         "input": {"kind": "image", "graph_inputs": ["pixel_values"], "height": 8, "width": 8,
                                   "rescale_factor": 1.0, "mean": [0, 0, 0], "std": [1, 1, 1]}},
    )  # fmt: skip
    with pytest.raises(InstallRefusedError, match="image input, but this site's production"):
        agent.install(image_model, actor="supervisor")
    with pytest.raises(InstallRefusedError, match="older than production"):
        agent.install(bundle_versions[2], actor="supervisor")
    unloadable = make_version(
        bundle_versions[1], 10, edit=lambda root: (root / "head.onnx").write_bytes(b"no")
    )
    with pytest.raises(BundleFormatError, match="cannot be loaded"):
        agent.install(unloadable, actor="supervisor")
    malformed = make_version(bundle_versions[1], 11, manifest_update={"variants": {"cuda": "backbone.onnx"}})
    with pytest.raises(BundleFormatError, match="variant 'cuda' is malformed"):
        agent.install(malformed, actor="supervisor")
    assert sorted(p.name for p in agent.site.models_dir.iterdir()) == before
    assert agent.store.find_model("tiny-bert", 10) is None and agent.store.find_model(None, 10) is None
    assert agent.active.production is not None and agent.active.production.version == ModelVersion(3)


def test_rolling_back_to_the_candidate_says_to_promote_it(
    agent: Agent, bundle_versions: dict[int, Path]
) -> None:
    agent.install(bundle_versions[2], actor="supervisor")
    with pytest.raises(RolloutError, match="is the candidate; promote it"):
        agent.rollback(actor="supervisor", version=2)


def test_a_relabelled_input_keeps_its_first_split(agent: Agent) -> None:
    """Labels from before the content rule (split by input id) keep their split when relabelled."""
    texts = (f"oil on the bracket {n}" for n in range(1000))
    held_out = next(t for t in texts if agent.split_rule.split_for("text", t.encode()) == "holdout")
    (answer,) = agent.predict([_item(held_out)])
    first = agent.store.add_label(
        answer.input_id, answer.production.label or "", actor="operator", split="train"
    )
    again = agent.label(answer.input_id, answer.production.label or "", actor="operator")
    assert first.split == again.split == "train"


def test_the_queue_asks_for_the_least_certain_items_without_near_duplicates(agent: Agent) -> None:
    texts = ["scratch on the rim"] * 6 + ["dent on the cover", "oil near the bracket", "misaligned pin 4"]
    agent.predict([_item(text) for text in texts])
    queue = agent.queue(limit=3)
    assert len(queue) == 3
    asked = [entry.payload for entry in queue]
    assert asked.count(b"scratch on the rim") <= 1  # the same report is not asked for again
    stored = agent.store.uncertain_unlabelled(limit=100)
    margins = {entry.input_id: entry.margin for entry in stored}
    least = min(margins.values())
    assert margins[queue[0].input_id] == least


def test_a_training_process_never_outlives_the_agent(agent: Agent) -> None:
    answers = agent.predict([_item(t) for t in ("scratch on the rim", "dent on the cover", "good part")])
    for answer, label in zip(answers, ("scratch", "dent", "ok"), strict=True):
        agent.store.add_label(answer.input_id, label, actor="operator", split="train")
    agent.training.start(mode="head", actor="supervisor")
    deadline = time.monotonic() + 30
    while agent.training._child is None and time.monotonic() < deadline:
        time.sleep(0.01)
    child = agent.training._child
    assert child is not None and child.poll() is None  # still loading torch
    agent.close()
    assert child.poll() is not None
    agent.store = type(agent.store)(agent.site.store_file)  # let the fixture's close() succeed


def test_an_agent_opened_only_to_change_slots_refuses_to_answer_instead_of_waiting(
    make_site: Callable[..., SiteFolder], bundle_versions: dict[int, Path]
) -> None:
    site = make_site(settings={"runtime": {"provider": "cpu"}})
    with Agent.open(site, serving=False) as offline:
        offline.install(bundle_versions[1], actor="supervisor")
        with pytest.raises(AgentUnavailableError, match="not to serve; start it with 'genba agent serve'"):
            offline.predict([_item("scratch on the housing")])


def test_an_answer_is_explained_word_by_word_once_then_from_the_cache(agent: Agent) -> None:
    from genba.errors import UnknownItemError

    (answer,) = agent.predict([_item("scratch on the housing near the rim")])
    first = agent.explain(answer.input_id)
    assert first["cached"] is False and first["model"] == "tiny-bert v1"
    assert [w["text"] for w in first["words"]] == ["scratch", "on", "the", "housing", "near", "the", "rim"]
    assert first["label"] == answer.production.to_json()["label"]
    again = agent.explain(answer.input_id)
    assert again["cached"] is True and again["words"] == first["words"]
    with pytest.raises(UnknownItemError, match="input 999999 does not exist"):
        agent.explain(999_999)


def _latencies(agent: Agent, stage: str) -> list[tuple[float, float]]:
    with closing(sqlite3.connect(agent.site.store_file)) as conn:
        rows = conn.execute(
            "SELECT latency_ms, caller_latency_ms FROM predictions WHERE stage = ? ORDER BY id", (stage,)
        )
        return [(float(model), float(caller)) for model, caller in rows]


def test_the_latency_stored_is_what_the_caller_saw_queueing_included(agent: Agent) -> None:
    """An item that reached the agent 3 s before its batch ran (it queued) is stored with those 3 s;
    the model's own time for the batch is kept beside it."""
    queued = Item(
        "text", "dent near the flange", b"dent near the flange", {}, "operator", time.perf_counter() - 3.0
    )
    agent.predict([queued, _item("scratch on the rim")])
    (queued_row, fresh_row) = _latencies(agent, "production")
    assert queued_row[1] >= 3000.0 > queued_row[0]
    assert fresh_row[1] >= fresh_row[0] and fresh_row[1] < queued_row[1]


def test_pilot_and_shadow_answers_carry_the_latency_a_caller_saw_or_would_have(
    agent: Agent, bundle_versions: dict[int, Path]
) -> None:
    agent.install(bundle_versions[2], actor="supervisor")
    queued = Item("text", "dent", b"dent", {}, "operator", time.perf_counter() - 3.0)
    agent.predict([queued])  # shadow: answered by the shadow worker afterwards
    deadline = time.monotonic() + 60
    while not _latencies(agent, "shadow") and time.monotonic() < deadline:
        time.sleep(0.05)
    [(shadow_model, shadow_caller)] = _latencies(agent, "shadow")
    assert shadow_caller >= 3000.0 and shadow_caller >= shadow_model
    agent.promote(actor="supervisor", to_stage="pilot")
    agent.predict([Item("text", "dent again", b"dent again", {}, "operator", time.perf_counter() - 3.0)])
    [(_, pilot_caller)] = _latencies(agent, "pilot")
    assert pilot_caller == _latencies(agent, "production")[-1][1] >= 3000.0  # the caller waited for both


def test_ranking_the_queue_reuses_what_serving_computed(agent: Agent) -> None:
    """An operator's app polling the queue must not run the model over the pool each time."""
    agent.predict([_item(f"report {n}: dent near the flange, part {n}") for n in range(12)])
    production = agent.active.production
    assert production is not None
    _break(production)  # from here on, running the model would fail
    queue = agent.queue(limit=3)
    assert len(queue) == 3


def test_after_a_restart_the_queue_ranks_the_pool_a_bounded_batch_at_a_time(
    agent: Agent, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With nothing kept from serving (a restarted agent), ranking a large pool must not run the
    model over all of it at once: ONNX Runtime's arena would grow to that batch and stay there."""
    import edge_agent.labelling as labelling

    texts = [f"report {n}: {'dent near the flange ' * (1 + n % 7)}part {n}" for n in range(100)]
    for start in range(0, len(texts), 20):
        agent.predict([_item(text) for text in texts[start : start + 20]])
    production = agent.active.production
    assert production is not None
    real, batches = production.model.predict_arrays, []

    def counted(items: Any, prepared: Any = None) -> Any:
        batches.append(len(items))
        return real(items, prepared)

    production.model.predict_arrays = counted
    agent.ranking_vectors = labelling.RankingVectors()  # as a restarted agent holds
    in_batches = [item.input_id for item in agent.queue(limit=30)]
    assert batches and max(batches) <= labelling.RANKING_BATCH and sum(batches) == len(texts)
    agent.ranking_vectors = labelling.RankingVectors()
    monkeypatch.setattr(labelling, "RANKING_BATCH", len(texts))
    batches.clear()
    at_once = [item.input_id for item in agent.queue(limit=30)]
    assert batches == [len(texts)] and in_batches == at_once  # the same ranking either way


def test_the_daily_full_check_lists_an_audit_log_edited_by_hand(agent: Agent) -> None:
    agent.store.append_audit("promote", "supervisor", {"model_id": 1})
    assert agent.store.verify_chain("audit").ok
    with closing(sqlite3.connect(agent.site.store_file, isolation_level=None)) as conn:
        conn.execute("DROP TRIGGER audit_log_no_update")
        conn.execute("UPDATE audit_log SET actor = 'nobody' WHERE seq = 1")
    agent.check_chains()
    assert "the audit chain does not verify from entry 1 on" in agent.status()["problems"]


def test_status_evaluates_the_gates_no_more_often_than_the_gatekeeper(
    agent: Agent, bundle_versions: dict[int, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    import edge_agent.agent as agent_module

    agent.install(bundle_versions[2], actor="supervisor")  # a candidate in shadow: gates to evaluate
    evaluated: list[int] = []
    real = agent_module.evaluate_gates
    monkeypatch.setattr(agent_module, "evaluate_gates", lambda *a, **k: evaluated.append(1) or real(*a, **k))
    now = [1_000.0]
    agent.monotonic = lambda: now[0]
    first = agent.status()["gates"]
    assert agent.status()["gates"] == first and len(evaluated) == 1  # polled again at once: reused
    (answer,) = agent.predict([_item("dent near the flange")])
    agent.label(answer.input_id, "dent", actor="operator")
    agent.status()
    assert len(evaluated) == 2  # a label: evaluated again
    now[0] += agent.config.gates.evaluate_every_s
    agent.status()
    assert len(evaluated) == 3  # as old as the gatekeeper's pace: evaluated again
    agent.promote(actor="supervisor", to_stage="pilot")
    assert agent.status()["gates"]["stage"] == "pilot" and len(evaluated) >= 4  # other slots: new report
