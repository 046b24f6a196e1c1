"""Staged rollout: the stages a candidate goes through and the gates that let it advance.

Stages: ``shadow`` (answers stored, never returned) → ``pilot`` (returned as a
marked suggestion) → ``production``. Every figure a gate uses comes from the
site store: candidate answers in the current stage, agreement with production on
the same inputs, accuracy on held-out operator labels (labels no training saw),
and the candidate's p95 latency.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from edge_agent.config import GateConfig
from edge_agent.store import SiteStore, SlotRow
from genba.errors import RolloutError

STAGES = ("shadow", "pilot", "production")
CANDIDATE_STAGES = ("shadow", "pilot")

#: Accuracy of one model on the held-out labels given as ``(input_id, label)`` (None if it cannot be had).
AccuracyFn = Callable[[int, Sequence[tuple[int, str]]], float | None]


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
    accuracy_of: AccuracyFn,
) -> GateReport:
    items = store.stage_count(candidate.model_id, candidate.stage, candidate.since)
    gates = (
        _items_gate(items, config),
        _agreement_gate(store, config, candidate, production),
        _accuracy_gate(store, config, candidate, production, accuracy_of, ready=items >= config.min_items),
        _latency_gate(store, config, candidate),
    )
    return GateReport(
        model_id=candidate.model_id,
        stage=candidate.stage,
        items=items,
        ready=items >= config.min_items,
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


def _accuracy_gate(
    store: SiteStore,
    config: GateConfig,
    candidate: SlotRow,
    production: SlotRow,
    accuracy_of: AccuracyFn,
    ready: bool,
) -> Gate:
    limit = -config.max_accuracy_drop_pts
    if not ready:  # both models over every held-out label is the costly part: only once it can decide
        return Gate("accuracy", False, None, limit, "judged once the candidate has answered enough items")
    held_out = store.labelled_keys("holdout")
    if len(held_out) < config.min_labels:
        return Gate(
            "accuracy",
            False,
            None,
            limit,
            f"{len(held_out)} held-out operator labels, {config.min_labels} needed",
        )
    ours = accuracy_of(candidate.model_id, held_out)
    theirs = accuracy_of(production.model_id, held_out)
    if ours is None or theirs is None:
        return Gate("accuracy", False, None, limit, "accuracy cannot be computed for these models")
    delta_pts = round((ours - theirs) * 100.0, 2)
    return Gate(
        "accuracy",
        delta_pts >= limit,
        delta_pts,
        limit,
        f"candidate {ours:.1%} vs production {theirs:.1%} on {len(held_out)} held-out labels",
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
