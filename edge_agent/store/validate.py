"""Checks on what callers hand the store, so a bad value fails with a sentence, not a constraint name."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from typing import Any, Final, Literal

from genba.errors import UnknownItemError, UsageError

# SQLite limits how many values one statement may bind; stay well under it.
_IDS_PER_QUERY: Final = 500


def require_choice(value: object, allowed: tuple[str, ...], what: str) -> None:
    if value not in allowed:
        raise UsageError(f"{what} must be one of {', '.join(allowed)}, not {value!r}")


def require_existing(
    conn: sqlite3.Connection, table: Literal["inputs", "models"], ids: Iterable[int], noun: str
) -> None:
    """Raise UnknownItemError naming the first id that is not in ``table``."""
    wanted = sorted(set(ids))
    for start in range(0, len(wanted), _IDS_PER_QUERY):
        chunk = wanted[start : start + _IDS_PER_QUERY]
        marks = ", ".join("?" for _ in chunk)
        found = {row[0] for row in conn.execute(f"SELECT id FROM {table} WHERE id IN ({marks})", chunk)}
        missing = [item for item in chunk if item not in found]
        if missing:
            raise UnknownItemError(f"{noun} {missing[0]} does not exist")


def decode_object(text: str | None) -> dict[str, Any]:
    """A JSON object column as a dict; NULL reads as empty."""
    if not text:
        return {}
    value = json.loads(text)
    return value if isinstance(value, dict) else {}
