"""Hash chains for the audit log and the egress ledger.

Each row's hash is ``sha256(prev_hash + "\\n" + canonical JSON of the row's other fields)`` and the
first row's ``prev_hash`` is 64 zeros, so editing, deleting or reordering any row breaks every
hash after it. The fields include ``seq``, which is what makes reordering visible.
What a chain cannot show on its own is the newest rows being cut off the end.

A column added to a chained table after entries were written (the egress ledger's
``content_sha256``, schema v4) is hashed only where it is set: the entries written before it hold
NULL there and verify exactly as they did, and clearing it in a newer entry breaks that entry's hash.

Verifying from a mark (``verify_entries(..., after=mark)``) recomputes only the entries added since
a verification that found the chain intact up to the mark's entry; it still checks that the mark's
entry holds the hash it had and that no entry up to it is missing, and falls back to the whole chain
if not. An edit of an older entry that keeps its stored hash is found only by a whole verification:
``SiteStore`` forgets its mark whenever anything but its own writer changed the file.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Mapping
from typing import Any, Final

from edge_agent.store.records import ChainEntry, ChainReport

GENESIS_HASH: Final = "0" * 64

#: Where a chain was last found intact: the seq and hash of its last entry then.
ChainMark = tuple[int, str]

# The columns each chained table holds besides seq, created_at, prev_hash and hash.
CHAIN_COLUMNS: Final[dict[str, tuple[str, ...]]] = {
    "audit_log": ("actor", "event", "details"),
    "egress_ledger": ("destination", "kind", "payload_bytes", "round", "content_sha256", "details"),
}
# Columns added after a table's first entries: hashed only where set (see the module docstring).
LATER_COLUMNS: Final[frozenset[str]] = frozenset({"content_sha256"})


def canonical_json(value: Any) -> str:
    """One spelling per value: sorted keys, no whitespace; NaN is refused rather than guessed."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def entry_hash(prev_hash: str, fields: Mapping[str, Any]) -> str:
    """The hash of one row; ``fields`` are all its columns except ``hash`` itself."""
    hashed = {name: value for name, value in fields.items() if name not in LATER_COLUMNS or value is not None}
    text = prev_hash + "\n" + canonical_json(hashed)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def append_entry(
    conn: sqlite3.Connection, table: str, created_at: float, fields: Mapping[str, Any]
) -> ChainEntry:
    """Append one row; the caller holds a write transaction, so the last hash cannot move under us."""
    columns = _columns(table)
    if set(fields) != set(columns):
        raise ValueError(f"{table} entries need exactly the fields {columns}, got {sorted(fields)}")
    last = conn.execute(f"SELECT seq, hash FROM {table} ORDER BY seq DESC LIMIT 1").fetchone()
    seq, prev_hash = (last[0] + 1, last[1]) if last else (1, GENESIS_HASH)
    # Normalise through JSON first, so the hash covers exactly what a reader decodes later.
    details = json.loads(canonical_json(fields["details"]))
    hashed = {**fields, "details": details, "seq": seq, "created_at": created_at, "prev_hash": prev_hash}
    digest = entry_hash(prev_hash, hashed)
    stored = [canonical_json(details) if name == "details" else fields[name] for name in columns]
    conn.execute(
        f"INSERT INTO {table} (seq, created_at, {', '.join(columns)}, prev_hash, hash) "
        f"VALUES (?, ?, {', '.join('?' for _ in columns)}, ?, ?)",
        (seq, created_at, *stored, prev_hash, digest),
    )
    return ChainEntry(seq=seq, created_at=created_at, fields={**fields, "details": details}, hash=digest)


def read_entries(
    conn: sqlite3.Connection, table: str, limit: int, offset: int, kind: str | None = None
) -> list[ChainEntry]:
    """Newest first, as an operator reads a log; ``kind`` keeps only entries of that kind (the
    audit log's ``event``)."""
    columns = _columns(table)
    column = "event" if table == "audit_log" else "kind"
    where, parameters = (f"WHERE {column} = ? ", (kind,)) if kind is not None else ("", ())
    rows = conn.execute(
        f"SELECT seq, created_at, {', '.join(columns)}, hash FROM {table} {where}"
        "ORDER BY seq DESC LIMIT ? OFFSET ?",
        (*parameters, limit, offset),
    ).fetchall()
    return [_entry(columns, row) for row in rows]


def verify_chain(conn: sqlite3.Connection, table: str) -> ChainReport:
    """Recompute every hash in order; the first row that does not fit is reported."""
    return verify_entries(conn, table)[0]


def verify_entries(
    conn: sqlite3.Connection, table: str, after: ChainMark | None = None
) -> tuple[ChainReport, ChainMark | None]:
    """Verify the chain, from ``after`` when its entry still fits; returns the report and, when the
    chain is intact, the mark of its last entry (None for an empty chain or a broken one)."""
    columns = _columns(table)
    entries: int = conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    if after is not None and not _mark_holds(conn, table, after):
        after = None  # whatever changed before the mark, the whole chain says where
    start_seq, expected_prev = after if after is not None else (0, GENESIS_HASH)
    cursor = conn.execute(
        f"SELECT seq, created_at, {', '.join(columns)}, prev_hash, hash FROM {table} "
        "WHERE seq > ? ORDER BY seq",
        (start_seq,),
    )
    last: ChainMark | None = after
    for row in cursor:
        seq, prev_hash, stored_hash = row[0], row[-2], row[-1]
        if prev_hash != expected_prev or _recomputed_hash(columns, row) != stored_hash:
            return ChainReport(ok=False, entries=entries, first_bad_seq=seq), None
        expected_prev, last = stored_hash, (seq, stored_hash)
    return ChainReport(ok=True, entries=entries, first_bad_seq=None), last


def _mark_holds(conn: sqlite3.Connection, table: str, mark: ChainMark) -> bool:
    """The mark's entry still has its hash, and every seq up to it is still there (no deletion)."""
    seq, digest = mark
    row = conn.execute(f"SELECT hash FROM {table} WHERE seq = ?", (seq,)).fetchone()
    if row is None or row[0] != digest:
        return False
    kept: int = conn.execute(f"SELECT count(*) FROM {table} WHERE seq BETWEEN 1 AND ?", (seq,)).fetchone()[0]
    return kept == seq


def _recomputed_hash(columns: tuple[str, ...], row: tuple[Any, ...]) -> str | None:
    seq, created_at, *values, prev_hash, _stored_hash = row
    fields = dict(zip(columns, values, strict=True))
    try:
        fields["details"] = json.loads(fields["details"])
    except (TypeError, ValueError):
        return None  # details that are not JSON were not written by the store
    return entry_hash(prev_hash, {**fields, "seq": seq, "created_at": created_at, "prev_hash": prev_hash})


def _entry(columns: tuple[str, ...], row: tuple[Any, ...]) -> ChainEntry:
    seq, created_at, *values, digest = row
    fields = dict(zip(columns, values, strict=True))
    fields["details"] = json.loads(fields["details"])
    return ChainEntry(seq=seq, created_at=created_at, fields=fields, hash=digest)


def _columns(table: str) -> tuple[str, ...]:
    # Table names are interpolated into SQL, so only the two known chains are accepted.
    try:
        return CHAIN_COLUMNS[table]
    except KeyError:
        raise ValueError(f"{table!r} is not a hash-chained table") from None
