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

from edge_agent.split import HOLDOUT
from edge_agent.store.inputs import QUEUE_COLUMNS, queue_item, split_filter
from edge_agent.store.records import QueueItem


def draw(conn: sqlite3.Connection, now: float, input_ids: Sequence[int]) -> None:
    conn.executemany(
        "INSERT OR IGNORE INTO audit_sample (input_id, drawn_at) VALUES (?, ?)",
        [(int(input_id), now) for input_id in input_ids],
    )


def unlabelled(conn: sqlite3.Connection, limit: int) -> list[QueueItem]:
    """Audit-sample inputs no one labelled yet (payload kept), oldest drawn first."""
    source = "audit_sample AS a JOIN inputs AS i ON i.id = a.input_id"
    rows = conn.execute(
        QUEUE_COLUMNS.format(source=source) + "ORDER BY a.drawn_at, a.input_id LIMIT ?", (limit,)
    ).fetchall()
    return [queue_item(r, audit=True) for r in rows]


def summary(conn: sqlite3.Connection) -> dict[str, Any]:
    """How many inputs were drawn, how many of them are labelled, and held out in the current set."""
    terms, values = split_filter(conn, HOLDOUT, None)
    drawn, labelled, held_out = conn.execute(
        f"SELECT count(*), count(l.input_id), coalesce(sum({terms} AND i.pruned_at IS NULL), 0) "
        "FROM audit_sample AS a JOIN inputs AS i ON i.id = a.input_id "
        "LEFT JOIN latest_labels AS l ON l.input_id = a.input_id",
        values,
    ).fetchone()
    return {"drawn": int(drawn), "labelled": int(labelled), "held_out": int(held_out)}
