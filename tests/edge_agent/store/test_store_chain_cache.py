"""Verifying a chain from where it was last found intact: what a cached result can and cannot hide.

An intruder edits the store file to rewrite history (an old audit entry, a ledger row); the API's
pages say ``verified`` from an incremental check. These tests verify first (so a mark is cached),
then tamper, then verify again.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from edge_agent.store import ChainReport, SiteStore


def _tamper(path: Path, sql: str, params: tuple[Any, ...] = ()) -> None:
    """Edit the file as an intruder would: another connection, the append-only triggers dropped."""
    with sqlite3.connect(path, isolation_level=None) as conn:
        for trigger in ("no_update", "no_delete"):
            conn.execute(f"DROP TRIGGER IF EXISTS audit_log_{trigger}")
        conn.execute(sql, params)


def _fill(store: SiteStore, entries: int, start: int = 0) -> None:
    for number in range(start, start + entries):
        store.append_audit("promote", "supervisor", {"model_id": number})


def test_an_entry_edited_after_it_was_verified_is_found(store: SiteStore, store_path: Path) -> None:
    _fill(store, 6)
    assert store.verify_chain("audit").ok  # the store now remembers entry 6 as verified
    _tamper(store_path, "UPDATE audit_log SET details = ? WHERE seq = 2", ('{"model_id":99}',))
    assert store.verify_chain("audit") == ChainReport(ok=False, entries=6, first_bad_seq=2)
    assert store.verify_chain("audit").first_bad_seq == 2  # and keeps saying so


def test_entries_added_after_a_verification_are_checked(store: SiteStore, store_path: Path) -> None:
    _fill(store, 3)
    assert store.verify_chain("audit").ok
    _fill(store, 3, start=3)
    assert store.verify_chain("audit") == ChainReport(ok=True, entries=6, first_bad_seq=None)
    _tamper(store_path, "UPDATE audit_log SET actor = 'nobody' WHERE seq = 5")
    assert store.verify_chain("audit") == ChainReport(ok=False, entries=6, first_bad_seq=5)


@pytest.fixture
def blind(store: SiteStore, monkeypatch: pytest.MonkeyPatch) -> SiteStore:
    """The store as if an edit reached the file without SQLite noticing (bytes changed on disk)."""
    monkeypatch.setattr(store._db, "foreign_writes", lambda: 0)
    return store


def test_a_deleted_verified_entry_is_found_even_unnoticed(blind: SiteStore, store_path: Path) -> None:
    _fill(blind, 5)
    assert blind.verify_chain("audit").ok
    _tamper(store_path, "DELETE FROM audit_log WHERE seq = 2")
    assert blind.verify_chain("audit") == ChainReport(ok=False, entries=4, first_bad_seq=3)


def test_a_rewritten_last_verified_entry_is_found_even_unnoticed(blind: SiteStore, store_path: Path) -> None:
    _fill(blind, 4)
    assert blind.verify_chain("audit").ok
    _tamper(store_path, "UPDATE audit_log SET hash = ? WHERE seq = 4", ("f" * 64,))
    assert blind.verify_chain("audit") == ChainReport(ok=False, entries=4, first_bad_seq=4)


def test_a_full_verification_finds_what_an_unnoticed_edit_hid_and_it_stays_found(
    blind: SiteStore, store_path: Path
) -> None:
    """The daily full check is what catches an edit inside the verified part that kept its hash."""
    _fill(blind, 5)
    assert blind.verify_chain("audit").ok
    _tamper(store_path, "UPDATE audit_log SET details = ? WHERE seq = 3", ('{"model_id":42}',))
    assert blind.verify_chain("audit", full=True) == ChainReport(ok=False, entries=5, first_bad_seq=3)
    assert blind.verify_chain("audit") == ChainReport(ok=False, entries=5, first_bad_seq=3)


def test_a_fresh_store_verifies_from_the_first_entry(store_path: Path) -> None:
    with SiteStore(store_path) as store:
        _fill(store, 4)
        assert store.verify_chain("audit").ok
    _tamper(store_path, "UPDATE audit_log SET event = 'rollback' WHERE seq = 1")
    with SiteStore(store_path) as reopened:
        assert reopened.verify_chain("audit").first_bad_seq == 1


def test_newest_entries_cut_off_are_found_while_the_store_remembers_them(
    store: SiteStore, store_path: Path
) -> None:
    """The chain alone cannot show its end being cut off (every remaining entry still fits): the
    store remembers how far it wrote and verified."""
    _fill(store, 6)
    _tamper(store_path, "DELETE FROM audit_log WHERE seq > 4")
    assert store.verify_chain("audit") == ChainReport(ok=False, entries=4, first_bad_seq=5)
    assert store.verify_chain("audit", full=True).first_bad_seq == 5  # and keeps saying so
    with SiteStore(store_path) as restarted:  # a fresh process has nothing to compare with
        assert restarted.verify_chain("audit").ok


def test_entries_appended_while_a_page_is_verified_never_read_as_cut_off(store: SiteStore) -> None:
    import threading

    _fill(store, 2)
    stop = threading.Event()

    def appender() -> None:
        number = 100
        while not stop.is_set():
            _fill(store, 1, start=number)
            number += 1

    thread = threading.Thread(target=appender)
    thread.start()
    try:
        reports = [store.verify_chain("audit") for _ in range(200)]
    finally:
        stop.set()
        thread.join(30)
    assert all(report.ok for report in reports)
