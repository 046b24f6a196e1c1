"""Staged rollout: the stages a candidate goes through and the gates that let it advance.

Stages: ``shadow`` (answers stored, never returned) → ``pilot`` (returned as a
marked suggestion) → ``production``. Every figure a gate uses comes from the
site store: candidate answers in the current stage, agreement with production on
the same inputs, accuracy on held-out operator labels (labels no training saw),
the same accuracy group by group (no line, shift or product may fall more than
``groups.max_drop_pts`` behind production; groups too small to judge are listed as such),
and the candidate's p95 latency.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from edge_agent.config import GateConfig, GroupsConfig
from edge_agent.groups import accuracy_by_group, group_deltas
from edge_agent.store import SiteStore, SlotRow
from genba.errors import RolloutError

STAGES = ("shadow", "pilot", "production")
CANDIDATE_STAGES = ("shadow", "pilot")

#: One model's answer on each held-out input given as ``(input_id, label)`` (None if it cannot be had).
AnswersFn = Callable[[int, Sequence[tuple[int, str]]], Mapping[int, str | None] | None]


def next_stage(stage: str) -> str:
    if stage not in CANDIDATE_STAGES:
        raise RolloutError(f"a model in stage {stage!r} has no next stage")
    return STAGES[STAGES.index(stage) + 1]


def check_target(current: str, target: str) -> None:
    if target not in STAGES:
        raise RolloutError(f"unknown stage {target!r}; stages are {', '.join(STAGES)}")
    if STAGES.index(target) <= STAGES.index(current):
        raise RolloutError(f"the candidate is already in {current}; it can only move to a later stage")


@dataclass(frozen=True)
class Gate:
    name: str
    passed: bool
    value: float | None
    limit: float
    detail: str
    breakdown: tuple[dict[str, Any], ...] = ()  # the groups gate: one row per group


@dataclass(frozen=True)
class GateReport:
    model_id: int
    stage: str
    items: int
    ready: bool  # enough answers in this stage for an automatic decision
    passed: bool  # every gate passed
    gates: tuple[Gate, ...]

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["gates"] = [asdict(g) for g in self.gates]
        return out


def evaluate_gates(
    store: SiteStore,
    config: GateConfig,
    candidate: SlotRow,
    production: SlotRow,
    answers_of: AnswersFn,
    groups: GroupsConfig | None = None,
) -> GateReport:
    items = store.stage_count(candidate.model_id, candidate.stage, candidate.since)
    ready = items >= config.min_items
    judged = _Judged.of(store, config, candidate, production, answers_of) if ready else None
    gates = (
        _items_gate(items, config),
        _agreement_gate(store, config, candidate, production),
        _accuracy_gate(config, judged),
        _groups_gate(store, groups or GroupsConfig(), judged),
        _latency_gate(store, config, candidate),
    )
    return GateReport(
        model_id=candidate.model_id,
        stage=candidate.stage,
        items=items,
        ready=ready,
        passed=all(g.passed for g in gates),
        gates=gates,
    )


def _items_gate(items: int, config: GateConfig) -> Gate:
    return Gate(
        "items",
        items >= config.min_items,
        float(items),
        float(config.min_items),
        f"{items} answers in this stage, {config.min_items} needed",
    )


def _agreement_gate(store: SiteStore, config: GateConfig, candidate: SlotRow, production: SlotRow) -> Gate:
    compared, agreed = store.agreement(candidate.model_id, production.model_id, candidate.since)
    if compared == 0:
        return Gate("agreement", False, None, config.min_agreement, "no input answered by both models yet")
    share = agreed / compared
    return Gate(
        "agreement",
        share >= config.min_agreement,
        round(share, 4),
        config.min_agreement,
        f"agrees with production on {agreed} of {compared} inputs",
    )


@dataclass(frozen=True)
class _Judged:
    """Both models' answers on the held-out labels, or why there are none to judge with."""

    labels: dict[int, str]
    candidate: Mapping[int, str | None] | None
    production: Mapping[int, str | None] | None
    problem: str | None

    @classmethod
    def of(
        cls,
        store: SiteStore,
        config: GateConfig,
        candidate: SlotRow,
        production: SlotRow,
        answers_of: AnswersFn,
    ) -> _Judged:
        held_out = store.labelled_keys("holdout")
        if len(held_out) < config.min_labels:
            problem = f"{len(held_out)} held-out operator labels, {config.min_labels} needed"
            return cls(dict(held_out), None, None, problem)
        ours, theirs = answers_of(candidate.model_id, held_out), answers_of(production.model_id, held_out)
        if not ours or not theirs:
            return cls(dict(held_out), None, None, "accuracy cannot be computed for these models")
        return cls(dict(held_out), ours, theirs, None)

    def accuracy(self, answers: Mapping[int, str | None]) -> float:
        return sum(answers[i] == self.labels[i] for i in answers) / len(answers)


_NOT_READY = "judged once the candidate has answered enough items"


def _accuracy_gate(config: GateConfig, judged: _Judged | None) -> Gate:
    # Both models over every held-out label is the costly part: only once the gates can decide.
    limit = -config.max_accuracy_drop_pts
    if judged is None or judged.candidate is None or judged.production is None:
        return Gate("accuracy", False, None, limit, (judged.problem if judged else None) or _NOT_READY)
    ours, theirs = judged.accuracy(judged.candidate), judged.accuracy(judged.production)
    delta_pts = round((ours - theirs) * 100.0, 2)
    return Gate(
        "accuracy",
        delta_pts >= limit,
        delta_pts,
        limit,
        f"candidate {ours:.1%} vs production {theirs:.1%} on {len(judged.candidate)} held-out labels",
    )


def _groups_gate(store: SiteStore, groups: GroupsConfig, judged: _Judged | None) -> Gate:
    limit = -groups.max_drop_pts
    if judged is None or judged.candidate is None or judged.production is None:
        return Gate("groups", False, None, limit, (judged.problem if judged else None) or _NOT_READY)
    tags = store.group_tags(list(judged.labels))
    rows = group_deltas(
        accuracy_by_group(judged.labels, judged.candidate, tags, groups),
        accuracy_by_group(judged.labels, judged.production, tags, groups),
    )
    judged_rows = [r for r in rows if r["delta_pts"] is not None]
    small = [r["group"] for r in rows if r["too_small"]]
    note = f"; too few labels to judge ({groups.min_labels} needed): {', '.join(small)}" if small else ""
    if not judged_rows:
        detail = "no group has enough held-out labels to judge" if rows else "no input carries a group tag"
        return Gate("groups", True, None, limit, detail + note, tuple(rows))
    worst = min(judged_rows, key=lambda r: r["delta_pts"])
    return Gate(
        "groups",
        worst["delta_pts"] >= limit,
        worst["delta_pts"],
        limit,
        f"worst group {worst['group']}: candidate {worst['candidate']:.1%} vs production "
        f"{worst['production']:.1%} on {worst['labels']} labels{note}",
        tuple(rows),
    )


def _latency_gate(store: SiteStore, config: GateConfig, candidate: SlotRow) -> Gate:
    latencies = store.latencies(candidate.model_id, candidate.since, stage=candidate.stage)
    budget = config.latency_p95_budget_ms
    if not latencies:
        return Gate("latency_p95_ms", False, None, budget, "no timed answers in this stage yet")
    p95 = float(np.percentile(np.asarray(latencies), 95))
    return Gate(
        "latency_p95_ms",
        p95 <= budget,
        round(p95, 2),
        budget,
        f"p95 {p95:.1f} ms over {len(latencies)} answers, budget {budget:.0f} ms",
    )
