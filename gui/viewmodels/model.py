"""The Model tab's content: production and candidate side by side, the gates, drift, what may be done.

Built from what the agent's API returns (``/v1/status``, ``/v1/gates``, ``/v1/drift``,
``/v1/models``); no Qt, so the tests read it from plain dicts. Texts the operator reads are
left to the widget, which translates them; this module only picks and shapes the figures.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

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
    def of(cls, described: Mapping[str, Any], stage: str, site: str, site_key_id: str | None) -> ModelCard:
        lineage = described.get("lineage") or {}
        source = lineage.get("source") or {}
        parent = lineage.get("parent") or {}
        signer = str(described.get("signer_key_id") or "")
        trained_here = source.get("kind") == "site-training" and source.get("site") == site
        return cls(
            name=str(described.get("name") or ""),
            version=version_label(described),
            stage=stage,
            signer_key_id=signer,
            by_this_site=trained_here or bool(site_key_id and signer == site_key_id),
            verified=bool(described.get("signature_verified")),
            parent_version=version_label(parent) if parent.get("version") is not None else None,
            source_kind=str(source.get("kind") or ("export" if source else NONE)),
            federated_run=str(lineage["federated_run"]) if lineage.get("federated_run") else None,
            federated_round=int(lineage["round"]) if lineage.get("round") is not None else None,
            rollback=bool(lineage.get("rollback")),
            precision=str(described.get("precision") or NONE),
            provider=served_on(described),
        )


def served_on(described: Mapping[str, Any]) -> str:
    """``CUDA · cuda variant · 0 compute ops on CPU``: the provider, the bundle variant, its placement."""
    provider = str(described.get("provider") or NONE).removesuffix("ExecutionProvider")
    parts = [provider]
    if described.get("variant"):
        parts.append(f"{described['variant']} variant")
    placement = described.get("placement") or {}
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
    def of(cls, gate: Mapping[str, Any]) -> GateRow:
        name = str(gate["name"])
        sign = "≤" if name in AT_MOST else "≥"
        return cls(name, number(gate.get("value")), f"{sign} {number(gate.get('limit'))}",
                   bool(gate.get("passed")), str(gate.get("detail") or ""))  # fmt: skip


@dataclass(frozen=True)
class GroupRow:
    group: str  # "line=L1"
    labels: int
    candidate: str  # "91.7 %"
    production: str
    delta_pts: str  # "+1.5"
    too_small: bool

    @classmethod
    def of(cls, row: Mapping[str, Any]) -> GroupRow:
        delta = row.get("delta_pts")
        return cls(
            group=str(row.get("group") or ""),
            labels=int(row.get("labels") or 0),
            candidate=percent(row.get("candidate")),
            production=percent(row.get("production")),
            delta_pts=NONE if delta is None else f"{float(delta) + 0.0:+g}",
            too_small=bool(row.get("too_small")),
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
    def of(cls, drift: Mapping[str, Any]) -> DriftView:
        latest = drift.get("latest") or {}
        reference = drift.get("reference") or {}
        p_value = latest.get("p_value")
        return cls(
            enabled=bool(drift.get("enabled", True)),
            status=drift.get("status"),
            p_value=NONE if p_value is None else f"{float(p_value):.3g}",
            feature=str(latest.get("feature") or NONE),
            reference_items=int(reference["items"]) if reference.get("items") is not None else None,
            window_items=int(drift.get("items_in_current_window") or 0),
            window_size=int(drift.get("window_items") or 0),
            labels_requested=int(drift.get("labels_requested") or 0),
            reference_needed=int(drift.get("reference_items_needed") or 0),
            episode_open=bool(drift.get("episode_open")),
        )


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
    def of(cls, loaded: Mapping[str, Any], role: str | None, site_key_id: str | None = None) -> ModelView:
        """``loaded``: ``{"status", "gates", "drift", "models"}`` as the API returned them."""
        status = loaded.get("status") or {}
        site = str(status.get("site") or "")
        production, candidate = status.get("production"), status.get("candidate")
        report = (loaded.get("gates") or {}).get("gates") or {}
        gates = report.get("gates") or []
        groups = next((g.get("breakdown") or [] for g in gates if g.get("name") == "groups"), [])
        stage = str((candidate or {}).get("stage") or "")
        return cls(
            site=site,
            production=ModelCard.of(production, "production", site, site_key_id) if production else None,
            candidate=ModelCard.of(candidate, stage, site, site_key_id) if candidate else None,
            gates=tuple(GateRow.of(g) for g in gates),
            gates_ready=bool(report.get("ready")),
            gates_passed=bool(report.get("passed")),
            gate_items=int(report.get("items") or 0),
            groups=tuple(GroupRow.of(row) for row in groups),
            drift=DriftView.of(loaded.get("drift") or status.get("drift") or {}),
            actions=Actions(
                allowed=role == "supervisor",
                promote_to=later_stages(stage) if candidate else (),
                rollback_to=rollback_version((loaded.get("models") or {}).get("history") or []),
            ),
        )


def later_stages(stage: str) -> tuple[str, ...]:
    """Where a candidate in ``stage`` may go: the next stage first, then production."""
    if stage not in ORDER[:-1]:
        return ()
    return ORDER[ORDER.index(stage) + 1 :]


def rollback_version(history: Sequence[Mapping[str, Any]]) -> str | None:
    """The version production last replaced (newest first, as the agent lists it): what rollback restores."""
    replaced = next((row for row in history if row.get("end_reason") == "replaced"), None)
    return version_label(replaced) if replaced else None


def version_label(model: Mapping[str, Any]) -> str:
    """``3`` or ``3.1``: the agent's label, or one made from a lineage's version and revision."""
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
