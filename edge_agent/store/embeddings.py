"""Embeddings cached by site training: one float32 vector per (model key, input).

Functions here run inside a transaction the caller (``SiteStore``) opened; they never commit.
A vector is derived from an operator's input, so it is as private as the payload: vectors of
pruned inputs are never returned and are deleted by :func:`delete_pruned`.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Mapping
from typing import Final

import numpy as np

from genba.errors import UsageError

# SQLite limits how many values one statement may bind; stay well under it.
_IDS_PER_QUERY: Final = 500
_FLOAT32_LE: Final = np.dtype("<f4")
# Written only while the input still has its payload: a prune racing a training run leaves no vector.
_INSERT: Final = (
    "INSERT OR REPLACE INTO embeddings (model_key, input_id, dim, vector, created_at) "
    "SELECT ?, id, ?, ?, ? FROM inputs WHERE id = ? AND pruned_at IS NULL"
)


def read_embeddings(
    conn: sqlite3.Connection, model_key: str, input_ids: Iterable[int]
) -> dict[int, np.ndarray]:
    """The cached vectors of those inputs under ``model_key``; inputs without one are left out."""
    wanted = sorted({int(i) for i in input_ids})
    found: dict[int, np.ndarray] = {}
    for start in range(0, len(wanted), _IDS_PER_QUERY):
        chunk = wanted[start : start + _IDS_PER_QUERY]
        marks = ", ".join("?" for _ in chunk)
        rows = conn.execute(
            "SELECT e.input_id, e.dim, e.vector FROM embeddings AS e JOIN inputs AS i ON i.id = e.input_id "
            f"WHERE e.model_key = ? AND i.pruned_at IS NULL AND e.input_id IN ({marks})",
            (model_key, *chunk),
        )
        for input_id, dim, blob in rows:
            found[input_id] = np.frombuffer(bytes(blob), dtype=_FLOAT32_LE, count=dim).astype(np.float32)
    return found


def check_vectors(model_key: str, vectors: Mapping[int, np.ndarray]) -> None:
    """Validate before taking the write lock: one size, finite numbers, a key that names something."""
    if not model_key:
        raise UsageError("an embedding cache key must not be empty")
    sizes = {np.asarray(v).shape for v in vectors.values()}
    if len(sizes) > 1 or any(len(shape) != 1 or shape[0] < 1 for shape in sizes):
        raise UsageError(f"embeddings must be vectors of one size, got shapes {sorted(sizes)}")
    if not all(np.isfinite(np.asarray(v, dtype=np.float32)).all() for v in vectors.values()):
        raise UsageError("embeddings must be finite numbers (the backbone produced NaN or infinity)")


def insert_embeddings(
    conn: sqlite3.Connection, now: float, model_key: str, vectors: Mapping[int, np.ndarray]
) -> int:
    """Cache vectors (replacing older ones under the same key); returns how many were written.

    Inputs that do not exist or were pruned meanwhile are skipped, not an error.
    """
    written = 0
    for input_id, vector in vectors.items():
        data = np.ascontiguousarray(vector, dtype=_FLOAT32_LE)
        cursor = conn.execute(_INSERT, (model_key, int(data.shape[0]), data.tobytes(), now, int(input_id)))
        written += cursor.rowcount
    return written


def delete_pruned(conn: sqlite3.Connection) -> int:
    """Delete the vectors of inputs whose payload retention has removed; returns how many."""
    cursor = conn.execute(
        "DELETE FROM embeddings WHERE input_id IN (SELECT id FROM inputs WHERE pruned_at IS NOT NULL)"
    )
    return cursor.rowcount


def count_embeddings(conn: sqlite3.Connection, model_key: str | None) -> int:
    row = conn.execute(
        "SELECT count(*) FROM embeddings WHERE ? IS NULL OR model_key = ?", (model_key, model_key)
    ).fetchone()
    return int(row[0])
