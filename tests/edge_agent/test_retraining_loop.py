"""Three drift → retrain → promote cycles end to end on a real agent.

Each cycle: the site's words shift, the drift monitor asks for labels of the drifted window,
operators give them (and more), local training starts on its own, its candidate goes through
shadow and pilot on the real gates and becomes production, and the new production model takes
its first window of answers as its drift reference. The loop must turn more than once: every
cycle's candidate needs a version of its own at the site.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

from edge_agent.agent import Agent
from edge_agent.answers import Item
from edge_agent.config import StoreConfig
from edge_agent.site import SiteFolder
from edge_agent.split import HOLDOUT, TRAIN, SplitRule

#: The site's words over time: cycle k's production was established on VOCABULARIES[k] and drift
#: comes with VOCABULARIES[k + 1] (the tiny tokenizer knows the first, second and last lists; the
#: third is all unknown words).
VOCABULARIES = (
    ("scratch", "dent", "housing", "surface", "bracket", "screw", "rim", "flange", "good", "ok"),
    ("oil", "dust", "gasket", "clip", "missing", "part", "bad", "no", "found"),
    ("corrosion", "weld", "seam", "burr", "crack", "paint", "chip", "porosity", "warp"),
    ("on", "the", "a", "of", "at", "near", "left", "right", "line", "shift"),
)
#: What an operator answers, by the report's first word (the labelled reports start with it).
CLASSES = {"scratch": "scratch", "dent": "dent", "good": "ok"}
WINDOW = 80  # larger than a cycle's traffic after drift, so no second drift window fills meanwhile
REQUEST_LABELS = 4
MIN_ITEMS = 12
MIN_LABELS = 6
SETTINGS: dict[str, dict[str, Any]] = {
    "runtime": {"provider": "cpu", "intra_op_threads": 1},
    "gates": {
        "min_items": MIN_ITEMS,
        "min_labels": MIN_LABELS,
        "min_agreement": 0.0,  # a retrained head may disagree with a random one; accuracy judges it
        "max_accuracy_drop_pts": 50.0,  # non-inferiority a handful of held-out labels can establish
        "evidence": "all",
        "latency_p95_budget_ms": 5000.0,
        "auto_advance": False,  # the test calls the gatekeeper's own step, when it wants it
        "evaluate_every_s": 3600,
    },
    # one window of reference per model: the loop, not the reference's length, is the subject here
    "drift": {
        "window_items": WINDOW,
        "reference_windows": 1,
        "request_labels": REQUEST_LABELS,
        "train_on_drift": True,
    },
    "store": {"audit_share": 0.0},
}
RULE = SplitRule("site-a", StoreConfig().holdout_fraction)


class Reports:
    """Reports never seen before in this test (content decides a label's split: no repeats)."""

    def __init__(self) -> None:
        self.rng = random.Random(7)
        self.seen: set[str] = set()

    def random(self, words: tuple[str, ...], count: int) -> list[str]:
        rng = self.rng
        return [
            self._new(lambda: " ".join(rng.choice(words) for _ in range(rng.randint(4, 9))))
            for _ in range(count)
        ]

    def labelled(self, words: tuple[str, ...], split: str, count: int) -> list[str]:
        """``count`` new reports, classes in turn, that the site's rule puts on ``split``."""
        out: list[str] = []
        while len(out) < count:
            first = list(CLASSES)[len(out) % len(CLASSES)]
            text = self._new(lambda first=first: f"{first} {' '.join(self.rng.sample(words, 4))}")
            if RULE.split_for("text", text.encode()) == split:
                out.append(text)
        return out

    def _new(self, make: Callable[[], str]) -> str:
        while (text := make()) in self.seen:
            pass
        self.seen.add(text)
        return text


def _serve(agent: Agent, texts: list[str], seen: dict[int, str]) -> list[int]:
    answers = agent.predict([Item("text", t, t.encode(), {}, "operator") for t in texts])
    seen.update({a.input_id: t for a, t in zip(answers, texts, strict=True)})
    return [a.input_id for a in answers]


def _truth(text: str) -> str:
    return CLASSES.get(text.split()[0], "ok")


def _label(agent: Agent, input_ids: list[int], seen: dict[int, str]) -> None:
    for input_id in input_ids:
        agent.label(input_id, _truth(seen[input_id]), actor="operator")


def _advance(agent: Agent, to: str) -> None:
    """One step of the gatekeeper; the gates must move the candidate to ``to``."""
    report = agent.gate_report()
    agent.slots.advance_if_gates_pass()
    stage = agent.active.stage if agent.active.candidate is not None else "production"
    assert stage == to, report.to_json() if report else stage


def test_three_drift_retrain_promote_cycles_each_promote_a_new_site_candidate(
    make_site: Callable[..., SiteFolder], bundle_versions: dict[int, Path], waiter: Callable[..., Any]
) -> None:
    reports, seen = Reports(), dict[int, str]()
    site = make_site(settings=SETTINGS)
    with Agent.open(site) as agent:
        agent.install(bundle_versions[1], actor="supervisor")
        _serve(agent, reports.random(VOCABULARIES[0], WINDOW), seen)  # production's first window
        agent.check_drift()
        productions = [agent.active.production.describe()]
        for cycle in range(3):
            production = agent.active.production
            assert agent.store.drift_reference(production.model_id) is not None
            start = agent.store.audit(limit=1)[0].seq
            words = VOCABULARIES[cycle + 1]

            # The words shift: the window is drift, and the queue asks for its labels first.
            drifted = _serve(agent, reports.random(words, WINDOW), seen)
            agent.check_drift()
            assert agent.store.drift_checks(production.model_id, limit=1)[0]["status"] == "drift"
            # Operators label new reports (for training and the gates), then the requested ones.
            _label(agent, _serve(agent, reports.labelled(words, TRAIN, 9), seen), seen)
            _label(agent, _serve(agent, reports.labelled(words, HOLDOUT, MIN_LABELS), seen), seen)
            requested = [item.input_id for item in agent.queue(limit=REQUEST_LABELS)]
            assert set(requested) <= set(drifted)
            _label(agent, requested, seen)

            # Training starts on its own (the gatekeeper may have started it already).
            agent.train_on_drift()
            job = agent.training.current
            assert job is not None and job.actor == "drift"
            waiter(lambda job=job: job.state != "running", timeout=180, what=f"cycle {cycle + 1}'s training")
            assert job.state == "succeeded", job.message
            candidate = agent.describe_active()["candidate"]
            assert candidate is not None and candidate["stage"] == "shadow"
            assert candidate["model_id"] == job.result["installed"]["model_id"]

            # Shadow: the candidate answers alongside production, then the gates judge it.
            _serve(agent, reports.random(words, MIN_ITEMS + 4), seen)
            waiter(lambda: agent.gate_report().ready, timeout=60, what="shadow answers")
            _advance(agent, "pilot")
            # Pilot: fresh held-out labels on the pilot's own answers.
            _label(agent, _serve(agent, reports.labelled(words, HOLDOUT, MIN_ITEMS), seen), seen)
            _advance(agent, "production")
            assert agent.active.production.model_id == candidate["model_id"]
            productions.append(agent.active.production.describe())

            # The new production takes its first window as its drift reference.
            _serve(agent, reports.random(words, WINDOW), seen)
            agent.check_drift()
            reference = agent.store.drift_reference(candidate["model_id"])
            assert reference is not None and reference["items"] == WINDOW
            first = agent.store.drift_checks(candidate["model_id"], limit=1)[0]
            assert first["reference"] == "manifest" and first["status"] != "drift"

            label = f"{candidate['name']} v{candidate['version_label']}"
            events = [
                (e.fields["event"], e.fields["actor"])
                for e in reversed(agent.store.audit(limit=200))
                if e.seq > start and e.fields["event"] in {
                    "drift_drift", "train_started", "install", "train_finished", "advance", "promote",
                }
            ]  # fmt: skip
            assert events == [
                ("drift_drift", "system"), ("train_started", "drift"), ("install", "drift"),
                ("train_finished", "drift"), ("advance", "gates"), ("promote", "gates"),
            ], events  # fmt: skip
            finished = agent.store.audit(limit=1, event="train_finished")[0].fields["details"]
            assert finished["state"] == "succeeded" and finished["model"] == label

    versions = [(p["version"], p["revision"]) for p in productions]
    assert len(set(versions)) == 4, versions  # a new production every cycle
    assert len({p["model_id"] for p in productions}) == 4
    assert [p["version_label"] for p in productions] == ["1", "1.1", "1.2", "1.3"]
    assert not (site.root / "candidates").exists() or not any((site.root / "candidates").iterdir())
