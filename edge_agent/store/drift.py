"""Drift rows: features of production answers, each model's reference window, and window checks.

Functions here run inside a transaction the caller (``SiteStore``) opened; they never commit.
Features are a handful of scores and projections per answer, never the input's text or pixels.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from typing import Any, Final

import numpy as np

from edge_agent.store.validate import decode_object

_FLOAT32_LE: Final = np.dtype("<f4")
_CHECK_COLUMNS: Final = (
    "id", "model_id", "reference", "first_prediction", "last_prediction", "items", "status", "feature",
    "statistic", "p_value", "tests", "created_at", "alarm",
)  # fmt: skip


def insert_features(
    conn: sqlite3.Connection, model_id: int, prediction_ids: Sequence[int], matrix: np.ndarray
) -> None:
    rows = np.ascontiguousarray(matrix, dtype=_FLOAT32_LE)
    conn.executemany(
        "INSERT OR REPLACE INTO drift_features (prediction_id, model_id, dim, vector) VALUES (?, ?, ?, ?)",
        [
            (int(pid), model_id, rows.shape[1], row.tobytes())
            for pid, row in zip(prediction_ids, rows, strict=True)
        ],
    )


def read_features(
    conn: sqlite3.Connection, model_id: int, after: int, limit: int
) -> tuple[list[int], np.ndarray | None]:
    """Up to ``limit`` answers of the model with a prediction id above ``after``, oldest first."""
    rows = conn.execute(
        "SELECT prediction_id, dim, vector FROM drift_features WHERE model_id = ? AND prediction_id > ? "
        "ORDER BY prediction_id LIMIT ?",
        (model_id, after, limit),
    ).fetchall()
    if not rows:
        return [], None
    dims = {dim for _, dim, _ in rows}
    if len(dims) > 1:  # a model's features never change size; a mix means a damaged store
        raise ValueError(f"drift features of model {model_id} have several sizes: {sorted(dims)}")
    matrix = np.stack([np.frombuffer(bytes(blob), dtype=_FLOAT32_LE) for _, _, blob in rows])
    return [pid for pid, _, _ in rows], matrix


def count_features(conn: sqlite3.Connection, model_id: int, after: int) -> int:
    count: int = conn.execute(
        "SELECT count(*) FROM drift_features WHERE model_id = ? AND prediction_id > ?", (model_id, after)
    ).fetchone()[0]
    return count


def reference(conn: sqlite3.Connection, model_id: int) -> dict[str, Any] | None:
    row = conn.execute(
        "SELECT first_prediction, last_prediction, items, created_at FROM drift_references "
        "WHERE model_id = ?",
        (model_id,),
    ).fetchone()
    if row is None:
        return None
    return dict(zip(("first_prediction", "last_prediction", "items", "created_at"), row, strict=True))


def extend_reference(
    conn: sqlite3.Connection, model_id: int, first: int, last: int, items: int, now: float
) -> None:
    """Start the model's reference with this window, or add the window to the one being built."""
    conn.execute(
        "INSERT INTO drift_references (model_id, first_prediction, last_prediction, items, created_at) "
        "VALUES (?, ?, ?, ?, ?) ON CONFLICT (model_id) DO UPDATE SET "
        "last_prediction = excluded.last_prediction, items = drift_references.items + excluded.items "
        "WHERE excluded.first_prediction > drift_references.last_prediction",
        (model_id, first, last, items, now),
    )


def drop_reference(conn: sqlite3.Connection, model_id: int) -> bool:
    """Forget the model's reference: the next windows build a new one. True when there was one."""
    return conn.execute("DELETE FROM drift_references WHERE model_id = ?", (model_id,)).rowcount > 0


def read_groups(conn: sqlite3.Connection, prediction_ids: Sequence[int]) -> list[dict[str, Any]]:
    """The group tags of the input behind each prediction, in the order given."""
    rows = dict(
        conn.execute(
            "SELECT p.id, i.groups FROM predictions AS p JOIN inputs AS i ON i.id = p.input_id "
            "WHERE p.id IN (SELECT value FROM json_each(?))",
            (json.dumps([int(pid) for pid in prediction_ids]),),
        ).fetchall()
    )
    return [decode_object(rows.get(int(pid))) for pid in prediction_ids]


def insert_check(conn: sqlite3.Connection, model_id: int, check: dict[str, Any], now: float) -> int:
    cursor = conn.execute(
        "INSERT INTO drift_checks (model_id, reference, first_prediction, last_prediction, items, status, "
        "feature, statistic, p_value, tests, created_at, alarm) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            model_id, check["reference"], check["first_prediction"], check["last_prediction"], check["items"],
            check["status"], check["feature"], check["statistic"], check["p_value"], check["tests"], now,
            int(bool(check.get("alarm"))),
        ),
    )  # fmt: skip
    return int(cursor.lastrowid or 0)


def last_checked(conn: sqlite3.Connection, model_id: int) -> int:
    """The last prediction id any check of this model covered (0 when none)."""
    row = conn.execute(
        "SELECT max(last_prediction) FROM drift_checks WHERE model_id = ?", (model_id,)
    ).fetchone()
    return int(row[0] or 0)


def checks(conn: sqlite3.Connection, model_id: int | None, limit: int) -> list[dict[str, Any]]:
    """Newest first."""
    rows = conn.execute(
        f"SELECT {', '.join(_CHECK_COLUMNS)} FROM drift_checks WHERE (? IS NULL OR model_id = ?) "
        "ORDER BY id DESC LIMIT ?",
        (model_id, model_id, limit),
    ).fetchall()
    return [{**dict(zip(_CHECK_COLUMNS, row, strict=True)), "alarm": bool(row[-1])} for row in rows]
