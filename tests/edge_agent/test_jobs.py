"""Training jobs on a real agent: however a job ends, ``DATA/candidates`` keeps nothing of it."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from edge_agent.agent import Agent
from edge_agent.answers import Item
from edge_agent.config import StoreConfig
from edge_agent.jobs import TrainingJob
from edge_agent.site import SiteFolder
from edge_agent.split import SplitRule
from genba.errors import InstallRefusedError

REPORTS = {
    "scratch": ["scratch on the housing", "long scratch near the rim", "surface scratch on part 4711",
                "scratch across the cover", "fine scratch left side", "deep scratch on the bracket"],
    "dent": ["dent near the flange", "left rim dent", "small dent on the cover",
             "dent in the housing", "large dent right side", "dent at the screw boss"],
    "ok": ["part ok no issues found", "good part", "no defect, passed",
           "clean surface, ok", "passed inspection", "ok no findings"],
}  # fmt: skip
RULE = SplitRule("site-a", StoreConfig().holdout_fraction)


@pytest.fixture
def agent(
    make_site: Callable[..., SiteFolder], bundle_versions: dict[int, Path], agent_harness: Any
) -> Iterator[Agent]:
    site = make_site(settings={**agent_harness.TEST_SETTINGS, "gates": {"auto_advance": False}})
    with Agent.open(site) as opened:
        opened.install(bundle_versions[1], actor="supervisor")
        yield opened


def _label(agent: Agent, reports: dict[str, list[str]]) -> None:
    for label, texts in reports.items():
        answers = agent.predict([Item("text", t, t.encode(), {}, "operator") for t in texts])
        for answer in answers:
            agent.label(answer.input_id, label, actor="operator")


def _finished(agent: Agent, waiter: Callable[..., Any]) -> TrainingJob:
    job = waiter(lambda: agent.training.current if agent.training.current.state != "running" else None,
                 timeout=180, what="the training job")  # fmt: skip
    assert isinstance(job, TrainingJob)
    return job


def _leftovers(agent: Agent) -> list[Path]:
    folder = agent.site.root / "candidates"
    return sorted(folder.iterdir()) if folder.exists() else []


def _finished_entries(agent: Agent) -> list[dict[str, Any]]:
    return [e.fields["details"] for e in agent.store.audit(limit=100, event="train_finished")]


def test_a_job_that_training_refuses_fails_with_its_message_and_leaves_no_folder(
    agent: Agent, waiter: Callable[..., Any]
) -> None:
    texts = REPORTS["ok"]
    assert any(RULE.split_for("text", t.encode()) == "train" for t in texts)
    _label(agent, {"ok": texts})  # one class only: training refuses before it writes anything
    agent.training.start(mode="head", actor="supervisor")
    job = _finished(agent, waiter)
    assert job.state == "failed" and job.result is None
    assert job.message is not None and "a single class" in job.message and "\n" not in job.message
    assert _leftovers(agent) == []
    assert _finished_entries(agent)[0] == {"job": job.id, "state": "failed", "message": job.message}
    assert agent.describe_active()["candidate"] is None


def test_a_candidate_the_agent_refuses_to_install_leaves_no_folder(
    agent: Agent, waiter: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    _label(agent, REPORTS)

    def refuse(source: Path, *, actor: str, rollback: bool = False) -> dict[str, Any]:
        assert (source / "manifest.json").is_file()  # the child did write its bundle
        raise InstallRefusedError("refused for the test")

    monkeypatch.setattr(agent, "install", refuse)
    agent.training.start(mode="head", actor="supervisor")
    job = _finished(agent, waiter)
    assert (job.state, job.message) == ("failed", "refused for the test")
    assert _leftovers(agent) == []


def test_two_jobs_started_within_one_second_both_install_and_leave_no_folder(
    agent: Agent, waiter: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    _label(agent, REPORTS)
    monkeypatch.setattr(time, "strftime", lambda *_: "20250101-120000")  # both jobs get one id
    installed = []
    for seed in (1, 2):
        agent.training.start(mode="head", actor="supervisor", seed=seed)
        job = _finished(agent, waiter)
        assert job.state == "succeeded", job.message
        assert _leftovers(agent) == []
        assert job.result is not None
        bundle = Path(job.result["training"]["bundle"])  # the installed copy, not the job's folder
        assert bundle.parent == agent.site.models_dir and (bundle / "manifest.json").is_file()
        installed.append(job.result["installed"])
    labels = [f"{m['name']} v{m['version_label']}" for m in installed]
    assert len(set(labels)) == 2
    assert agent.describe_active()["candidate"]["model_id"] == installed[1]["model_id"]
    entries = _finished_entries(agent)  # newest first
    assert [(e["state"], e["model"]) for e in entries] == [("succeeded", labels[1]), ("succeeded", labels[0])]
