"""Opening, migrating and refusing stores; the connection's settings; errors that read as one line."""

from __future__ import annotations

import sqlite3
import stat
from collections.abc import Callable
from contextlib import closing
from pathlib import Path

import pytest

from edge_agent.store import MIGRATIONS, SCHEMA_VERSION, ModelRow, SiteStore
from edge_agent.store.connection import store_error
from edge_agent.store.schema import apply_migrations
from genba.errors import DuplicateItemError, StoreError

EXPECTED_TABLES = {
    "inputs",
    "predictions",
    "labels",
    "models",
    "slots",
    "production_history",
    "stage_decisions",
    "kpi_daily",
    "audit_log",
    "egress_ledger",
    "holdout_epochs",
}


def _raw(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(path, isolation_level=None)


def _names(path: Path, kind: str) -> set[str]:
    with _raw(path) as conn:
        return {row[0] for row in conn.execute("SELECT name FROM sqlite_schema WHERE type = ?", (kind,))}


def test_migrations_are_numbered_from_one_without_gaps() -> None:
    assert [version for version, _ in MIGRATIONS] == list(range(1, len(MIGRATIONS) + 1))
    assert MIGRATIONS[-1][0] == SCHEMA_VERSION


def test_an_empty_file_is_migrated_to_the_newest_schema(store_path: Path) -> None:
    with SiteStore(store_path) as store:
        assert store.schema_version == SCHEMA_VERSION
    with _raw(store_path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert _names(store_path, "table") >= EXPECTED_TABLES
    assert "latest_labels" in _names(store_path, "view")
    assert len(_names(store_path, "trigger")) == 4


def test_reopening_a_migrated_store_changes_nothing(
    store_path: Path, add_model: Callable[..., ModelRow]
) -> None:
    with SiteStore(store_path) as store:
        model = add_model(store)
    with SiteStore(store_path) as store:
        assert store.schema_version == SCHEMA_VERSION
        assert store.list_models() == [model]


def test_a_store_from_a_newer_genba_is_refused(store_path: Path) -> None:
    SiteStore(store_path).close()
    with _raw(store_path) as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 3}")
    with pytest.raises(StoreError) as caught:
        SiteStore(store_path)
    expected = (
        f"store schema v{SCHEMA_VERSION + 3} is newer than this Genba (v{SCHEMA_VERSION}); upgrade Genba"
    )
    assert str(caught.value) == expected
    assert caught.value.exit_code == 6
    with pytest.raises(StoreError, match="newer than this Genba"):
        SiteStore.read_only(store_path)


def test_a_failing_migration_leaves_the_previous_version_whole(store_path: Path) -> None:
    broken = (*MIGRATIONS, (SCHEMA_VERSION + 1, "CREATE TABLE extra (x);\nINSERT INTO missing VALUES (1);\n"))
    conn = _raw(store_path)
    try:
        with pytest.raises(StoreError, match=f"cannot be migrated to schema v{SCHEMA_VERSION + 1}"):
            apply_migrations(conn, store_path, broken)
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert not conn.in_transaction
    finally:
        conn.close()
    assert "extra" not in _names(store_path, "table")
    assert "inputs" in _names(store_path, "table")


def test_the_connection_runs_wal_flushed_at_each_commit(store: SiteStore, store_path: Path) -> None:
    with store._db.autocommit() as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL: durability "power_cut"
        assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
        assert conn.execute("PRAGMA busy_timeout").fetchone()[0] == 5000
    # WAL is recorded in the file itself, so every later connection gets it too.
    with _raw(store_path) as other:
        assert other.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    store.append_audit("opened", "system", {})
    assert store_path.with_name("store.db-wal").exists()


def test_the_store_file_is_private_to_its_owner(store: SiteStore, store_path: Path) -> None:
    assert stat.S_IMODE(store_path.stat().st_mode) == 0o600


def test_a_file_that_is_not_a_database_fails_with_one_line(store_path: Path) -> None:
    store_path.write_bytes(b"this is a shopping list, not a database\n" * 200)
    with pytest.raises(StoreError) as caught:
        SiteStore(store_path)
    message = str(caught.value)
    assert message == (
        f"site store {store_path} is not a database (corrupt or wrong file); "
        "restore it from backup or point --data elsewhere"
    )
    assert "\n" not in message
    assert isinstance(caught.value.__cause__, sqlite3.DatabaseError)


def test_a_missing_folder_fails_with_one_line(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="cannot be created .*--data folder"):
        SiteStore(tmp_path / "absent" / "store.db")
    with pytest.raises(StoreError, match="cannot be opened"):
        SiteStore.read_only(tmp_path / "absent.db")


def test_a_reader_refuses_a_store_the_agent_has_not_migrated(store_path: Path) -> None:
    _raw(store_path).close()  # an empty database: schema v0
    with pytest.raises(StoreError, match="has schema v0, older than this Genba"):
        SiteStore.read_only(store_path)


def test_a_closed_store_says_so(store_path: Path) -> None:
    store = SiteStore(store_path)
    store.close()
    store.close()  # closing twice is harmless
    with pytest.raises(StoreError, match="is closed"):
        store.list_models()


@pytest.mark.parametrize(
    ("sqlite_says", "we_say"),
    [
        ("database is locked", "is locked by another process; stop the other process using it, then retry"),
        ("database or disk is full", "cannot be written because the disk is full; free some space and retry"),
        ("attempt to write a readonly database", "cannot be written (opened read-only"),
        ("something\nunheard of", "failed (something unheard of); check the file or restore it from backup"),
    ],
)
def test_sqlite_errors_become_one_line_with_what_to_do(sqlite_says: str, we_say: str) -> None:
    error = store_error(Path("/site/store.db"), sqlite3.OperationalError(sqlite_says))
    assert str(error).startswith(f"site store /site/store.db {we_say}")
    assert "\n" not in str(error) and error.exit_code == 6


def test_a_v2_store_gains_the_drift_tables_and_keeps_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    with closing(sqlite3.connect(path, isolation_level=None)) as conn:
        apply_migrations(conn, path, MIGRATIONS[:2])
        conn.execute(
            "INSERT INTO inputs (created_at, kind, payload, payload_sha256) VALUES (1, 'text', x'61', '')"
        )
    with SiteStore(path) as store:
        assert store.schema_version == SCHEMA_VERSION >= 3
        assert store.get_input(1).payload == b"a"
        assert store.drift_checks() == [] and store.drift_reference(1) is None


def test_a_v3_ledger_gains_content_hashes_and_its_old_entries_still_verify(tmp_path: Path) -> None:
    """Entries written before v4 carry no content hash; the chain still verifies them and goes on."""
    import hashlib
    import json

    path = tmp_path / "store.db"
    with closing(sqlite3.connect(path, isolation_level=None)) as conn:
        apply_migrations(conn, path, MIGRATIONS[:3])
        prev = "0" * 64
        for seq in (1, 2):  # as Genba before v4 wrote them: the chain rule over the v3 columns
            fields = {"seq": seq, "created_at": 10.0 * seq, "destination": "superlink:9092",
                      "kind": "masked_update", "payload_bytes": 100 * seq, "round": seq, "details": {},
                      "prev_hash": prev}  # fmt: skip
            text = prev + "\n" + json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
            digest = hashlib.sha256(text.encode()).hexdigest()
            conn.execute(
                "INSERT INTO egress_ledger (seq, created_at, destination, kind, payload_bytes, round,"
                " details, prev_hash, hash)"
                " VALUES (?, ?, 'superlink:9092', 'masked_update', ?, ?, '{}', ?, ?)",
                (seq, 10.0 * seq, 100 * seq, seq, prev, digest),
            )
            prev = digest
    with SiteStore(path) as store:
        assert store.schema_version == SCHEMA_VERSION >= 4
        assert store.verify_chain("egress").ok
        new = store.append_egress(destination="superlink:9092", kind="error", payload_bytes=8,
                                  content_sha256="f" * 64)  # fmt: skip
        entries = store.egress()
        assert [e.fields["content_sha256"] for e in entries] == ["f" * 64, None, None]
        assert entries[0] == new and store.verify_chain("egress").ok
    with closing(sqlite3.connect(path, isolation_level=None)) as conn:
        conn.execute("DROP TRIGGER egress_ledger_no_update")
        conn.execute("UPDATE egress_ledger SET content_sha256 = NULL WHERE seq = 3")
    with SiteStore(path) as store:  # clearing a new entry's hash does not pass for an old entry
        assert store.verify_chain("egress").first_bad_seq == 3


def test_a_v6_store_keeps_its_models_ids_and_references_when_versions_gain_revisions(tmp_path: Path) -> None:
    """v7 rebuilds ``models`` (SQLite cannot drop a UNIQUE): same ids, rows pointing at them intact,
    foreign keys enforced again afterwards, and a site revision of an installed release now fits."""
    from genba.versions import ModelVersion

    path = tmp_path / "store.db"
    with closing(sqlite3.connect(path, isolation_level=None)) as conn:
        conn.execute("PRAGMA foreign_keys=ON")
        apply_migrations(conn, path, MIGRATIONS[:6])
        for model_id, version in ((4, 1), (9, 2)):
            conn.execute(
                "INSERT INTO models (id, name, version, manifest_sha256, path, installed_at, installed_by) "
                "VALUES (?, 'm', ?, ?, ?, 1, 'it')",
                (model_id, version, f"{model_id:064d}", f"m-v{version}"),
            )
        conn.execute(
            "INSERT INTO slots (slot, model_id, stage, since) VALUES ('production', 9, 'production', 1)"
        )
        conn.execute(
            "INSERT INTO inputs (created_at, kind, payload, payload_sha256) VALUES (1, 'text', x'61', '')"
        )
        conn.execute(
            "INSERT INTO predictions (input_id, model_id, stage, label, latency_ms, provider, served, "
            "created_at) VALUES (1, 4, 'production', 'ok', 1, 'cpu', 1, 1)"
        )
    with SiteStore(path) as store:
        assert store.schema_version == SCHEMA_VERSION >= 7
        assert [(m.id, m.version) for m in store.list_models()] == [
            (4, ModelVersion(1)),
            (9, ModelVersion(2)),
        ]
        assert store.slots().production is not None and store.slots().production.model_id == 9
        site_candidate = store.add_model(
            name="m", version=ModelVersion(2, 1), manifest_sha256="c" * 64, path="m-v2.1",
            signer_key_id=None, lineage={}, manifest={}, installed_by="supervisor",
        )  # fmt: skip
        assert store.find_model("m", ModelVersion(2, 1)) == site_candidate
        assert store.find_model("m", 2) is not None and store.find_model("m", 2) != site_candidate
        with pytest.raises(DuplicateItemError, match="m v2.1 is already installed"):
            store.add_model(
                name="m", version=ModelVersion(2, 1), manifest_sha256="d" * 64, path="x",
                signer_key_id=None, lineage={}, manifest={}, installed_by="supervisor",
            )  # fmt: skip
    with closing(sqlite3.connect(path, isolation_level=None)) as conn:
        conn.execute("PRAGMA foreign_keys=ON")
        assert conn.execute("SELECT model_id FROM predictions").fetchall() == [(4,)]
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
        with pytest.raises(sqlite3.IntegrityError, match="FOREIGN KEY"):
            conn.execute(
                "INSERT INTO slots (slot, model_id, stage, since) VALUES ('candidate', 77, 'shadow', 1)"
            )


def test_a_rebuild_that_would_break_a_reference_is_rolled_back(
    store_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The foreign-key check before a rebuild's commit: a rebuild that loses a referenced row fails whole."""
    from edge_agent.store import schema

    SiteStore(store_path).close()
    with closing(_raw(store_path)) as conn:
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute(
            "INSERT INTO models (id, name, version, manifest_sha256, path, installed_at, installed_by) "
            "VALUES (1, 'm', 1, 'x', 'p', 1, 'it')"
        )
        conn.execute(
            "INSERT INTO slots (slot, model_id, stage, since) VALUES ('production', 1, 'production', 1)"
        )
        losing = (*MIGRATIONS, (SCHEMA_VERSION + 1, "DELETE FROM models;\n"))
        monkeypatch.setattr(schema, "_REBUILDS", frozenset({SCHEMA_VERSION + 1}))
        with pytest.raises(StoreError, match="rows would refer to missing rows"):
            apply_migrations(conn, store_path, losing)
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert conn.execute("SELECT count(*) FROM models").fetchone()[0] == 1
        assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
