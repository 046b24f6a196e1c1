"""The Federation tab's content: joined or not, the last update sent, every message that left the
site, and the site's lifetime differential-privacy budget.

Built from ``/v1/federation`` and ``/v1/egress``; both come from the site's own egress ledger and
audit log, so what the tab shows is what they prove. No Qt: the tests build it from the API's models.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from edge_agent.service import schemas


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
        cls,
        federation: schemas.FederationResponse,
        egress: schemas.ChainResponse | None = None,
        tz: dt.tzinfo | None = None,
    ) -> FederationView:
        """``egress``: the ledger's newest entries (None: not read); ``tz``: the zone times are shown
        in (None: this computer's)."""
        since = federation.joined_since
        entries = sorted(egress.entries if egress else [], key=lambda e: e.seq, reverse=True)
        totals = (egress.totals if egress else None) or federation.bytes_sent_by_kind
        return cls(
            joined=federation.joined,
            superlink=federation.superlink,
            joined_since=when(since, tz) if since is not None else None,
            rounds=federation.updates_sent,
            last_update=_last_update(federation, tz),
            ledger=tuple(_ledger_row(entry, tz) for entry in entries),
            totals=tuple(sorted(totals.items())),
            verified=egress.verified if egress else True,
            budget=_budget(federation.privacy_budget, tz),
        )


def _last_update(federation: schemas.FederationResponse, tz: dt.tzinfo | None) -> LastUpdate | None:
    last = federation.last_update
    if last is None:
        return None
    privacy = federation.differential_privacy
    return LastUpdate(
        round=_int_or_none(last.round),
        at=when(last.at, tz),
        payload_bytes=last.payload_bytes,
        masked=last.masked,
        epsilon=privacy.epsilon if privacy else None,
        delta=privacy.delta if privacy else None,
    )


def _budget(state: schemas.PrivacyBudget, tz: dt.tzinfo | None) -> PrivacyBudget:
    declined = state.last_declined
    return PrivacyBudget(
        budget=state.epsilon_budget,
        spent=state.epsilon_spent,
        left=state.epsilon_left,
        delta=state.delta,
        rounds=state.rounds,
        runs=state.runs,
        last_declined=f"{when(declined.at, tz)}: {declined.reason}" if declined else None,
        problem=state.problem,
    )


def _ledger_row(entry: schemas.ChainEntryOut, tz: dt.tzinfo | None) -> LedgerRow:
    fields = entry.fields  # the ledger entry's own fields: what the message carried
    return LedgerRow(
        seq=entry.seq,
        time=when(entry.created_at, tz),
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
    """A round as a number; a round group that is not one (None) shows no number."""
    if isinstance(value, str):
        return int(value) if value.isdigit() else None
    return None if value is None else int(value)
