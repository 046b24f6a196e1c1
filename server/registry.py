"""The server's model registry: versions and their lineage, runs, per-round metrics, deliveries.

SQLite (WAL) at ``it/server/registry.sqlite``; the bundles themselves live beside it in
``it/server/bundles/NAME-vVERSION/``, each verified against IT's key when it is registered.
Only IT's side writes it: ``genba server train``, ``publish`` and ``rollback``.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from genba.errors import UsageError

SCHEMA = """
CREATE TABLE IF NOT EXISTS versions (
    name TEXT NOT NULL,
    version INTEGER NOT NULL,
    manifest_sha256 TEXT NOT NULL,
    kind TEXT NOT NULL,              -- export | federated | rollback
    parent_version INTEGER,
    run TEXT,
    path TEXT NOT NULL,              -- relative to the registry's folder
    created_at REAL NOT NULL,
    PRIMARY KEY (name, version)
);
CREATE TABLE IF NOT EXISTS runs (
    run TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    base_version INTEGER NOT NULL,
    rounds INTEGER NOT NULL,
    min_sites INTEGER NOT NULL,
    privacy TEXT NOT NULL,           -- JSON: the DP settings and the run's epsilon, or {}
    started_at REAL NOT NULL,
    finished_at REAL,
    outcome TEXT,                    -- completed | failed | interrupted | nothing-aggregated
    version INTEGER                  -- the global bundle it produced
);
CREATE TABLE IF NOT EXISTS rounds (
    run TEXT NOT NULL REFERENCES runs(run),
    round INTEGER NOT NULL,
    sites INTEGER NOT NULL,
    failures INTEGER NOT NULL,
    aggregated INTEGER NOT NULL,
    accuracy REAL,
    loss REAL,
    dropped TEXT NOT NULL,           -- JSON: sites sampled for the round that sent no update
    PRIMARY KEY (run, round)
);
CREATE TABLE IF NOT EXISTS participation (
    run TEXT NOT NULL REFERENCES runs(run),
    round INTEGER NOT NULL,
    site TEXT NOT NULL,
    examples INTEGER,
    accuracy REAL,
    loss REAL,
    production_version INTEGER,
    PRIMARY KEY (run, round, site)
);
CREATE TABLE IF NOT EXISTS deliveries (
    name TEXT NOT NULL,
    version INTEGER NOT NULL,
    site TEXT NOT NULL,
    action TEXT NOT NULL,            -- train | publish | rollback
    outcome TEXT NOT NULL,           -- a genba.protocol receipt outcome, or not-reached
    at REAL NOT NULL
);
"""


@dataclass(frozen=True)
class VersionRow:
    name: str
    version: int
    manifest_sha256: str
    kind: str
    parent_version: int | None
    run: str | None
    path: Path
    created_at: float

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "manifest_sha256": self.manifest_sha256,
            "kind": self.kind,
            "parent_version": self.parent_version,
            "run": self.run,
            "path": str(self.path),
            "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.created_at)),
        }


class Registry:
    """One connection to the registry; use as a context manager."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.bundles = self.root / "bundles"
        self._db = sqlite3.connect(str(self.root / "registry.sqlite"), isolation_level=None, timeout=30.0)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._db.executescript(SCHEMA)

    def __enter__(self) -> Registry:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._db.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    # ---------------------------------------------------------------- versions

    def bundle_path(self, name: str, version: int) -> Path:
        return self.bundles / f"{name}-v{version}"

    def add_version(
        self,
        *,
        name: str,
        version: int,
        manifest_sha256: str,
        kind: str,
        parent_version: int | None = None,
        run: str | None = None,
    ) -> VersionRow:
        existing = self.version(name, version)
        if existing is not None:
            if existing.manifest_sha256 != manifest_sha256:
                raise UsageError(
                    f"the registry already holds a different {name} v{version}; "
                    "a new bundle needs a new version number"
                )
            return existing
        self._db.execute(
            "INSERT INTO versions VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                name,
                version,
                manifest_sha256,
                kind,
                parent_version,
                run,
                self.bundle_path(name, version).relative_to(self.root).as_posix(),
                time.time(),
            ),
        )
        row = self.version(name, version)
        assert row is not None
        return row

    def add_written_bundle(
        self, name: str, version: int, *, kind: str, parent_version: int, run: str | None = None
    ) -> VersionRow:
        """Record the bundle just written at :meth:`bundle_path` (its manifest hash read from it)."""
        import hashlib

        manifest = self.bundle_path(name, version) / "manifest.json"
        sha = hashlib.sha256(manifest.read_bytes()).hexdigest()
        return self.add_version(
            name=name, version=version, manifest_sha256=sha, kind=kind, parent_version=parent_version, run=run
        )

    def version(self, name: str, version: int) -> VersionRow | None:
        found = self._db.execute(
            "SELECT * FROM versions WHERE name = ? AND version = ?", (name, version)
        ).fetchone()
        return self._version_row(found) if found else None

    def versions(self, name: str | None = None) -> list[VersionRow]:
        rows = self._db.execute(
            "SELECT * FROM versions WHERE ? IS NULL OR name = ? ORDER BY name, version", (name, name)
        ).fetchall()
        return [self._version_row(row) for row in rows]

    def only_name(self) -> str:
        names = sorted({row.name for row in self.versions()})
        if not names:
            raise UsageError("the registry holds no model yet: run 'genba server train --bundle ...' first")
        if len(names) > 1:
            raise UsageError(f"the registry holds several models ({', '.join(names)}): name one with --model")
        return names[0]

    def next_version(self, name: str) -> int:
        (latest,) = self._db.execute("SELECT MAX(version) FROM versions WHERE name = ?", (name,)).fetchone()
        return int(latest or 0) + 1

    def root_version(self, name: str, version: int) -> VersionRow:
        """The first bundle of ``version``'s lineage: the export IT shipped to the sites."""
        row = self.version(name, version)
        seen = set()
        while row is not None and row.parent_version is not None and row.version not in seen:
            seen.add(row.version)
            parent = self.version(name, row.parent_version)
            if parent is None:
                break
            row = parent
        if row is None:
            raise UsageError(f"the registry holds no {name} v{version}: see 'genba server models'")
        return row

    def _version_row(self, row: tuple[Any, ...]) -> VersionRow:
        name, version, sha, kind, parent, run, path, created = row
        return VersionRow(name, int(version), sha, kind, parent, run, self.root / path, float(created))

    # ---------------------------------------------------------------- runs

    def start_run(
        self,
        run: str,
        *,
        name: str,
        base_version: int,
        rounds: int,
        min_sites: int,
        privacy: Mapping[str, Any],
    ) -> None:
        self._db.execute(
            "INSERT INTO runs (run, name, base_version, rounds, min_sites, privacy, started_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                run,
                name,
                base_version,
                rounds,
                min_sites,
                json.dumps(dict(privacy), sort_keys=True),
                time.time(),
            ),
        )

    def finish_run(
        self, run: str, *, outcome: str, version: int | None, privacy: Mapping[str, Any] | None = None
    ) -> None:
        self._db.execute(
            "UPDATE runs SET finished_at = ?, outcome = ?, version = ?, privacy = COALESCE(?, privacy) "
            "WHERE run = ?",
            (
                time.time(),
                outcome,
                version,
                json.dumps(dict(privacy), sort_keys=True) if privacy else None,
                run,
            ),
        )

    def record_rounds(self, run: str, results: Mapping[str, Any]) -> None:
        """Per-round fit counts and accuracy, and each site's evaluation, from a run's results."""
        accuracy = {int(r): v for r, v in (results.get("accuracy_by_round") or {}).items()}
        losses = {int(r): v for r, v in (results.get("loss_by_round") or {}).items()}
        with self.transaction():
            for round_, fit in (results.get("fit_by_round") or {}).items():
                r = int(round_)
                self._db.execute(
                    "INSERT OR REPLACE INTO rounds VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        run,
                        r,
                        fit["sites"],
                        fit["failures"],
                        int(fit["aggregated"]),
                        accuracy.get(r),
                        losses.get(r),
                        json.dumps(fit.get("dropped", [])),
                    ),
                )
            for round_, sites in (results.get("per_site_by_round") or {}).items():
                for site, figures in sites.items():
                    self._db.execute(
                        "INSERT OR REPLACE INTO participation VALUES (?, ?, ?, ?, ?, ?, ?)",
                        (
                            run,
                            int(round_),
                            site,
                            figures.get("examples"),
                            figures.get("accuracy"),
                            figures.get("loss"),
                            figures.get("production_version"),
                        ),
                    )

    def runs(self) -> list[dict[str, Any]]:
        columns = ("run", "name", "base_version", "rounds", "min_sites", "privacy", "outcome", "version")
        rows = self._db.execute(f"SELECT {', '.join(columns)} FROM runs ORDER BY started_at").fetchall()
        runs = []
        for row in rows:
            entry = dict(zip(columns, row, strict=True))
            entry["privacy"] = json.loads(entry["privacy"])
            entry["rounds_by_number"] = self.rounds(entry["run"])
            runs.append(entry)
        return runs

    def rounds(self, run: str) -> dict[int, dict[str, Any]]:
        rows = self._db.execute(
            "SELECT round, sites, failures, aggregated, accuracy, loss, dropped FROM rounds "
            "WHERE run = ? ORDER BY round",
            (run,),
        ).fetchall()
        by_round: dict[int, dict[str, Any]] = {}
        for round_, sites, failures, aggregated, accuracy, loss, dropped in rows:
            who = self._db.execute(
                "SELECT site FROM participation WHERE run = ? AND round = ? ORDER BY site", (run, round_)
            ).fetchall()
            by_round[int(round_)] = {
                "sites": sites,
                "failures": failures,
                "aggregated": bool(aggregated),
                "accuracy": accuracy,
                "loss": loss,
                "dropped": json.loads(dropped),
                "evaluated_by": [site for (site,) in who],
            }
        return by_round

    def latest_reports(self) -> dict[str, dict[str, Any]]:
        """Per site, what it reported last (the newest run's last round it evaluated in)."""
        rows = self._db.execute(
            "SELECT p.site, p.run, p.round, p.production_version, p.accuracy FROM participation p "
            "JOIN runs r ON r.run = p.run ORDER BY r.started_at, p.round"
        ).fetchall()
        return {
            site: {"run": run, "round": round_, "production_version": version, "accuracy": accuracy}
            for site, run, round_, version, accuracy in rows
        }

    # ---------------------------------------------------------------- deliveries

    def record_deliveries(self, name: str, version: int, action: str, outcomes: Mapping[str, str]) -> None:
        now = time.time()
        with self.transaction():
            for site, outcome in outcomes.items():
                self._db.execute(
                    "INSERT INTO deliveries VALUES (?, ?, ?, ?, ?, ?)",
                    (name, version, site, action, outcome, now),
                )

    def deliveries(self, name: str, version: int) -> dict[str, dict[str, str]]:
        """The latest delivery of ``version`` to each site: action and outcome."""
        rows = self._db.execute(
            "SELECT site, action, outcome FROM deliveries WHERE name = ? AND version = ? ORDER BY at",
            (name, version),
        ).fetchall()
        return {site: {"action": action, "outcome": outcome} for site, action, outcome in rows}
