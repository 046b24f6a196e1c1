"""The site store's schema as ordered migrations, tracked with ``PRAGMA user_version``.

Each migration runs in its own ``BEGIN IMMEDIATE`` transaction together with the version bump,
so a crash or an error mid-migration leaves the store at the previous version, never half-way.
Never edit a released migration: append a new one.
"""

from __future__ import annotations

import contextlib
import functools
import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Final

from genba.errors import StoreError

_V1: Final = """
CREATE TABLE inputs (
    id INTEGER PRIMARY KEY,
    created_at REAL NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('text', 'image')),
    payload BLOB NOT NULL,
    payload_sha256 TEXT NOT NULL,
    groups TEXT NOT NULL DEFAULT '{}',
    source TEXT NOT NULL DEFAULT '',
    pruned_at REAL
);
CREATE INDEX inputs_by_time ON inputs (created_at);

CREATE TABLE models (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    version INTEGER NOT NULL,
    manifest_sha256 TEXT NOT NULL,
    path TEXT NOT NULL,
    signer_key_id TEXT,
    lineage TEXT NOT NULL DEFAULT '{}',
    manifest TEXT NOT NULL DEFAULT '{}',
    installed_at REAL NOT NULL,
    installed_by TEXT NOT NULL,
    UNIQUE (name, version)
);

CREATE TABLE predictions (
    id INTEGER PRIMARY KEY,
    input_id INTEGER NOT NULL REFERENCES inputs (id),
    model_id INTEGER NOT NULL REFERENCES models (id),
    stage TEXT NOT NULL CHECK (stage IN ('production', 'pilot', 'shadow', 'evaluation')),
    label TEXT,
    score REAL,
    margin REAL,
    latency_ms REAL NOT NULL,
    provider TEXT NOT NULL,
    served INTEGER NOT NULL CHECK (served IN (0, 1)),
    created_at REAL NOT NULL
);
CREATE INDEX predictions_by_model_stage_time ON predictions (model_id, stage, created_at);
CREATE INDEX predictions_by_input ON predictions (input_id);
CREATE INDEX predictions_by_time ON predictions (created_at);

CREATE TABLE labels (
    id INTEGER PRIMARY KEY,
    input_id INTEGER NOT NULL REFERENCES inputs (id),
    label TEXT NOT NULL,
    operator_seconds REAL,
    actor TEXT NOT NULL,
    groups TEXT NOT NULL DEFAULT '{}',
    split TEXT NOT NULL CHECK (split IN ('train', 'holdout')),
    is_correction INTEGER NOT NULL CHECK (is_correction IN (0, 1)),
    created_at REAL NOT NULL
);
CREATE INDEX labels_by_input ON labels (input_id, id);

-- The label that counts for an input is its newest one (highest id: the clock may repeat).
CREATE VIEW latest_labels AS
SELECT l.* FROM labels AS l
WHERE l.id = (SELECT max(newer.id) FROM labels AS newer WHERE newer.input_id = l.input_id);

CREATE TABLE slots (
    slot TEXT PRIMARY KEY CHECK (slot IN ('production', 'candidate')),
    model_id INTEGER NOT NULL REFERENCES models (id),
    stage TEXT NOT NULL,
    since REAL NOT NULL,
    CHECK ((slot = 'production' AND stage = 'production')
        OR (slot = 'candidate' AND stage IN ('pilot', 'shadow', 'evaluation')))
);

CREATE TABLE production_history (
    id INTEGER PRIMARY KEY,
    model_id INTEGER NOT NULL REFERENCES models (id),
    started_at REAL NOT NULL,
    ended_at REAL,
    end_reason TEXT CHECK (end_reason IN ('replaced', 'rolled_back', 'restored'))
);

CREATE TABLE stage_decisions (
    id INTEGER PRIMARY KEY,
    model_id INTEGER NOT NULL REFERENCES models (id),
    from_stage TEXT,
    to_stage TEXT,
    actor TEXT NOT NULL,
    outcome TEXT NOT NULL
        CHECK (outcome IN ('advance', 'hold', 'rollback', 'install', 'replace', 'reject')),
    gates TEXT,
    created_at REAL NOT NULL
);
CREATE INDEX stage_decisions_by_model ON stage_decisions (model_id, id);

CREATE TABLE kpi_daily (
    day TEXT NOT NULL,
    model_id INTEGER NOT NULL REFERENCES models (id),
    stage TEXT NOT NULL,
    metric TEXT NOT NULL,
    value REAL NOT NULL,
    PRIMARY KEY (day, model_id, stage, metric)
);

CREATE TABLE audit_log (
    seq INTEGER PRIMARY KEY,
    created_at REAL NOT NULL,
    actor TEXT NOT NULL,
    event TEXT NOT NULL,
    details TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);

CREATE TABLE egress_ledger (
    seq INTEGER PRIMARY KEY,
    created_at REAL NOT NULL,
    destination TEXT NOT NULL,
    kind TEXT NOT NULL,
    payload_bytes INTEGER NOT NULL CHECK (payload_bytes >= 0),
    round INTEGER,
    details TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);

-- The chains are append-only. These triggers stop the store's own code from ever changing them;
-- someone editing the file by hand can drop them, which is what the hash chain then detects.
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
CREATE TRIGGER egress_ledger_no_update BEFORE UPDATE ON egress_ledger
BEGIN SELECT RAISE(ABORT, 'egress_ledger is append-only'); END;
CREATE TRIGGER egress_ledger_no_delete BEFORE DELETE ON egress_ledger
BEGIN SELECT RAISE(ABORT, 'egress_ledger is append-only'); END;
"""

# v2: embeddings the site's training computed with a backbone, so the next run embeds only new inputs.
# ``model_key`` names everything that decides an embedding (backbone graph, preprocessing), so a
# head-swapped candidate shares its parent's vectors. ``vector`` is float32, little-endian.
_V2: Final = """
CREATE TABLE embeddings (
    model_key TEXT NOT NULL,
    input_id INTEGER NOT NULL REFERENCES inputs (id),
    dim INTEGER NOT NULL CHECK (dim > 0),
    vector BLOB NOT NULL CHECK (length(vector) = 4 * dim),
    created_at REAL NOT NULL,
    PRIMARY KEY (model_key, input_id)
);
CREATE INDEX embeddings_by_input ON embeddings (input_id);
"""

# v3: drift monitoring. ``drift_features``: what drift is tested on for each production answer (scores
# and fixed projections of the embedding, float32 little-endian; no text). ``drift_references``: the
# window of answers a model's later windows are compared with. ``drift_checks``: every window tested.
_V3: Final = """
CREATE TABLE drift_features (
    prediction_id INTEGER PRIMARY KEY REFERENCES predictions (id),
    model_id INTEGER NOT NULL REFERENCES models (id),
    dim INTEGER NOT NULL CHECK (dim > 0),
    vector BLOB NOT NULL CHECK (length(vector) = 4 * dim)
);
CREATE INDEX drift_features_by_model ON drift_features (model_id, prediction_id);

CREATE TABLE drift_references (
    model_id INTEGER PRIMARY KEY REFERENCES models (id),
    first_prediction INTEGER NOT NULL,
    last_prediction INTEGER NOT NULL,
    items INTEGER NOT NULL CHECK (items > 0),
    created_at REAL NOT NULL
);

CREATE TABLE drift_checks (
    id INTEGER PRIMARY KEY,
    model_id INTEGER NOT NULL REFERENCES models (id),
    reference TEXT NOT NULL CHECK (reference IN ('manifest', 'production')),
    first_prediction INTEGER NOT NULL,
    last_prediction INTEGER NOT NULL,
    items INTEGER NOT NULL CHECK (items > 0),
    status TEXT NOT NULL CHECK (status IN ('ok', 'warning', 'drift')),
    feature TEXT NOT NULL,
    statistic REAL NOT NULL,
    p_value REAL NOT NULL,
    tests INTEGER NOT NULL,
    created_at REAL NOT NULL
);
CREATE INDEX drift_checks_by_model ON drift_checks (model_id, id);
CREATE INDEX drift_checks_by_time ON drift_checks (created_at);
"""

# v4: the SHA-256 of exactly what each egress entry's message carried (``genba.protocol.content_sha256``),
# so the ledger can be compared with what the server received. Entries written before it keep NULL,
# and the chain hashes the column only where it is set, so their hashes still verify.
_V4: Final = """
ALTER TABLE egress_ledger ADD COLUMN content_sha256 TEXT
    CHECK (content_sha256 IS NULL OR (length(content_sha256) = 64 AND content_sha256 NOT GLOB '*[^0-9a-f]*'));
"""

# v5: held-out labels decided by content (``edge_agent.split``) and held-out sets that are renewed.
# ``inputs.content_key``: SHA-256 of the normalised content, set when an input is labelled (and for
# labelled inputs from before v5 when the store is first opened for writing); retention blanks it
# with the payload. ``labels.holdout_epoch``: the held-out set a held-out label belongs to (NULL for
# train labels). ``stage_decisions.holdout_epoch``: the held-out set a decision judged the candidate
# on (NULL: the decision judged none). ``holdout_epochs``: when each held-out set began, and why.
# Labels and decisions from before v5 belong to epoch 0.
_V5: Final = """
ALTER TABLE inputs ADD COLUMN content_key TEXT;
CREATE INDEX inputs_by_content_key ON inputs (content_key) WHERE content_key IS NOT NULL;

ALTER TABLE labels ADD COLUMN holdout_epoch INTEGER CHECK (holdout_epoch IS NULL OR holdout_epoch >= 0);
UPDATE labels SET holdout_epoch = 0 WHERE split = 'holdout';
CREATE INDEX labels_by_split ON labels (split, holdout_epoch);

ALTER TABLE stage_decisions ADD COLUMN holdout_epoch INTEGER;
UPDATE stage_decisions SET holdout_epoch = 0 WHERE EXISTS (
    SELECT 1 FROM json_each(stage_decisions.gates, '$.gates') AS g
    WHERE g.type = 'object' AND json_extract(g.value, '$.name') = 'accuracy'
    AND (json_extract(g.value, '$.value') IS NOT NULL OR json_extract(g.value, '$.evidence') IS NOT NULL)
);

CREATE TABLE holdout_epochs (
    epoch INTEGER PRIMARY KEY CHECK (epoch >= 0),
    started_at REAL NOT NULL,
    reason TEXT NOT NULL
);
INSERT INTO holdout_epochs (epoch, started_at, reason) VALUES (0, 0, 'the first held-out set');
"""

# v6: the audit sample, served inputs drawn at random (``store.audit_share``) whatever production
# answered, so that their labels are an unbiased sample of the traffic (``edge_agent.audit``).
_V6: Final = """
CREATE TABLE audit_sample (
    input_id INTEGER PRIMARY KEY REFERENCES inputs (id),
    drawn_at REAL NOT NULL
);
"""

# v7: a model's version is a release and a revision (``genba.versions``): IT's releases are
# revision 0, the site's own candidates 1, 2, ... of the release they descend from, so a second
# candidate from one parent and IT's next release both find their version free. SQLite cannot drop
# the old UNIQUE (name, version), so the table is rebuilt with the same ids (foreign keys off for
# that one migration, checked before it commits). Models installed before v7 keep revision 0.
_V7: Final = """
CREATE TABLE models_v7 (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    version INTEGER NOT NULL,
    revision INTEGER NOT NULL DEFAULT 0 CHECK (revision >= 0),
    manifest_sha256 TEXT NOT NULL,
    path TEXT NOT NULL,
    signer_key_id TEXT,
    lineage TEXT NOT NULL DEFAULT '{}',
    manifest TEXT NOT NULL DEFAULT '{}',
    installed_at REAL NOT NULL,
    installed_by TEXT NOT NULL,
    UNIQUE (name, version, revision)
);
INSERT INTO models_v7 (id, name, version, revision, manifest_sha256, path, signer_key_id, lineage,
                       manifest, installed_at, installed_by)
SELECT id, name, version, 0, manifest_sha256, path, signer_key_id, lineage, manifest, installed_at,
       installed_by FROM models;
DROP TABLE models;
ALTER TABLE models_v7 RENAME TO models;
"""

# v8: drift episodes (``DriftConfig.clear_windows``): ``drift_checks.alarm`` marks the window that
# raised an alarm (opened an episode); the later drift windows of the same episode are recorded
# with alarm 0. Checks from before v8 count as alarms where they found drift, as they were treated.
_V8: Final = """
ALTER TABLE drift_checks ADD COLUMN alarm INTEGER NOT NULL DEFAULT 0 CHECK (alarm IN (0, 1));
UPDATE drift_checks SET alarm = 1 WHERE status = 'drift';
"""

# v9: the paired sample (``edge_agent.store.paired_sample``): both models' answers on the held-out
# inputs a candidate answered in shadow or pilot, and which disagreements were drawn for a label.
_V9: Final = """
CREATE TABLE paired_sample (
    model_id INTEGER NOT NULL REFERENCES models (id),
    input_id INTEGER NOT NULL REFERENCES inputs (id),
    production_id INTEGER NOT NULL REFERENCES models (id),
    stage TEXT NOT NULL CHECK (stage IN ('shadow', 'pilot')),
    candidate_label TEXT NOT NULL,
    production_label TEXT NOT NULL,
    drawn INTEGER NOT NULL CHECK (drawn IN (0, 1)),
    created_at REAL NOT NULL,
    PRIMARY KEY (model_id, input_id),
    CHECK (drawn = 0 OR candidate_label <> production_label)
);
CREATE INDEX paired_sample_drawn ON paired_sample (model_id, drawn, input_id);
"""

# v10: the latency the caller saw for each answer (``caller_latency_ms``: from the agent taking the
# request to its answer being ready, queueing and micro-batching included) next to the model's own
# time for the batch (``latency_ms``); for a shadow answer, which no caller waited for, what a caller
# would have seen had it answered instead of production. The KPIs and the latency gate read it;
# answers from before v10 keep NULL and count with their model time, the only figure they have.
_V10: Final = """
ALTER TABLE predictions ADD COLUMN caller_latency_ms REAL
    CHECK (caller_latency_ms IS NULL OR caller_latency_ms >= 0);
"""

# v11: the audit log by event, newest first. The privacy budget (status, the federation view, each
# DP round) reads the few entries of one event; without it each read scanned the whole log, which
# grows by every action on the site (20,000 entries: 5 ms a read, twice per status).
_V11: Final = """
CREATE INDEX audit_log_event ON audit_log (event, seq);
"""

# v12: production's answers by the latency their caller saw, for the all-time KPI summary's p50 and
# p95 (``/v1/kpis``): walking the index to the rank needed replaces sorting every answer the site
# ever served (bench/kpis_at_scale.py). It indexes ``kpi.INDEXED_CALLER_LATENCY`` (the latency
# ``+ 0``) and only production rows, so only that query can use it: the report's and the daily
# rollup's windows keep their time indexes (SQLite would otherwise walk it to avoid their sort).
_V12: Final = """
CREATE INDEX production_by_caller_latency ON predictions (coalesce(caller_latency_ms, latency_ms) + 0)
    WHERE stage = 'production';
"""

MIGRATIONS: Final[tuple[tuple[int, str], ...]] = (
    (1, _V1), (2, _V2), (3, _V3), (4, _V4), (5, _V5), (6, _V6), (7, _V7), (8, _V8), (9, _V9),
    (10, _V10), (11, _V11), (12, _V12),
)  # fmt: skip
#: Migrations that rebuild a table others refer to: SQLite's documented procedure turns foreign
#: keys off around them (a pragma that cannot change inside a transaction) and checks them after.
_REBUILDS: Final = frozenset({7})
SCHEMA_VERSION: Final = MIGRATIONS[-1][0]


def schema_version(conn: sqlite3.Connection) -> int:
    version: int = conn.execute("PRAGMA user_version").fetchone()[0]
    return version


def check_not_newer(conn: sqlite3.Connection, migrations: Sequence[tuple[int, str]] = MIGRATIONS) -> int:
    """Refuse a store written by a newer Genba: its tables may mean things this code gets wrong."""
    found, known = schema_version(conn), migrations[-1][0]
    if found > known:
        raise StoreError(f"store schema v{found} is newer than this Genba (v{known}); upgrade Genba")
    return found


def apply_migrations(
    conn: sqlite3.Connection, path: Path, migrations: Sequence[tuple[int, str]] = MIGRATIONS
) -> int:
    """Bring the store up to the newest migration; returns the version it ends at.

    ``conn`` must be in autocommit mode (``isolation_level=None``). The version is re-read inside
    each write transaction, so two processes opening a fresh store at once migrate it only once.
    """
    if check_not_newer(conn, migrations) == migrations[-1][0]:
        return migrations[-1][0]  # the usual case: no write lock needed just to open
    for version, sql in migrations:
        with _foreign_keys_off(conn, version in _REBUILDS):
            conn.execute("BEGIN IMMEDIATE")  # a lock held elsewhere surfaces as the caller's "locked" error
            try:
                if schema_version(conn) < version:
                    _migrate(conn, path, version, sql)
                    if version in _REBUILDS:
                        _require_foreign_keys_hold(conn, path, version)
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
    return schema_version(conn)


@contextlib.contextmanager
def _foreign_keys_off(conn: sqlite3.Connection, off: bool) -> Iterator[None]:
    was_on = bool(conn.execute("PRAGMA foreign_keys").fetchone()[0])
    if off and was_on:
        conn.execute("PRAGMA foreign_keys=OFF")
    try:
        yield
    finally:
        if off and was_on:
            conn.execute("PRAGMA foreign_keys=ON")


def _require_foreign_keys_hold(conn: sqlite3.Connection, path: Path, version: int) -> None:
    broken = conn.execute("PRAGMA foreign_key_check").fetchall()
    if broken:
        raise StoreError(
            f"site store {path} cannot be migrated to schema v{version}: {len(broken)} rows would refer "
            f"to missing rows (first in table {broken[0][0]}); restore it from backup or report this as a bug"
        )


def _migrate(conn: sqlite3.Connection, path: Path, version: int, sql: str) -> None:
    try:
        for statement in split_statements(sql):
            conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {int(version)}")
    except sqlite3.Error as exc:
        raise StoreError(
            f"site store {path} cannot be migrated to schema v{version} ({exc}); "
            "restore it from backup or report this as a bug"
        ) from exc


def split_statements(sql: str) -> Iterator[str]:
    """Cut a script into single statements (``executescript`` would commit our transaction)."""
    pending = ""
    for line in sql.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            if pending.strip():
                yield pending.strip()
            pending = ""
    if pending.strip() and not _only_comments(pending):
        raise sqlite3.OperationalError(f"incomplete SQL statement: {pending.strip()[:60]}")


def _only_comments(text: str) -> bool:
    return all(not line.strip() or line.strip().startswith("--") for line in text.splitlines())


def missing_parts(conn: sqlite3.Connection) -> list[str]:
    """The tables and columns this Genba's schema has that the store behind ``conn`` lacks.

    ``PRAGMA integrity_check`` passes a store with a table dropped; a restored backup is held to
    the schema itself, compared with one made afresh by the migrations.
    """
    found = _tables(conn)
    missing: list[str] = []
    for table, columns in _expected_tables().items():
        if table not in found:
            missing.append(f"table {table}")
        else:
            missing += [f"column {table}.{column}" for column in sorted(columns - found[table])]
    return missing


@functools.cache
def _expected_tables() -> dict[str, frozenset[str]]:
    with contextlib.closing(sqlite3.connect(":memory:", isolation_level=None)) as fresh:
        apply_migrations(fresh, Path(":memory:"))
        return _tables(fresh)


def _tables(conn: sqlite3.Connection) -> dict[str, frozenset[str]]:
    names = [
        row[0]
        for row in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        )
    ]
    return {
        name: frozenset(row[1] for row in conn.execute("SELECT * FROM pragma_table_info(?)", (name,)))
        for name in names
    }
