"""Fuzz restoring a site backup (``edge_agent.backup.restore``), gzip-compressed or not.

Starts from a real backup of a new site: members renamed (``../``, absolute), retyped (links,
devices), duplicated or dropped, its ``backup.json`` changed (with the hashes made to match again,
so the restore goes past them), its store's bytes changed, the archive's bytes changed.
Besides a typed answer: nothing is written outside the new site folder, and a refused restore
leaves no folder, finished or half-written.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import json
import sqlite3
import struct
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import genba_fuzz_samples as samples
import genba_fuzzing as fuzzing
import pytest
from hypothesis import strategies as st

from edge_agent.backup import MANIFEST, backup, restore
from edge_agent.site_init import init_site
from edge_agent.store import SiteStore
from genba import keys
from genba.errors import StoreError, UsageError


@functools.cache
def _valid_members() -> tuple[samples.Member, ...]:
    root = fuzzing.scratch_root() / "sample-site"
    private, public = keys.write_key_pair(samples.signing_key(), root / "keys" / "signer")
    site = init_site(root / "site", site_name="fuzz", trust=[public])
    SiteStore(site.store_file).close()
    out = root / "site.tar"
    backup(site, out)
    with tarfile.open(out) as tar:
        return tuple(
            samples.Member(m.name, "file", tar.extractfile(m).read())  # type: ignore[union-attr]
            for m in tar.getmembers()
        )


def _listing() -> dict[str, Any]:
    return dict(json.loads(next(m.data for m in _valid_members() if m.name == MANIFEST)))


@dataclass(frozen=True)
class BackupCase:
    members: list[samples.Member]
    listing: Any
    store: bytes | None  # the store's new bytes, None: as backed up
    rehash: bool  # make the listing's hashes match the members again
    gzip: bool
    mutate: bool
    seed: int


#: Changes to a store that stays a valid SQLite file: a schema from another release, tables gone.
STORE_EDITS = (
    "PRAGMA user_version = 999", "PRAGMA user_version = 0", "PRAGMA user_version = 5",
    "PRAGMA user_version = -1", "DROP TABLE inputs", "DROP TABLE audit_log", "DROP TABLE egress_ledger",
    "DROP TABLE models", "ALTER TABLE inputs RENAME TO renamed", "CREATE TABLE junk(a)",
    "DELETE FROM audit_log", "PRAGMA journal_mode = WAL", "PRAGMA application_id = 7",
    "ALTER TABLE audit_log ADD COLUMN extra TEXT", "DROP INDEX IF EXISTS inputs_by_time",
)  # fmt: skip


def _store() -> bytes:
    return next(m.data for m in _valid_members() if m.name == "site/store.db")


@functools.cache
def edited_store(statement: str) -> bytes:
    """The backed-up store with ``statement`` run on it: still SQLite, no longer what restore expects."""
    path = fuzzing.scratch_root() / f"store-{abs(hash(statement))}.db"
    path.write_bytes(_store())
    conn = sqlite3.connect(path)
    try:
        conn.execute(statement)
        conn.commit()
    finally:
        conn.close()
    return path.read_bytes()


def _cases() -> st.SearchStrategy[BackupCase]:
    stores = st.one_of(
        st.none(), fuzzing.mutated_bytes(_store()), st.sampled_from(STORE_EDITS).map(edited_store)
    )
    return st.builds(
        BackupCase,
        samples.member_edits(list(_valid_members())),
        st.one_of(st.just(_listing()), fuzzing.mutated_json(_listing())),
        stores,
        st.booleans(),
        st.booleans(),
        st.booleans(),
        st.integers(0, 2**32),
    )


def _members(case: BackupCase) -> list[samples.Member]:
    members = [
        samples.Member(m.name, m.kind, case.store, m.link) if m.name == "site/store.db" and case.store else m
        for m in case.members
    ]
    listing = json.loads(json.dumps(case.listing))
    if case.rehash and isinstance(listing, dict) and isinstance(listing.get("files"), dict):
        for member in members:
            entry = listing["files"].get(member.name.removeprefix("site/"))
            if isinstance(entry, dict):
                entry["sha256"] = hashlib.sha256(member.data).hexdigest()
    body = json.dumps(listing).encode()
    return [samples.Member(m.name, m.kind, body, m.link) if m.name == MANIFEST else m for m in members]


def write_backup(case: BackupCase, sandbox: Path) -> Path:
    source = sandbox / ("backup.tar.gz" if case.gzip else "backup.tar")
    buffer = sandbox / "plain.tar"
    samples.write_tar(_members(case), buffer, sandbox)
    data = buffer.read_bytes()
    buffer.unlink()
    if case.mutate and case.seed % 2 == 0:
        data = samples.mutate_tar_headers(data, case.seed)
    if case.gzip:
        data = gzip.compress(data, mtime=0)
    source.write_bytes(samples.mutate_seeded(data, case.seed) if case.mutate and case.seed % 2 else data)
    return source


def check(case: BackupCase) -> None:
    with fuzzing.sandbox() as sandbox:
        source = write_backup(case, sandbox)
        target = sandbox / "restored"
        restored = fuzzing.expect_typed(lambda: restore(source, target), "restore")
        fuzzing.expect_only(sandbox, {source.name, "tmp", "restored"}, "restore")
        if restored is None and target.exists():
            raise fuzzing.Crash("a refused restore left the site folder behind")


TARGET = fuzzing.Target("backup_restore", _cases(), check)


def test_restoring_a_backup_answers_every_input_with_a_typed_error_and_stays_inside() -> None:
    fuzzing.check_target(TARGET)


def test_the_unchanged_backup_restores() -> None:
    """The fuzzing starts from a backup that restores: the property is not met by refusing all."""
    with fuzzing.sandbox() as sandbox:
        case = BackupCase(list(_valid_members()), _listing(), None, False, False, False, 0)
        report = restore(write_backup(case, sandbox), sandbox / "restored")
        assert report["integrity"] == "ok"
        assert (sandbox / "restored" / "agent.toml").is_file()


# ---------------------------------------------------------------------------- found by fuzzing


def _refused(case: BackupCase, expected: type[Exception], match: str) -> None:
    check(case)
    with fuzzing.sandbox() as sandbox:
        with pytest.raises(expected, match=match):
            restore(write_backup(case, sandbox), sandbox / "restored")
        assert not (sandbox / "restored").exists()


def _with_listing(**changes: Any) -> BackupCase:
    listing = {**_listing(), **changes}
    return BackupCase(list(_valid_members()), listing, None, False, False, False, 0)


def _with_entry(**changes: Any) -> BackupCase:
    files = {**_listing()["files"], "agent.toml": {**_listing()["files"]["agent.toml"], **changes}}
    return _with_listing(files=files)


def test_a_cut_gzip_backup_is_refused_as_damaged() -> None:
    """Was EOFError from the middle of the gzip stream."""
    case = BackupCase(list(_valid_members()), _listing(), None, False, True, False, 0)
    with fuzzing.sandbox() as sandbox:
        source = write_backup(case, sandbox)
        source.write_bytes(source.read_bytes()[: source.stat().st_size // 2])
        with pytest.raises(UsageError, match="is damaged and cannot be read"):
            restore(source, sandbox / "restored")
        fuzzing.expect_only(sandbox, {source.name, "tmp"}, "restore")


def test_an_unreadable_archive_is_refused_on_one_line() -> None:
    """Was a five-line message listing every compression tarfile tried."""
    with fuzzing.sandbox() as sandbox:
        source = sandbox / "backup.tar.gz"
        source.write_bytes(b"\x1f\x8b\x08\x00" + bytes(range(256)))
        with pytest.raises(UsageError) as caught:
            restore(source, sandbox / "restored")
        assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param({"files": 5}, id="files not a table (was AttributeError)"),
        pytest.param({"files": None}, id="no files (was KeyError)"),
        pytest.param({"store": []}, id="store not a table (was TypeError)"),
    ],
)
def test_a_listing_without_its_tables_is_refused_as_damaged(changes: dict[str, Any]) -> None:
    _refused(_with_listing(**changes), StoreError, "backup is damaged")


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param({"mode": None}, id="no mode (was KeyError)"),
        pytest.param({"mode": [420]}, id="mode a list (was TypeError)"),
        pytest.param({"group": ["root"]}, id="group a list (was TypeError from getgrnam)"),
    ],
)
def test_a_malformed_file_entry_is_refused_as_damaged(changes: dict[str, Any]) -> None:
    _refused(_with_entry(**changes), StoreError, "entry of agent.toml is malformed")


def test_a_file_where_a_folder_must_go_is_refused() -> None:
    """Was NotADirectoryError: ``site/agent.toml/x`` needs a folder where the file is."""
    listing = _listing()
    listing["files"]["agent.toml/x"] = {"sha256": hashlib.sha256(b"x").hexdigest(), "mode": 420}
    members = [*_valid_members(), samples.Member("site/agent.toml/x", "file", b"x")]
    _refused(
        BackupCase(members, listing, None, False, False, False, 0),
        StoreError,
        "both as a file and as a folder",
    )


def test_a_member_name_with_a_nul_byte_is_refused() -> None:
    """Was ValueError ('embedded null byte') from creating the file (a PAX header carries the NUL)."""
    listing = _listing()
    listing["files"]["\u00e9\x00b"] = {"sha256": hashlib.sha256(b"x").hexdigest(), "mode": 420}
    members = [*_valid_members(), samples.Member("site/\u00e9\x00b", "file", b"x")]
    _refused(
        BackupCase(members, listing, None, False, False, False, 0), StoreError, "not a plain relative path"
    )


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param(
            b"\x80" + b"\xff" * 11, UsageError, id="size past any offset (was ValueError from seek)"
        ),
        pytest.param(samples.NEGATIVE_SIZE, StoreError, id="negative size (was OSError 22 from seek)"),
    ],
)
def test_a_tar_header_size_tarfile_cannot_use_is_refused(value: bytes, expected: type[Exception]) -> None:
    case = BackupCase(list(_valid_members()), _listing(), None, False, False, False, 0)
    with fuzzing.sandbox() as sandbox:
        source = write_backup(case, sandbox)
        data = source.read_bytes()
        source.write_bytes(samples.with_tar_field(data, samples.tar_headers(data)[1], "size", value))
        with pytest.raises(expected, match="damaged and cannot be read|cannot restore"):
            restore(source, sandbox / "restored")
        fuzzing.expect_only(sandbox, {source.name, "tmp"}, "restore")


def test_a_sparse_member_without_its_map_is_refused() -> None:
    """Was ValueError ('not enough values to unpack') from tarfile reading a GNU 1.0 sparse map."""
    members = [samples.Member("site/x", "file", b"no map here", pax=SPARSE_PAX), *_valid_members()]
    _refused(
        BackupCase(members, _listing(), None, False, False, False, 0),
        UsageError,
        "damaged and cannot be read",
    )


SPARSE_PAX = (("GNU.sparse.major", "1"), ("GNU.sparse.minor", "0"))


def test_a_pax_header_of_a_size_no_read_takes_is_refused() -> None:
    """Was OverflowError from tarfile reading the PAX header."""
    members = [samples.Member("site/x", "file", b"x", pax=(("comment", "x"),)), *_valid_members()]
    case = BackupCase(members, _listing(), None, False, False, False, 0)
    with fuzzing.sandbox() as sandbox:
        source = write_backup(case, sandbox)
        data = source.read_bytes()
        source.write_bytes(
            samples.with_tar_field(data, samples.tar_headers(data)[0], "size", b"\x80" + b"\xff" * 11)
        )
        with pytest.raises(UsageError, match="damaged and cannot be read"):
            restore(source, sandbox / "restored")
        fuzzing.expect_only(sandbox, {source.name, "tmp"}, "restore")


def test_a_store_failing_its_integrity_check_is_named_on_one_line() -> None:
    """Was a two-line message: SQLite's integrity report ('*** in database main ***' and a line break)."""
    store = bytearray(_store())
    struct.pack_into(">II", store, 32, -1733065472 & 0xFFFFFFFF, 1)  # the freelist's first page and count
    case = BackupCase(list(_valid_members()), _listing(), bytes(store), True, False, False, 0)
    _refused(case, StoreError, r"fails its integrity check: \*\*\* in database main \*\*\* Main freelist")
