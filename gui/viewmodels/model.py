"""The Model tab's content: production and candidate side by side, the gates, drift, what may be done.

Built from the API's own response models (``/v1/status``, ``/v1/gates``, ``/v1/drift``,
``/v1/models``); no Qt, so the tests build it directly. Texts the operator reads are left to the
widget, which translates them; this module only picks and shapes the figures.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from edge_agent.service.schemas import (
    DriftStatus,
    GateOut,
    GatesResponse,
    GroupGateRow,
    InstalledModel,
    ModelsResponse,
    ProductionPeriod,
    StatusResponse,
)

#: The candidate stages, in order; a candidate can move to any later one.
ORDER = ("shadow", "pilot", "production")
#: Gates whose value must stay at or under the limit (the others must reach it).
AT_MOST = frozenset({"latency_p95_ms"})
NONE = "—"


@dataclass(frozen=True)
class ModelCard:
    name: str
    version: str  # as people write it: 3 (IT's release) or 3.1 (this site's candidate from it)
    stage: str
    signer_key_id: str
    by_this_site: bool  # trained here (signed lineage) or signed with the site's own key
    verified: bool
    parent_version: str | None
    source_kind: str  # "export", "site-training", "federated", "rollback" (or what the lineage says)
    federated_run: str | None
    federated_round: int | None
    rollback: bool
    precision: str
    provider: str  # "CPU", "CUDA", …

    @classmethod
    def of(cls, described: InstalledModel, stage: str, site: str, site_key_id: str | None) -> ModelCard:
        lineage = described.lineage or {}  # the bundle's own lineage block, as signed
        source = lineage.get("source") or {}
        parent = lineage.get("parent") or {}
        signer = described.signer_key_id or ""
        trained_here = source.get("kind") == "site-training" and source.get("site") == site
        return cls(
            name=described.name,
            version=described.version_label,
            stage=stage,
            signer_key_id=signer,
            by_this_site=trained_here or bool(site_key_id and signer == site_key_id),
            verified=described.signature_verified,
            parent_version=version_label(parent) if parent.get("version") is not None else None,
            source_kind=str(source.get("kind") or ("export" if source else NONE)),
            federated_run=str(lineage["federated_run"]) if lineage.get("federated_run") else None,
            federated_round=int(lineage["round"]) if lineage.get("round") is not None else None,
            rollback=bool(lineage.get("rollback")),
            precision=described.precision or NONE,
            provider=served_on(described),
        )


def served_on(described: InstalledModel) -> str:
    """``CUDA · cuda variant · 0 compute ops on CPU``: the provider, the bundle variant, its placement."""
    provider = (described.provider or NONE).removesuffix("ExecutionProvider")
    parts = [provider]
    if described.variant:
        parts.append(f"{described.variant} variant")
    placement = described.placement or {}
    if placement:
        parts.append(f"{placement.get('compute_ops_on_cpu', 0)} compute ops on CPU")
    return " · ".join(parts)


@dataclass(frozen=True)
class GateRow:
    name: str
    value: str
    limit: str  # "≥ 12", "≤ 5000"
    passed: bool
    detail: str  # the agent's own words

    @classmethod
    def of(cls, gate: GateOut) -> GateRow:
        sign = "≤" if gate.name in AT_MOST else "≥"
        return cls(gate.name, number(gate.value), f"{sign} {number(gate.limit)}", gate.passed, gate.detail)


@dataclass(frozen=True)
class GroupRow:
    group: str  # "line=L1"
    labels: int
    candidate: str  # "91.7 %"
    production: str
    delta_pts: str  # "+1.5"
    too_small: bool

    @classmethod
    def of(cls, row: GroupGateRow) -> GroupRow:
        delta = row.delta_pts
        return cls(
            group=row.group,
            labels=row.labels,
            candidate=percent(row.candidate),
            production=percent(row.production),
            delta_pts=NONE if delta is None else f"{delta + 0.0:+g}",
            too_small=row.too_small,
        )


@dataclass(frozen=True)
class DriftView:
    enabled: bool
    status: str | None  # "ok", "warning", "drift"; None before the first window is full
    p_value: str
    feature: str
    reference_items: int | None
    window_items: int  # answers in the window filling now
    window_size: int
    labels_requested: int
    reference_needed: int = 0  # answers the reference is built from; fewer: still building
    episode_open: bool = False  # an alarm stays open until windows in a row show no drift

    @property
    def reference_building(self) -> bool:
        return self.reference_items is None or self.reference_items < self.reference_needed

    @classmethod
    def of(cls, drift: DriftStatus) -> DriftView:
        latest, reference = drift.latest, drift.reference
        return cls(
            enabled=drift.enabled,
            status=drift.status,
            p_value=NONE if latest is None else f"{latest.p_value:.3g}",
            feature=latest.feature if latest is not None else NONE,
            reference_items=reference.items if reference is not None else None,
            window_items=drift.items_in_current_window or 0,
            window_size=drift.window_items or 0,
            labels_requested=drift.labels_requested,
            reference_needed=drift.reference_items_needed or 0,
            episode_open=drift.episode_open,
        )


@dataclass(frozen=True)
class Loaded:
    """What the Model tab reads from the agent on a worker, as the API answered it."""

    status: StatusResponse
    gates: GatesResponse | None = None
    drift: DriftStatus | None = None  # None: the status's own drift block
    models: ModelsResponse | None = None
    site_key_id: str | None = None  # the key this site signs its own candidates with


@dataclass(frozen=True)
class Actions:
    allowed: bool  # only a supervisor promotes and rolls back
    promote_to: tuple[str, ...]  # the stages the candidate may move to, next first
    rollback_to: str | None  # the version a rollback puts back (the one production last replaced)


@dataclass(frozen=True)
class ModelView:
    site: str
    production: ModelCard | None
    candidate: ModelCard | None
    gates: tuple[GateRow, ...]
    gates_ready: bool
    gates_passed: bool
    gate_items: int
    groups: tuple[GroupRow, ...]  # the groups gate's breakdown
    drift: DriftView
    actions: Actions

    @classmethod
    def of(cls, loaded: Loaded, role: str | None) -> ModelView:
        status, site_key_id = loaded.status, loaded.site_key_id
        site, production, candidate = status.site, status.production, status.candidate
        report = loaded.gates.gates if loaded.gates is not None else None
        gates = report.gates if report is not None else []
        groups = next((g.breakdown for g in gates if g.name == "groups"), [])
        stage = (candidate.stage if candidate else None) or ""
        return cls(
            site=site,
            production=ModelCard.of(production, "production", site, site_key_id) if production else None,
            candidate=ModelCard.of(candidate, stage, site, site_key_id) if candidate else None,
            gates=tuple(GateRow.of(g) for g in gates),
            gates_ready=report is not None and report.ready,
            gates_passed=report is not None and report.passed,
            gate_items=report.items if report is not None else 0,
            groups=tuple(GroupRow.of(row) for row in groups),
            drift=DriftView.of(loaded.drift or status.drift),
            actions=Actions(
                allowed=role == "supervisor",
                promote_to=later_stages(stage) if candidate else (),
                rollback_to=rollback_version(loaded.models.history if loaded.models else []),
            ),
        )


def later_stages(stage: str) -> tuple[str, ...]:
    """Where a candidate in ``stage`` may go: the next stage first, then production."""
    if stage not in ORDER[:-1]:
        return ()
    return ORDER[ORDER.index(stage) + 1 :]


def rollback_version(history: Sequence[ProductionPeriod]) -> str | None:
    """The version production last replaced (newest first, as the agent lists it): what rollback restores."""
    replaced = next((row for row in history if row.end_reason == "replaced"), None)
    return replaced.version_label if replaced else None


def version_label(model: Mapping[str, Any]) -> str:
    """``3`` or ``3.1`` from a lineage's parent block: its label, or one made from version and revision."""
    if model.get("version_label"):
        return str(model["version_label"])
    revision = int(model.get("revision") or 0)
    return f"{int(model.get('version') or 0)}" + (f".{revision}" if revision else "")


def number(value: Any) -> str:
    """12.0 → "12", 0.6912 → "0.691", None → "—" (and never "-0")."""
    if value is None:
        return NONE
    return f"{round(float(value), 3) + 0.0:g}"


def percent(share: Any) -> str:
    return NONE if share is None else f"{float(share) * 100:.1f} %"
