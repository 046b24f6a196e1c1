"""Plain records the site store takes and returns: frozen, typed, free of SQL."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from genba.versions import ModelVersion

INPUT_KINDS: Final = ("text", "image")
STAGES: Final = ("production", "pilot", "shadow", "evaluation")
CANDIDATE_STAGES: Final = ("pilot", "shadow", "evaluation")
SPLITS: Final = ("train", "holdout")
OUTCOMES: Final = ("advance", "hold", "rollback", "install", "replace", "reject")
PRODUCTION_CHANGES: Final = ("none", "promote", "rollback")


@dataclass(frozen=True)
class InputRecord:
    """One input as posted to the agent, before it has an id."""

    kind: str  # "text" | "image"
    payload: bytes  # UTF-8 text, or the image file bytes
    groups: Mapping[str, str] = field(default_factory=dict)  # e.g. {"line": "L2", "shift": "night"}
    source: str = ""  # role that posted it


@dataclass(frozen=True)
class PredictionRecord:
    """One model's answer for one input, before it has an id."""

    model_id: int
    stage: str  # "production" | "pilot" | "shadow" | "evaluation"
    label: str | None
    score: float | None
    margin: float | None  # top-1 minus top-2 probability: small means unsure
    latency_ms: float  # the model's time for the batch the input ran in
    provider: str
    served: bool  # returned to the caller (production, pilot suggestion) or not (shadow)
    #: What the caller saw, queueing and batching included (shadow: what it would have seen); None: unknown
    caller_latency_ms: float | None = None


@dataclass(frozen=True)
class ModelRow:
    id: int
    name: str
    version: ModelVersion
    manifest_sha256: str
    path: str
    signer_key_id: str | None
    lineage: dict[str, Any]
    manifest: dict[str, Any]
    installed_at: float
    installed_by: str

    @property
    def label(self) -> str:
        return f"{self.name} v{self.version}"


@dataclass(frozen=True)
class SlotRow:
    slot: str
    model_id: int
    stage: str
    since: float


@dataclass(frozen=True)
class Slots:
    production: SlotRow | None
    candidate: SlotRow | None


@dataclass(frozen=True)
class LabelRow:
    id: int
    input_id: int
    label: str
    split: str
    is_correction: bool
    operator_seconds: float | None
    created_at: float


@dataclass(frozen=True)
class StoredInput:
    id: int
    kind: str
    payload: bytes  # empty once retention has pruned it
    groups: dict[str, str]
    created_at: float


@dataclass(frozen=True)
class LabelledInput:
    input_id: int
    kind: str
    payload: bytes
    label: str
    groups: dict[str, str]


@dataclass(frozen=True)
class QueueItem:
    """An unlabelled input offered to the operator, with what production answered."""

    input_id: int
    kind: str
    payload: bytes
    label: str | None
    score: float | None
    margin: float | None
    created_at: float
    audit: bool = False  # drawn into the audit sample (offered whatever production answered)
    disagreement: bool = False  # drawn where a candidate and production disagree (the gates' sample)


@dataclass(frozen=True)
class ChainEntry:
    """One audit or egress entry; ``fields`` are its columns except seq/created_at/prev_hash/hash."""

    seq: int
    created_at: float
    fields: dict[str, Any]
    hash: str


@dataclass(frozen=True)
class ChainReport:
    ok: bool
    entries: int
    first_bad_seq: int | None


KEEP: Final = object()  # "leave this slot unchanged" in a Transition


@dataclass(frozen=True)
class Transition:
    """One rollout decision, applied by ``SiteStore.apply_transition`` in a single transaction."""

    event: str  # audit event: "install", "advance", "promote", "rollback", "replace_candidate", "reject"
    actor: str  # "gates" | "operator" | "supervisor" | "integration" | "system"
    model_id: int  # the model the decision is about
    from_stage: str | None
    to_stage: str | None
    outcome: str  # stage_decisions.outcome
    production: int | None | object = KEEP  # new production model id, or KEEP
    production_change: str = "none"  # "none" | "promote" | "rollback"
    candidate: tuple[int, str] | None | object = KEEP  # (model_id, stage), None empties the slot
    gates: Mapping[str, Any] | None = None
    details: Mapping[str, Any] = field(default_factory=dict)
