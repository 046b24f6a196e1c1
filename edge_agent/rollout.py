"""Staged rollout: the stages a candidate goes through and the gates that let it advance.

Stages: ``shadow`` (answers stored, never returned) → ``pilot`` (returned as a
marked suggestion) → ``production``. Every figure a gate uses comes from the
site store: candidate answers in the current stage, agreement with production on
the same inputs, accuracy on held-out operator labels (labels no training saw),
the same accuracy group by group (no line, shift or product may fall more than
``groups.max_drop_pts`` behind production; groups too small to judge are listed as such),
and the candidate's p95 latency as callers see it (queueing and batching included; in shadow,
what they would have seen had the candidate answered instead of production).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Protocol

import numpy as np

from edge_agent.config import GateConfig, GroupsConfig
from edge_agent.evidence import PairedEvidence, paired_evidence, sampled_evidence
from edge_agent.groups import members
from edge_agent.store import PairedAnswer, SiteStore, SlotRow
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
    evidence: dict[str, Any] | None = None  # the accuracy gate: labels, discordant pairs, bound


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
    judged: Evidence | None = None
    if ready:
        judged = (
            Sampled.of(store, config, candidate, production)
            if config.evidence == "disagreement"
            else Judged.of(store, config, candidate, production, answers_of)
        )
    gates = (
        _items_gate(items, config),
        _agreement_gate(store, config, candidate, production),
        accuracy_gate(config, judged),
        _groups_gate(store, config, groups or GroupsConfig(), judged),
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


class Evidence(Protocol):
    """What the accuracy and groups gates judge on: labelled held-out inputs (:class:`Judged`), or
    the paired sample's sequence with its drawn disagreements (:class:`Sampled`)."""

    @property
    def problem(self) -> str | None: ...  # why there is nothing to judge with (None: there is)

    @property
    def inputs(self) -> list[int]: ...  # the input ids judged on, in order (their groups are looked up)

    @property
    def unit(self) -> str: ...  # what ``groups.min_labels`` counts: "held-out labels" or "held-out inputs"

    def labelled(self, ids: Sequence[int]) -> int: ...  # how many of ``ids`` carry a label the gate uses

    def usable(self, ids: Sequence[int]) -> list[int]: ...

    def accuracies(self, ids: Sequence[int]) -> dict[str, float | None]: ...

    def evidence(
        self, ids: Sequence[int], threshold_pts: float, alpha: float, *, reverse: bool = False
    ) -> PairedEvidence: ...

    def describe(self, evidence: PairedEvidence) -> str: ...  # "on 40 held-out labels"


@dataclass(frozen=True)
class Sampled:
    """The paired sample in the candidate's stage: every held-out input both models answered, in
    the order served, up to the first drawn disagreement still waiting for its label."""

    pairs: tuple[PairedAnswer, ...]
    share: float
    waiting: int  # drawn disagreements after the sequence's end, not labelled yet
    problem: str | None = None

    @classmethod
    def of(cls, store: SiteStore, config: GateConfig, candidate: SlotRow, production: SlotRow) -> Sampled:
        rows = store.paired_sequence(
            candidate.model_id, production.model_id, candidate.stage, candidate.since
        )
        end = next((i for i, r in enumerate(rows) if r.drawn and r.outcome is None), len(rows))
        waiting = sum(r.drawn and r.outcome is None for r in rows[end:])
        problem = None if end else "no held-out input answered by both models in this stage yet"
        if not end and waiting:
            problem = "the first input drawn where the models disagree is waiting for its label"
        return cls(tuple(rows[:end]), config.disagreement_share, waiting, problem)

    @property
    def inputs(self) -> list[int]:
        return [pair.input_id for pair in self.pairs]

    @property
    def unit(self) -> str:
        return "held-out inputs both answered"  # an agreement is evidence too: it moves no difference

    def labelled(self, ids: Sequence[int]) -> int:
        wanted = set(ids)
        return sum(p.outcome is not None for p in self.pairs if p.input_id in wanted)

    def usable(self, ids: Sequence[int]) -> list[int]:
        return list(ids)

    def accuracies(self, ids: Sequence[int]) -> dict[str, float | None]:
        return {"candidate": None, "production": None}  # agreements carry no label: only the difference

    def evidence(
        self, ids: Sequence[int], threshold_pts: float, alpha: float, *, reverse: bool = False
    ) -> PairedEvidence:
        wanted = set(ids)
        sign = -1 if reverse else 1
        outcomes = [
            None if p.outcome is None else sign * p.outcome for p in self.pairs if p.input_id in wanted
        ]
        return sampled_evidence(outcomes, share=self.share, threshold_pts=threshold_pts, alpha=alpha)

    def describe(self, evidence: PairedEvidence) -> str:
        waiting = f"; {self.waiting} more drawn, waiting for labels" if self.waiting else ""
        lost = sum(pair.lost for pair in self.pairs)
        lost_note = f"; {lost} pruned before their label, counted as production's" if lost else ""
        return (
            f"on {evidence.items} held-out inputs both answered ({evidence.labels} labelled where they "
            f"disagree, drawn at {self.share:g}{lost_note}{waiting})"
        )


@dataclass(frozen=True)
class Judged:
    """Both models' answers on the held-out labels, or why there are none to judge with."""

    labels: dict[int, str]
    candidate: Mapping[int, str | None] | None
    production: Mapping[int, str | None] | None
    problem: str | None
    order: tuple[int, ...] = ()  # held-out input ids, oldest label first

    @classmethod
    def of(
        cls,
        store: SiteStore,
        config: GateConfig,
        candidate: SlotRow,
        production: SlotRow,
        answers_of: AnswersFn,
    ) -> Judged:
        held_out = store.gate_labels(  # newest label first
            audited_only=config.evidence == "audit",
            since=candidate.since if candidate.stage == "pilot" else None,  # pilot: fresh labels only
        )
        order = tuple(input_id for input_id, _ in reversed(held_out))
        if len(held_out) < config.min_labels:
            problem = f"{len(held_out)} {_evidence_name(config, candidate)}, {config.min_labels} needed"
            return cls(dict(held_out), None, None, problem, order)
        ours, theirs = answers_of(candidate.model_id, held_out), answers_of(production.model_id, held_out)
        if not ours or not theirs:
            return cls(dict(held_out), None, None, "accuracy cannot be computed for these models", order)
        return cls(dict(held_out), ours, theirs, None, order)

    @functools.cached_property
    def answered(self) -> frozenset[int]:
        """Held-out inputs both models answered."""
        return frozenset(self.candidate or {}) & frozenset(self.production or {})

    def usable(self, ids: Sequence[int]) -> list[int]:
        """``ids`` both models answered, in the order their labels came."""
        wanted = set(ids) & self.answered
        return [i for i in self.order if i in wanted]

    @property
    def inputs(self) -> list[int]:
        return list(self.labels)

    @property
    def unit(self) -> str:
        return "held-out labels"

    def labelled(self, ids: Sequence[int]) -> int:
        return len(ids)

    def describe(self, evidence: PairedEvidence) -> str:
        return f"on {evidence.labels} held-out labels"

    def accuracies(self, ids: Sequence[int]) -> dict[str, float | None]:
        """Each model's accuracy on ``ids`` (all answered by both)."""
        assert self.candidate is not None and self.production is not None
        return {
            name: round(sum(answers[i] == self.labels[i] for i in ids) / len(ids), 4)
            for name, answers in (("candidate", self.candidate), ("production", self.production))
        }

    def evidence(
        self, ids: Sequence[int], threshold_pts: float, alpha: float, *, reverse: bool = False
    ) -> PairedEvidence:
        """Candidate against production on ``ids`` (``reverse``: production against candidate)."""
        assert self.candidate is not None and self.production is not None
        usable = self.usable(ids)
        ours = [self.candidate[i] == self.labels[i] for i in usable]
        theirs = [self.production[i] == self.labels[i] for i in usable]
        first, second = (theirs, ours) if reverse else (ours, theirs)
        return paired_evidence(first, second, threshold_pts=threshold_pts, alpha=alpha)


def _evidence_name(config: GateConfig, candidate: SlotRow) -> str:
    """What the gates count as evidence, in words: "held-out audit-sample labels given in pilot"."""
    what = "held-out audit-sample labels" if config.evidence == "audit" else "held-out operator labels"
    return f"{what} given in pilot" if candidate.stage == "pilot" else what


_NOT_READY = "judged once the candidate has answered enough items"


def accuracy_gate(config: GateConfig, judged: Evidence | None) -> Gate:
    """Paired, anytime-valid: passes once the candidate is shown more accurate than production by
    more than ``-margin`` (non-inferiority) or ``0`` (superiority) at confidence ``1 - alpha``."""
    # Both models over every held-out label is the costly part: only once the gates can decide.
    threshold = config.accuracy_threshold_pts
    if judged is None or judged.problem is not None:
        return Gate("accuracy", False, None, threshold, (judged.problem if judged else None) or _NOT_READY)
    evidence = judged.evidence(judged.inputs, threshold, config.alpha)
    return Gate(
        "accuracy",
        evidence.established,
        evidence.lower_bound_pts,
        threshold,
        f"{config.decision}: candidate {_signed(evidence.delta_pts)} points vs production "
        f"{judged.describe(evidence)} ({evidence.first_only} only the candidate got right, "
        f"{evidence.second_only} only production); {100 * (1 - config.alpha):g}% lower bound "
        f"{_signed(evidence.lower_bound_pts)} (highest so far {_signed(evidence.best_lower_bound_pts)}), "
        f"needed above {_signed(threshold)}",
        evidence=evidence.to_json(),
    )


def _groups_gate(store: SiteStore, config: GateConfig, groups: GroupsConfig, judged: Evidence | None) -> Gate:
    """No group shown harmed by more than ``max_drop_pts``; unjudged groups stated (or holding).

    A group with at least ``groups.min_labels`` held-out labels is judged with the same anytime-valid
    paired test, asked the other way round: is production shown more accurate than the candidate
    by more than ``max_drop_pts`` in this group (at ``alpha`` split over the judged groups)? If so,
    the candidate is held. Smaller groups are listed as unjudged in every decision; with
    ``groups.unjudged = "hold"`` they hold the candidate until they have their labels.
    """
    limit = -groups.max_drop_pts
    if judged is None or judged.problem is not None:
        return Gate("groups", False, None, limit, (judged.problem if judged else None) or _NOT_READY)
    tags = store.group_tags(judged.inputs)
    usable = {name: judged.usable(ids) for name, ids in members(tags, groups.keys).items()}
    ready = {name for name, ids in usable.items() if len(ids) >= groups.min_labels}
    level = config.alpha / max(len(ready), 1)
    rows = [
        _group_row(judged, groups, name, ids, level if name in ready else None)
        for name, ids in usable.items()
    ]
    unjudged = [row["group"] for row in rows if row["too_small"]]
    harmed = [r for r in rows if r.get("harmed")]
    hold_unjudged = bool(unjudged) and groups.unjudged == "hold"
    unjudged_note = (
        f"; unjudged ({groups.min_labels} {judged.unit} needed"
        f"{', holding the candidate' if hold_unjudged else ''}): {', '.join(unjudged)}"
        if unjudged
        else ""
    )
    if harmed:
        worst = min(harmed, key=lambda r: r["delta_pts"])
        detail = (
            f"group {worst['group']} shown harmed: candidate {_signed(worst['delta_pts'])} points on "
            f"{_group_size(judged, worst)}, {100 * (1 - level):g}% upper bound "
            f"{_signed(worst['upper_bound_pts'])}"
        )
    elif rows and len(unjudged) < len(rows):
        detail = f"no group shown harmed by more than {groups.max_drop_pts:g} points"
    else:
        detail = f"no group has enough {judged.unit} to judge" if rows else "no input carries a group tag"
    worst_value = min((r["delta_pts"] for r in rows if r.get("delta_pts") is not None), default=None)
    passed = not harmed and not hold_unjudged
    return Gate("groups", passed, worst_value, limit, detail + unjudged_note, tuple(rows))


def _group_row(
    judged: Evidence, groups: GroupsConfig, name: tuple[str, str], ids: list[int], level: float | None
) -> dict[str, Any]:
    """One group's row of the groups gate; ``level``: the alpha it is judged at (None: too small)."""
    row: dict[str, Any] = {"group": "=".join(name), "labels": judged.labelled(ids), "inputs": len(ids)}
    row["too_small"] = level is None
    row |= {"candidate": None, "production": None, "delta_pts": None}
    if level is None:
        return row
    harm = judged.evidence(ids, groups.max_drop_pts, level, reverse=True)
    return (
        row
        | judged.accuracies(ids)
        | {
            "delta_pts": None if harm.delta_pts is None else -harm.delta_pts,
            "harmed": harm.established,
            "upper_bound_pts": None if harm.lower_bound_pts is None else -harm.lower_bound_pts,
            "evidence": harm.to_json(),
        }
    )


def _group_size(judged: Evidence, row: dict[str, Any]) -> str:
    labelled = "" if row["labels"] == row["inputs"] else f" ({row['labels']} labelled)"
    return f"{row['inputs']} {judged.unit}{labelled}"


def _signed(value: float | None) -> str:
    return "n/a" if value is None else f"{value:+.2f}"


def _latency_gate(store: SiteStore, config: GateConfig, candidate: SlotRow) -> Gate:
    """p95 of the latency callers saw (``SiteStore.latencies``), not the model's time alone: a
    candidate that is quick per batch but makes requests queue fails its budget."""
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
        f"p95 {p95:.1f} ms as callers see it over {len(latencies)} answers, budget {budget:.0f} ms",
    )
