"""Answers about the installed models: ``GET /v1/models`` and ``GET /v1/gates``."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from edge_agent.service.schemas.api import InstalledModel


class CandidateModel(InstalledModel):
    """The model in the candidate slot, with the stage it is in and since when."""

    stage: str | None = Field(description="shadow or pilot")
    since: float = Field(description="when it entered that stage (seconds since the epoch)")


class LibraryModel(BaseModel):
    """An installed bundle, in a slot or not."""

    model_id: int
    name: str
    version: int = Field(description="the release: IT's version number")
    revision: int = Field(description="0 for IT's release; 1, 2, ... for this site's own candidates")
    version_label: str = Field(description="how people write the version: 3 or 3.1")
    signer_key_id: str | None
    installed_at: float
    installed_by: str
    precision: str | None
    lineage: dict[str, Any] | None
    stage: str | None = Field(description="its slot's stage (production, shadow, pilot), None if in none")


class ProductionPeriod(BaseModel):
    """One model's time in production; ``end_reason`` is replaced, rolled_back or restored."""

    id: int
    model_id: int
    name: str
    version: int
    revision: int
    version_label: str
    started_at: float
    ended_at: float | None
    end_reason: str | None = Field(description="None while it is still production")


class ModelsResponse(BaseModel):
    models: list[LibraryModel]
    history: list[ProductionPeriod] = Field(description="production's history, newest first")


class GroupGateRow(BaseModel):
    """One group of the groups gate; a group too small to judge carries no harm figures."""

    group: str = Field(description="tag=value, e.g. line=L1")
    labels: int = Field(description="labels the test used in this group")
    inputs: int = Field(
        description="what groups.min_labels counts: held-out labels, or with the disagreement sample, "
        "held-out inputs both models answered (an agreement moves no difference, it is evidence too)"
    )
    too_small: bool
    candidate: float | None = Field(description="the candidate's accuracy on the group's held-out labels")
    production: float | None
    delta_pts: float | None = Field(description="candidate minus production, in points")
    harmed: bool | None = Field(None, description="the group is shown harmed (judged groups only)")
    upper_bound_pts: float | None = None
    evidence: dict[str, Any] | None = Field(None, description="the paired test, production against candidate")


class GateOut(BaseModel):
    name: str = Field(description="items, agreement, accuracy, groups or latency_p95_ms")
    passed: bool
    value: float | None
    limit: float
    detail: str = Field(description="the gate's reading, in one line")
    breakdown: list[GroupGateRow] = Field(description="the groups gate: one row per group")
    evidence: dict[str, Any] | None = Field(
        description="the accuracy gate: labels, discordant pairs, the bound (its keys may grow)"
    )


class GateReportOut(BaseModel):
    model_id: int
    stage: str
    items: int
    ready: bool = Field(description="enough answers in this stage for an automatic decision")
    passed: bool = Field(description="every gate passed")
    gates: list[GateOut]


class StageDecision(BaseModel):
    id: int
    model_id: int
    from_stage: str | None
    to_stage: str | None
    actor: str
    outcome: str
    gates: dict[str, Any] | None = Field(description="the gate report the decision rested on, as recorded")
    created_at: float


class GatesResponse(BaseModel):
    gates: GateReportOut | None = Field(description="the candidate's gates now; None without a candidate")
    decisions: list[StageDecision] = Field(description="the latest stage decisions, newest first")
