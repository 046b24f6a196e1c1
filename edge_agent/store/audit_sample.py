"""The audit sample: served inputs drawn at random, whose labels estimate the traffic without bias.

The labelling queue asks first about production's least sure answers, so most operator labels
are the hard cases: accuracy measured on them, and a gate judged on them, says little about the
traffic as a whole (a candidate better exactly on the hard cases passes a gate it should fail:
``bench/rollout_safety.py``). The agent draws a share of the inputs it serves
(``store.audit_share``, whatever production answered) into ``audit_sample``; the queue offers
them first, marked, and the gates and the KPI report judge on their labels.

Functions here run inside a transaction or read the caller (``SiteStore``) opened.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

from edge_agent.store.inputs import split_filter
from edge_agent.store.records import QueueItem

_SERVED_ANSWER = (
    "SELECT max(id) FROM predictions WHERE input_id = a.input_id AND stage = 'production' AND served = 1"
)


def draw(conn: sqlite3.Connection, now: float, input_ids: Sequence[int]) -> None:
    conn.executemany(
        "INSERT OR IGNORE INTO audit_sample (input_id, drawn_at) VALUES (?, ?)",
        [(int(input_id), now) for input_id in input_ids],
    )


def unlabelled(conn: sqlite3.Connection, limit: int) -> list[QueueItem]:
    """Audit-sample inputs no one labelled yet (payload kept), oldest drawn first."""
    rows = conn.execute(
        "SELECT i.id, i.kind, i.payload, p.label, p.score, p.margin, i.created_at "
        "FROM audit_sample AS a JOIN inputs AS i ON i.id = a.input_id "
        f"LEFT JOIN predictions AS p ON p.id = ({_SERVED_ANSWER}) "
        "WHERE i.pruned_at IS NULL AND NOT EXISTS (SELECT 1 FROM labels AS l WHERE l.input_id = i.id) "
        "ORDER BY a.drawn_at, a.input_id LIMIT ?",
        (limit,),
    ).fetchall()
    return [QueueItem(r[0], r[1], bytes(r[2]), r[3], r[4], r[5], r[6], audit=True) for r in rows]


def held_out_keys(
    conn: sqlite3.Connection, *, audited_only: bool, since: float | None, limit: int
) -> list[tuple[int, str]]:
    """``(input_id, label)`` of the current held-out set, newest label first: of audit-sample
    inputs only (``audited_only``), and only labels given at or after ``since`` (None: any)."""
    terms, values = split_filter(conn, "holdout", None)
    audit = "AND EXISTS (SELECT 1 FROM audit_sample AS a WHERE a.input_id = i.id) " if audited_only else ""
    rows = conn.execute(
        "SELECT i.id, l.label FROM latest_labels AS l JOIN inputs AS i ON i.id = l.input_id "
        f"WHERE {terms} AND i.pruned_at IS NULL {audit}AND (? IS NULL OR l.created_at >= ?) "
        "ORDER BY l.id DESC LIMIT ?",
        (*values, since, since, limit),
    ).fetchall()
    return [(int(r[0]), str(r[1])) for r in rows]


def summary(conn: sqlite3.Connection) -> dict[str, Any]:
    """How many inputs were drawn, how many of them are labelled, and held out in the current set."""
    drawn, labelled = conn.execute(
        "SELECT count(*), count(l.input_id) FROM audit_sample AS a "
        "LEFT JOIN latest_labels AS l ON l.input_id = a.input_id"
    ).fetchone()
    held_out = len(held_out_keys(conn, audited_only=True, since=None, limit=1_000_000))
    return {"drawn": int(drawn), "labelled": int(labelled), "held_out": held_out}
