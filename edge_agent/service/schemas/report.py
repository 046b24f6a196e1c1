"""The KPI report, ``GET /v1/report``: ``edge_agent.report.build_report``'s document, typed.

A figure with too few data behind it is None with a ``reason``; every day of the window is
listed. Each daily row is its section's figure with the ``day`` it counts.
"""

from __future__ import annotations

from pydantic import BaseModel, Field


class ReportWindow(BaseModel):
    days: int
    first_day: str
    last_day: str
    start: float = Field(description="00:00 UTC of the first day")
    end: float = Field(description="24:00 UTC of the last day")
    running_days: int = Field(description="days on or after the site's first model was installed")


class ReportMinimums(BaseModel):
    labels: int
    answers: int


class Accuracy(BaseModel):
    labelled: int
    correct: int
    value: float | None
    reason: str | None


class AccuracyDay(Accuracy):
    day: str


class AccuracySeries(BaseModel):
    overall: Accuracy
    daily: list[AccuracyDay]


class Acceptance(BaseModel):
    labelled: int
    accepted: int
    value: float | None
    reason: str | None


class AcceptanceDay(Acceptance):
    day: str


class AcceptanceSeries(BaseModel):
    overall: Acceptance
    daily: list[AcceptanceDay]


class Agreement(BaseModel):
    compared: int
    agreed: int
    value: float | None
    reason: str | None


class AgreementDay(Agreement):
    day: str


class AgreementSeries(BaseModel):
    overall: Agreement
    daily: list[AgreementDay]


class LeadTimeModel(BaseModel):
    model_id: int
    name: str
    version: int
    revision: int
    version_label: str
    installed_at: float
    production_at: float
    via_candidate: bool = Field(description="a candidate stage came first (counted in the median)")
    hours: float


class LeadTime(BaseModel):
    models: list[LeadTimeModel]
    counted: int
    median_hours: float | None
    reason: str | None


class Effort(BaseModel):
    labels: int
    timed: int
    seconds_total: float
    seconds_mean: float | None
    seconds_median: float | None
    reason: str | None


class EffortDay(Effort):
    day: str


class EffortOverall(Effort):
    running_days: int
    labels_per_day: float | None


class OperatorEffort(BaseModel):
    overall: EffortOverall
    daily: list[EffortDay]


class Latency(BaseModel):
    answers: int
    p50_ms: float | None
    p95_ms: float | None
    reason: str | None


class LatencyDay(Latency):
    day: str


class LatencySeries(BaseModel):
    overall: Latency
    daily: list[LatencyDay]


class DriftEvent(BaseModel):
    check_id: int
    created_at: float
    time: str = Field(description="created_at in ISO 8601, UTC")
    day: str
    model_id: int
    reference: str
    status: str = Field(description="warning or drift")
    feature: str
    p_value: float | None
    items: int


class DriftCounts(BaseModel):
    checks: int
    warning: int
    drift: int


class DriftDay(DriftCounts):
    day: str


class DriftSummary(BaseModel):
    events: list[DriftEvent]
    daily: list[DriftDay]
    total: DriftCounts


class Prices(BaseModel):
    operator_minute: float
    defect_escape: float
    escape_share: float
    pc_hour: float
    manual_seconds_per_item: float


class Costs(BaseModel):
    served: int
    labelling_seconds: float
    untimed_labels: int
    running: int
    operator_saved: float
    model_errors: float | None
    pc: float
    net: float | None = Field(description="None without an accuracy to price errors with")


class CostDay(Costs):
    day: str


class CostBenefit(BaseModel):
    currency: str
    prices: Prices
    formulas: dict[str, str]
    error_rate: float | None
    reason: str | None
    daily: list[CostDay]
    total: Costs


class ReportResponse(BaseModel):
    site: str
    generated_at: str = Field(description="ISO 8601, UTC")
    window: ReportWindow
    minimums: ReportMinimums
    definitions: dict[str, str] = Field(description="what each figure means, by section")
    accuracy: AccuracySeries
    acceptance: AcceptanceSeries
    accuracy_audit: AccuracySeries = Field(description="on the audit sample only: unbiased")
    acceptance_audit: AcceptanceSeries
    unbiased: list[str] = Field(description="the sections estimated on random inputs")
    agreement: AgreementSeries
    lead_time: LeadTime
    operator_effort: OperatorEffort
    latency: LatencySeries
    drift: DriftSummary
    cost_benefit: CostBenefit
