"""Held-out sets (epochs), the candidates judged on each, and the content keys labels are split by.

The rule is stated in ``edge_agent.split``. Here: a stage decision whose gates ran both models on
held-out labels is counted against the current epoch; once ``reuse_limit`` distinct candidates
have been judged on it, the next epoch begins in the same transaction (with an audit entry), so
the very next gate report already uses only the new epoch's labels.

Functions here run inside a transaction the caller (``SiteStore``) opened; they never commit.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from typing import Any

from edge_agent.split import content_key
from edge_agent.store.chain import append_entry


def current_epoch(conn: sqlite3.Connection) -> int:
    epoch: int = conn.execute("SELECT max(epoch) FROM holdout_epochs").fetchone()[0]
    return epoch


def judged_on_held_out(gates: Mapping[str, Any] | None) -> bool:
    """Whether a decision's gate report judged the candidate on held-out labels: its accuracy gate
    carries a value or evidence only when both models were run on them."""
    for gate in (gates or {}).get("gates") or ():
        if isinstance(gate, Mapping) and gate.get("name") == "accuracy":
            return gate.get("value") is not None or gate.get("evidence") is not None
    return False


def candidates_judged(conn: sqlite3.Connection, epoch: int) -> int:
    count: int = conn.execute(
        "SELECT count(DISTINCT model_id) FROM stage_decisions WHERE holdout_epoch = ?", (epoch,)
    ).fetchone()[0]
    return count


def note_decision(
    conn: sqlite3.Connection,
    now: float,
    decision_id: int,
    gates: Mapping[str, Any] | None,
    reuse_limit: int,
) -> None:
    """Count a decision against the held-out set it judged on; begin the next set when this one is used up."""
    if not judged_on_held_out(gates):
        return
    epoch = current_epoch(conn)
    conn.execute("UPDATE stage_decisions SET holdout_epoch = ? WHERE id = ?", (epoch, decision_id))
    judged = candidates_judged(conn, epoch)
    if judged < reuse_limit:
        return
    reason = f"{judged} candidates judged on held-out set {epoch} (limit {reuse_limit})"
    conn.execute(
        "INSERT INTO holdout_epochs (epoch, started_at, reason) VALUES (?, ?, ?)", (epoch + 1, now, reason)
    )
    details = {"epoch": epoch + 1, "previous": epoch, "candidates_judged": judged, "reuse_limit": reuse_limit}
    append_entry(conn, "audit_log", now, {"actor": "system", "event": "holdout_epoch", "details": details})


def status(conn: sqlite3.Connection, reuse_limit: int) -> dict[str, Any]:
    """The current held-out set: its epoch, since when, its labels, and how many candidates it judged."""
    epoch, started_at, reason = conn.execute(
        "SELECT epoch, started_at, reason FROM holdout_epochs ORDER BY epoch DESC LIMIT 1"
    ).fetchone()
    labels = dict(
        conn.execute(
            "SELECT l.holdout_epoch = ?, count(*) FROM latest_labels AS l JOIN inputs AS i "
            "ON i.id = l.input_id WHERE l.split = 'holdout' AND i.pruned_at IS NULL GROUP BY 1",
            (epoch,),
        ).fetchall()
    )
    return {
        "epoch": epoch,
        "started_at": started_at,
        "reason": reason,
        "labels": labels.get(1, 0),
        "history_labels": labels.get(0, 0),  # older epochs: evaluation history, never trained on
        "candidates_judged": candidates_judged(conn, epoch),
        "reuse_limit": reuse_limit,
    }


def label_content_key(conn: sqlite3.Connection, input_id: int) -> str | None:
    """The input's content key, computed and kept on first use; None once retention blanked the payload."""
    row = conn.execute(
        "SELECT kind, payload, pruned_at, content_key FROM inputs WHERE id = ?", (input_id,)
    ).fetchone()
    if row is None or row[3] is not None or row[2] is not None:
        return None if row is None else row[3]
    key = content_key(row[0], bytes(row[1]))
    conn.execute("UPDATE inputs SET content_key = ? WHERE id = ?", (key, input_id))
    return key


def unkeyed_labelled_inputs(conn: sqlite3.Connection) -> list[int]:
    """Labelled inputs without a content key: only those labelled before v5 (later labels get theirs)."""
    rows = conn.execute(
        "SELECT DISTINCT i.id FROM labels AS l JOIN inputs AS i ON i.id = l.input_id "
        "WHERE i.content_key IS NULL AND i.pruned_at IS NULL ORDER BY i.id"
    ).fetchall()
    return [int(row[0]) for row in rows]
