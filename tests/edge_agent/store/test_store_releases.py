"""A store a released Genba left behind opens under this one: migrated, whole, every row kept.

Each ``releases/genba-VERSION-schemaN.db`` was made by that release's own code serving a real site
(``releases/make_release_store.py``; the ``.json`` beside it lists what it wrote). A new schema
must keep opening every one of them.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from edge_agent.store import SCHEMA_VERSION, SiteStore
from genba.errors import StoreError

RELEASES = sorted((Path(__file__).parent / "releases").glob("genba-*.db"))


def test_released_stores_are_kept_and_at_least_one_needs_migrating() -> None:
    schemas = [json.loads(path.with_suffix(".json").read_text())["schema"] for path in RELEASES]
    assert schemas and min(schemas) < SCHEMA_VERSION and max(schemas) <= SCHEMA_VERSION


@pytest.mark.parametrize("release", RELEASES, ids=lambda path: path.stem)
def test_a_released_store_is_migrated_with_every_row_and_both_chains_intact(
    release: Path, tmp_path: Path
) -> None:
    written = json.loads(release.with_suffix(".json").read_text())
    path = tmp_path / "store.db"
    shutil.copyfile(release, path)
    with pytest.raises(StoreError, match="schema") as refused:  # a reader never migrates
        SiteStore.read_only(path)
    assert "\n" not in str(refused.value)
    with SiteStore(path) as store:  # as the new release's agent opens it
        assert store.schema_version == SCHEMA_VERSION
        assert store.integrity_check() == "ok"
        assert all(report.ok for report in store.verify_chains(full=True).values())
        summary = store.kpi_summary()
        assert (summary["predictions"], summary["labels"]) == (
            written["counts"]["predictions"],
            written["counts"]["labels"],
        )
        store.append_audit("upgraded", "system", {"from_schema": written["schema"]})  # it goes on writing
        assert all(report.ok for report in store.verify_chains(full=True).values())
    with closing(sqlite3.connect(path)) as db:
        for table, count in written["counts"].items():
            grown = 1 if table == "audit_log" else 0
            assert db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0] == count + grown, table
        assert {row[0] for row in db.execute("SELECT id FROM inputs")} == set(written["inputs"])
        assert {row[0] for row in db.execute("SELECT id FROM predictions")} == set(written["predictions"])
        assert {row[0] for row in db.execute("SELECT id FROM labels")} == set(written["labels"])
    with SiteStore.read_only(path) as reader:
        assert reader.schema_version == SCHEMA_VERSION
