"""The Federation tab's content: joined or not, the last update sent, every message that left the
site, and the site's lifetime differential-privacy budget.

Built from ``/v1/federation`` and ``/v1/egress``; both come from the site's own egress ledger and
audit log, so what the tab shows is what they prove. No Qt: the tests read it from plain dicts.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class LastUpdate:
    round: int | None
    at: str
    payload_bytes: int
    masked: bool
    epsilon: float | None  # with differential privacy: the run's ε after that round, and its δ
    delta: float | None


@dataclass(frozen=True)
class LedgerRow:
    seq: int
    time: str
    destination: str
    kind: str
    payload_bytes: int
    round: int | None
    content_sha256: str  # of exactly what the message carried ("" for entries from before schema v4)


@dataclass(frozen=True)
class PrivacyBudget:
    """The site's lifetime ε budget for differentially private runs and what is spent of it."""

    budget: float | None  # None: agent.toml does not load (``problem`` says why)
    spent: float
    left: float | None
    delta: float
    rounds: int  # DP rounds this site contributed to, over all runs
    runs: int
    last_declined: str | None  # the newest round the site declined for privacy, and why
    problem: str | None


@dataclass(frozen=True)
class FederationView:
    joined: bool
    superlink: str | None
    joined_since: str | None
    rounds: int  # masked updates sent: one per round taken part in
    last_update: LastUpdate | None
    ledger: tuple[LedgerRow, ...]  # newest first
    totals: tuple[tuple[str, int], ...]  # bytes sent, by kind, over the whole ledger
    verified: bool  # the ledger's hash chain verified when it was read
    budget: PrivacyBudget | None = None  # None: an agent too old to report it

    @property
    def total_bytes(self) -> int:
        return sum(total for _, total in self.totals)

    @classmethod
    def of(
        cls, federation: Mapping[str, Any], egress: Mapping[str, Any], tz: dt.tzinfo | None = None
    ) -> FederationView:
        """``tz``: the zone times are shown in (None: this computer's)."""
        since = federation.get("joined_since")
        entries = sorted(egress.get("entries") or [], key=lambda e: int(e["seq"]), reverse=True)
        totals = egress.get("totals") or federation.get("bytes_sent_by_kind") or {}
        return cls(
            joined=bool(federation.get("joined")),
            superlink=federation.get("superlink"),
            joined_since=when(since, tz) if since is not None else None,
            rounds=int(federation.get("updates_sent") or 0),
            last_update=_last_update(federation, tz),
            ledger=tuple(_ledger_row(entry, tz) for entry in entries),
            totals=tuple(sorted((str(kind), int(total)) for kind, total in totals.items())),
            verified=bool(egress.get("verified", True)),
            budget=_budget(federation.get("privacy_budget"), tz),
        )


def _last_update(federation: Mapping[str, Any], tz: dt.tzinfo | None) -> LastUpdate | None:
    last = federation.get("last_update")
    if not last:
        return None
    privacy = federation.get("differential_privacy") or {}
    return LastUpdate(
        round=_int_or_none(last.get("round")),
        at=when(last.get("at"), tz),
        payload_bytes=int(last.get("payload_bytes") or 0),
        masked=bool(last.get("masked")),
        epsilon=_float_or_none(privacy.get("epsilon")),
        delta=_float_or_none(privacy.get("delta")),
    )


def _budget(state: Mapping[str, Any] | None, tz: dt.tzinfo | None) -> PrivacyBudget | None:
    if not state:
        return None
    declined = state.get("last_declined") or None
    return PrivacyBudget(
        budget=_float_or_none(state.get("epsilon_budget")),
        spent=float(state.get("epsilon_spent") or 0.0),
        left=_float_or_none(state.get("epsilon_left")),
        delta=float(state.get("delta") or 0.0),
        rounds=int(state.get("rounds") or 0),
        runs=int(state.get("runs") or 0),
        last_declined=f"{when(declined.get('at'), tz)}: {declined.get('reason')}" if declined else None,
        problem=state.get("problem"),
    )


def _ledger_row(entry: Mapping[str, Any], tz: dt.tzinfo | None) -> LedgerRow:
    fields = entry.get("fields") or {}
    return LedgerRow(
        seq=int(entry["seq"]),
        time=when(entry.get("created_at"), tz),
        destination=str(fields.get("destination") or ""),
        kind=str(fields.get("kind") or ""),
        payload_bytes=int(fields.get("payload_bytes") or 0),
        round=_int_or_none(fields.get("round")),
        content_sha256=str(fields.get("content_sha256") or ""),
    )


def when(timestamp: Any, tz: dt.tzinfo | None = None) -> str:
    """Seconds since the epoch as "2026-11-29 08:52:21" in ``tz`` (None: this computer's zone)."""
    if timestamp is None:
        return ""
    moment = dt.datetime.fromtimestamp(float(timestamp), tz)
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def _int_or_none(value: Any) -> int | None:
    return None if value is None else int(value)


def _float_or_none(value: Any) -> float | None:
    return None if value is None else float(value)
