"""Reads and writes on the store never wait for each other: real threads on a real SQLite file."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from edge_agent.store import ChainEntry, ChainReport, SiteStore
from edge_agent.store.connection import Database

#: Only a guard against a hang: every assertion below is about order and visibility, never time.
HANG = 30.0


def _table(db: Database) -> None:
    with db.write() as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS t (v INTEGER)")


def _count(db: Database) -> int:
    with db.read() as conn:
        return int(conn.execute("SELECT count(*) FROM t").fetchone()[0])


def test_a_write_in_progress_does_not_block_a_reader(store_path: Path) -> None:
    db = Database(store_path)
    _table(db)
    inside, release = threading.Event(), threading.Event()

    def writer() -> None:
        with db.write() as conn:
            conn.execute("INSERT INTO t VALUES (1)")
            inside.set()
            release.wait(HANG)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        assert inside.wait(HANG)
        seen: list[int] = []
        reader = threading.Thread(target=lambda: seen.append(_count(db)))
        reader.start()
        reader.join(HANG)
        assert not reader.is_alive(), "the reader waited for the writer's transaction"
        assert seen == [0]  # the uncommitted row is invisible
    finally:
        release.set()
        thread.join(HANG)
    assert _count(db) == 1
    db.close()


def test_a_read_in_progress_does_not_block_a_writer_and_keeps_its_snapshot(store_path: Path) -> None:
    db = Database(store_path)
    _table(db)
    with db.read() as conn:
        assert conn.execute("SELECT count(*) FROM t").fetchone()[0] == 0
        writer = threading.Thread(target=_insert, args=(db,))
        writer.start()
        writer.join(HANG)
        assert not writer.is_alive(), "the writer waited for the reader"
        assert conn.execute("SELECT count(*) FROM t").fetchone()[0] == 0  # the same snapshot throughout
    assert _count(db) == 1
    db.close()


def _insert(db: Database) -> None:
    with db.write() as conn:
        conn.execute("INSERT INTO t VALUES (1)")


def test_readers_on_several_threads_each_get_a_connection_and_the_store_closes_them(store_path: Path) -> None:
    db = Database(store_path)
    _table(db)
    inside, release = threading.Barrier(4), threading.Event()
    connections: list[object] = []

    def reader() -> None:
        with db.read() as conn:
            connections.append(conn)
            inside.wait(HANG)
            release.wait(HANG)

    threads = [threading.Thread(target=reader) for _ in range(3)]
    for thread in threads:
        thread.start()
    inside.wait(HANG)  # three readers inside their read at once: none waited for another
    release.set()
    for thread in threads:
        thread.join(HANG)
    assert len({id(conn) for conn in connections}) == 3
    db.close()


def test_an_audit_page_is_read_while_a_prediction_batch_holds_the_write_lock(store_path: Path) -> None:
    with SiteStore(store_path) as store:
        store.append_audit("agent_start", "system", {})
        inside, release = threading.Event(), threading.Event()

        def batch() -> None:
            with store._db.write() as conn:  # what record_served holds while it writes a batch
                conn.execute(
                    "INSERT INTO inputs (created_at, kind, payload, payload_sha256) "
                    "VALUES (1, 'text', x'61', '')"
                )
                inside.set()
                release.wait(HANG)

        thread = threading.Thread(target=batch)
        thread.start()
        try:
            assert inside.wait(HANG)
            answers: list[tuple[list[ChainEntry], ChainReport, dict[str, Any]]] = []
            reader = threading.Thread(
                target=lambda: answers.append(
                    (store.audit(), store.verify_chain("audit"), store.kpi_summary())
                )
            )
            reader.start()
            reader.join(HANG)
            assert not reader.is_alive(), "reading the audit log waited for the batch being written"
            entries, report, summary = answers[0]
            assert [e.fields["event"] for e in entries] == ["agent_start"] and report.ok
            assert summary["predictions"] == 0
        finally:
            release.set()
            thread.join(HANG)
