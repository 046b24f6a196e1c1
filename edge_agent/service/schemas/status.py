"""Answers about the site: ``GET /v1/status``, ``/v1/kpis``, ``/v1/groups`` and ``/v1/federation``."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from edge_agent.service.schemas.api import DriftStatus, InstalledModel
from edge_agent.service.schemas.models import CandidateModel, GateReportOut


class HoldoutStatus(BaseModel):
    """The current held-out set: its epoch, its labels, and how many candidates it judged."""

    epoch: int
    started_at: float
    reason: str
    labels: int
    history_labels: int = Field(description="held-out labels of older epochs: evaluation history only")
    candidates_judged: int
    reuse_limit: int


class AuditSampleStatus(BaseModel):
    drawn: int = Field(description="served inputs drawn at random into the audit sample")
    labelled: int
    held_out: int = Field(description="labelled and in the current held-out set")
    share: float = Field(description="the share of served inputs drawn (store.audit_share)")


class DeclinedRound(BaseModel):
    at: float
    reason: str


class PrivacyBudget(BaseModel):
    """The site's lifetime ε budget for differentially private runs and what is spent of it."""

    epsilon_budget: float | None = Field(description="None when agent.toml does not load ('problem')")
    epsilon_spent: float
    epsilon_left: float | None
    delta: float
    rounds: int = Field(description="DP rounds this site contributed to, over all runs")
    runs: int
    last_declined: DeclinedRound | None = Field(description="the newest round declined for privacy")
    problem: str | None


class BatchingStats(BaseModel):
    batches: int
    items: int
    mean_batch_size: float
    max_batch_size: int
    waiting: int = Field(description="requests waiting now")


class StoreInfo(BaseModel):
    schema_version: int
    durability: str = Field(
        description="what an acknowledged prediction or label survives: power_cut or process_kill"
    )


class CertificateStatus(BaseModel):
    """One certificate of the site's kit and how long it has left (``genba.certificates``)."""

    name: str
    path: str
    state: Literal["ok", "expiring", "expired", "not_yet_valid", "unreadable"] = Field(
        description="expiring: within 30 days of its end"
    )
    not_after: str | None = Field(description="its end, ISO 8601 UTC")
    days_left: float | None
    message: str = Field(description="one line: what, and unless ok what to do")


class StatusResponse(BaseModel):
    role: str = Field(description="the role of the token that asked")
    site: str
    production: InstalledModel | None
    candidate: CandidateModel | None
    gates: GateReportOut | None
    holdout: HoldoutStatus
    audit_sample: AuditSampleStatus
    drift: DriftStatus
    privacy_budget: PrivacyBudget
    problems: list[str] = Field(description="models that failed to load, workers that failed")
    batching: BatchingStats
    shadow_dropped: int
    uptime_s: float
    pid: int
    store: StoreInfo
    versions: dict[str, str | None] = Field(description="installed package versions, by distribution")
    certificates: list[CertificateStatus] = Field(
        default_factory=list,
        description="the kit's certificates (none at a standalone site), checked for expiry",
    )


class ModelKpis(BaseModel):
    predictions: int
    served: int
    stages: dict[str, int] = Field(description="answers by stage")


class KpiSummary(BaseModel):
    predictions: int
    served: int = Field(description="production answers returned as the answer")
    labels: int
    corrections: int
    acceptance: float | None
    operator_seconds_mean: float | None
    latency_ms_p50: float | None
    latency_ms_p95: float | None
    per_model: dict[int, ModelKpis] = Field(description="by model id")


class KpiDailyRow(BaseModel):
    day: str
    model_id: int
    stage: str
    metric: str
    value: float


class KpisResponse(BaseModel):
    summary: KpiSummary
    daily: list[KpiDailyRow] = Field(description="the last days' figures, newest day first")


class GroupFigure(BaseModel):
    key: str
    value: str
    labels: int
    accuracy: float | None = Field(description="None when the group is too small to judge")
    too_small: bool


class GroupsResponse(BaseModel):
    """Production's served answers against the operators' labels, group by group."""

    keys: list[str]
    min_labels: int
    labels: int
    untagged_labels: int
    unknown_tags: list[str]
    groups: list[GroupFigure]


class LastUpdate(BaseModel):
    at: float
    round: int | str | None
    payload_bytes: int
    masked: bool


class DifferentialPrivacy(BaseModel):
    noise_multiplier: float
    clipping_norm: float
    delta: float
    epsilon: float = Field(description="the run's ε after the round")


class TrafficRound(BaseModel):
    run: int | None
    round: str | int | None
    sent: int
    received: int
    payload: int = Field(description="the payload the egress ledger recorded for the round")
    control: int = Field(description="bytes sent less the payload: control traffic")
    requests: dict[str, int] = Field(description="requests to the SuperLink, by call")
    request_seconds: dict[str, float]


class ControlTraffic(BaseModel):
    updated_at: float | None
    rounds: list[TrafficRound]


class FederationResponse(BaseModel):
    """Joined or not, updates sent (from the egress ledger), the last one, bytes by kind."""

    joined: bool
    superlink: str | None
    joined_since: float | None
    updates_sent: int
    last_update: LastUpdate | None
    bytes_sent_by_kind: dict[str, int]
    differential_privacy: DifferentialPrivacy | None
    privacy_budget: PrivacyBudget
    control_traffic: ControlTraffic | None = Field(description="None if the SuperNode never ran")
