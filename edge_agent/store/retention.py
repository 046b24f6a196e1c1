"""Retention: old inputs lose their payload; every row that KPIs or audits need stays.

The payload (the operator's text or the photo) is what is private, so that is what goes, along
with its hashes (a SHA-256 of a short report can be confirmed by guessing the report: the payload's,
and the content key held-out twins are found by), and the drift features derived from it (except a
model's reference window, which later windows need). Predictions,
labels and the input row itself remain, so figures over past months do not change. The audit log
and the egress ledger are never pruned.
"""

from __future__ import annotations

import math
import sqlite3
from typing import Final

from edge_agent.store.chain import append_entry
from genba.errors import UsageError

_PRUNE: Final = (
    "UPDATE inputs SET payload = x'', payload_sha256 = '', content_key = NULL, pruned_at = ? "
    "WHERE created_at < ? AND pruned_at IS NULL AND {labelled}EXISTS "
    "(SELECT 1 FROM labels WHERE labels.input_id = inputs.id)"
)


_DROP_DRIFT_FEATURES: Final = (
    "DELETE FROM drift_features WHERE prediction_id IN (SELECT p.id FROM predictions AS p "
    "JOIN inputs AS i ON i.id = p.input_id WHERE i.pruned_at IS NOT NULL) AND NOT EXISTS "
    "(SELECT 1 FROM drift_references AS r WHERE r.model_id = drift_features.model_id "
    "AND drift_features.prediction_id BETWEEN r.first_prediction AND r.last_prediction)"
)


def prune_inputs(
    conn: sqlite3.Connection, now: float, *, keep_days: float, keep_labelled: bool
) -> dict[str, int]:
    """Blank the payloads of inputs older than ``keep_days``; labelled ones too unless ``keep_labelled``.

    Runs in the caller's one transaction and records an audit entry "retention" with the counts,
    also when nothing was old enough: the log then shows the policy ran.
    """
    if not (isinstance(keep_days, int | float) and math.isfinite(keep_days) and keep_days >= 0):
        raise UsageError(f"keep_days must be a number of days, 0 or more, not {keep_days!r}")
    cutoff = now - keep_days * 86400.0
    unlabelled = conn.execute(_PRUNE.format(labelled="NOT "), (now, cutoff)).rowcount
    labelled = 0 if keep_labelled else conn.execute(_PRUNE.format(labelled=""), (now, cutoff)).rowcount
    counts = {"unlabelled": unlabelled, "labelled": labelled, "pruned": unlabelled + labelled}
    counts["drift_features"] = conn.execute(_DROP_DRIFT_FEATURES).rowcount
    details = {**counts, "keep_days": keep_days, "keep_labelled": keep_labelled, "cutoff": cutoff}
    append_entry(conn, "audit_log", now, {"actor": "system", "event": "retention", "details": details})
    return counts
