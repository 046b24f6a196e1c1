"""The audit log and egress ledger: hashes as specified, and tampering found."""

from __future__ import annotations

import hashlib
import json
import math
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from edge_agent.store import ChainReport, SiteStore


def _spec_hash(prev_hash: str, fields: dict[str, Any]) -> str:
    """The chain rule written out independently of the store's code."""
    text = prev_hash + "\n" + json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def _tamper(path: Path, table: str, sql: str, params: tuple[Any, ...] = ()) -> None:
    """Edit the file as an intruder would: drop the append-only triggers, then change rows."""
    with sqlite3.connect(path, isolation_level=None) as conn:
        for trigger in ("no_update", "no_delete"):
            conn.execute(f"DROP TRIGGER IF EXISTS {table}_{trigger}")
        conn.execute(sql, params)


def _fill(store: SiteStore, entries: int = 5) -> None:
    for number in range(entries):
        store.append_audit("label", "operator", {"input_id": number, "note": "ünïcode ok"})
        store.append_egress(
            destination="superlink:9092",
            kind="update",
            payload_bytes=100 * (number + 1),
            round=number,
            content_sha256=f"{number:064x}",
            details={"tensor_count": 4},
        )


def test_entries_follow_the_chain_rule(store: SiteStore, clock: Any) -> None:
    first = store.append_audit("install", "system", {"model_id": 1, "gates": None})
    second = store.append_audit("promote", "gates", {"model_id": 2})
    expected_first = _spec_hash(
        "0" * 64,
        {
            "seq": 1,
            "created_at": clock(),
            "actor": "system",
            "event": "install",
            "details": {"model_id": 1, "gates": None},
            "prev_hash": "0" * 64,
        },
    )
    assert first.hash == expected_first
    assert second.hash == _spec_hash(
        first.hash,
        {
            "seq": 2,
            "created_at": clock(),
            "actor": "gates",
            "event": "promote",
            "details": {"model_id": 2},
            "prev_hash": first.hash,
        },
    )
    egress = store.append_egress(
        destination="superlink:9092", kind="metrics", payload_bytes=64, content_sha256="c" * 64
    )
    assert egress.hash == _spec_hash(
        "0" * 64,
        {
            "seq": 1,
            "created_at": clock(),
            "destination": "superlink:9092",
            "kind": "metrics",
            "payload_bytes": 64,
            "round": None,
            "content_sha256": "c" * 64,
            "details": {},
            "prev_hash": "0" * 64,
        },
    )


def test_listings_are_newest_first_and_totals_add_up(store: SiteStore) -> None:
    _fill(store, 5)
    store.append_egress(destination="superlink:9092", kind="secagg", payload_bytes=7, content_sha256="d" * 64)
    assert [entry.seq for entry in store.audit(limit=2)] == [5, 4]
    assert [entry.seq for entry in store.audit(limit=2, offset=3)] == [2, 1]
    assert store.audit()[0].fields == {
        "actor": "operator",
        "event": "label",
        "details": {"input_id": 4, "note": "ünïcode ok"},
    }
    assert store.egress(limit=1)[0].fields["kind"] == "secagg"
    assert store.egress_totals() == {"secagg": 7, "update": 100 + 200 + 300 + 400 + 500}
    assert store.verify_chains() == {
        "audit": ChainReport(ok=True, entries=5, first_bad_seq=None),
        "egress": ChainReport(ok=True, entries=6, first_bad_seq=None),
    }


def test_the_store_itself_cannot_change_or_delete_chain_rows(store: SiteStore, store_path: Path) -> None:
    _fill(store, 2)
    with sqlite3.connect(store_path) as conn:
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            conn.execute("UPDATE audit_log SET actor = 'nobody'")
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            conn.execute("DELETE FROM egress_ledger")


def test_an_edited_row_is_found(store: SiteStore, store_path: Path) -> None:
    _fill(store, 5)
    _tamper(store_path, "audit_log", "UPDATE audit_log SET details = ? WHERE seq = 3", ('{"input_id":99}',))
    assert store.verify_chains()["audit"] == ChainReport(ok=False, entries=5, first_bad_seq=3)
    assert store.verify_chains()["egress"].ok
    _tamper(store_path, "egress_ledger", "UPDATE egress_ledger SET payload_bytes = 1 WHERE seq = 4")
    assert store.verify_chains()["egress"] == ChainReport(ok=False, entries=5, first_bad_seq=4)


def test_an_edit_that_also_rewrites_its_own_hash_breaks_the_next_row(
    store: SiteStore, store_path: Path
) -> None:
    _fill(store, 4)
    [entry] = [e for e in store.audit() if e.seq == 2]
    forged_fields = {
        "seq": 2,
        "created_at": entry.created_at,
        "actor": "operator",
        "event": "label",
        "details": {"input_id": 1, "note": "forged"},
    }
    with sqlite3.connect(store_path) as conn:
        prev_hash = conn.execute("SELECT prev_hash FROM audit_log WHERE seq = 2").fetchone()[0]
    forged_hash = _spec_hash(prev_hash, {**forged_fields, "prev_hash": prev_hash})
    _tamper(
        store_path,
        "audit_log",
        "UPDATE audit_log SET details = ?, hash = ? WHERE seq = 2",
        (json.dumps(forged_fields["details"], sort_keys=True, separators=(",", ":")), forged_hash),
    )
    assert store.verify_chains()["audit"].first_bad_seq == 3


def test_a_deleted_middle_row_is_found(store: SiteStore, store_path: Path) -> None:
    _fill(store, 5)
    _tamper(store_path, "audit_log", "DELETE FROM audit_log WHERE seq = 3")
    assert store.verify_chains()["audit"] == ChainReport(ok=False, entries=4, first_bad_seq=4)
    _tamper(store_path, "egress_ledger", "DELETE FROM egress_ledger WHERE seq = 1")
    assert store.verify_chains()["egress"] == ChainReport(ok=False, entries=4, first_bad_seq=2)


def test_reordered_rows_are_found(store: SiteStore, store_path: Path) -> None:
    _fill(store, 5)
    with sqlite3.connect(store_path, isolation_level=None) as conn:
        conn.execute("DROP TRIGGER audit_log_no_update")
        conn.execute("BEGIN")
        conn.execute("UPDATE audit_log SET seq = -1 WHERE seq = 2")
        conn.execute("UPDATE audit_log SET seq = 2 WHERE seq = 3")
        conn.execute("UPDATE audit_log SET seq = 3 WHERE seq = -1")
        conn.execute("COMMIT")
    assert store.verify_chains()["audit"].first_bad_seq == 2


def test_details_that_json_cannot_hold_exactly_are_refused(store: SiteStore) -> None:
    store.append_audit("ok", "system", {"fine": 1.5})
    with pytest.raises(ValueError):
        store.append_audit("bad", "system", {"accuracy": math.nan})
    with pytest.raises(TypeError):
        store.append_egress(
            destination="x", kind="update", payload_bytes=1, content_sha256="e" * 64, details={"blob": b"raw"}
        )
    assert [entry.fields["event"] for entry in store.audit()] == ["ok"]
    assert store.verify_chains()["audit"].ok


def test_a_changed_content_hash_is_found_and_a_malformed_one_refused(
    store: SiteStore, store_path: Path
) -> None:
    from genba.errors import UsageError

    _fill(store, 3)
    _tamper(
        store_path, "egress_ledger", "UPDATE egress_ledger SET content_sha256 = ? WHERE seq = 2", ("9" * 64,)
    )
    assert store.verify_chains()["egress"] == ChainReport(ok=False, entries=3, first_bad_seq=2)
    for bad in ("A" * 64, "a" * 63, "g" * 64, ""):
        with pytest.raises(UsageError, match="content_sha256 must be 64 lowercase hex digits"):
            store.append_egress(destination="x", kind="error", payload_bytes=1, content_sha256=bad)
    # The column's own check, for a writer that skips the store.
    with pytest.raises(sqlite3.IntegrityError), sqlite3.connect(store_path) as conn:
        conn.execute(
            "INSERT INTO egress_ledger (seq, created_at, destination, kind, payload_bytes, details,"
            " prev_hash, hash, content_sha256) VALUES (9, 0, 'x', 'e', 1, '{}', '', '', 'XYZ')"
        )
