"""The store's one SQLite connection: how it is opened, locked, and how its errors read.

Writers use ``BEGIN IMMEDIATE`` so the write lock is taken up front (a deferred transaction
that later upgrades can fail with "database is locked" without waiting). With WAL and
``synchronous=NORMAL`` a committed transaction survives the process being killed; only a power
loss can take back the last few commits, and never corrupts the file.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Final

from genba.errors import StoreError

BUSY_TIMEOUT_MS: Final = 5000

# What sqlite3 says, and what the person running Genba should do about it.
_HINTS: Final = (
    (
        "file is not a database",
        "is not a database (corrupt or wrong file); restore it from backup or point --data elsewhere",
    ),
    ("malformed", "is corrupt (malformed database image); restore it from backup or point --data elsewhere"),
    ("database is locked", "is locked by another process; stop the other process using it, then retry"),
    (
        "unable to open database file",
        "cannot be opened (missing file or folder, or no permission); "
        "check the --data folder and its permissions",
    ),
    (
        "readonly database",
        "cannot be written (opened read-only, or the file is not writable); check the file's permissions",
    ),
    ("disk is full", "cannot be written because the disk is full; free some space and retry"),
    (
        "disk i/o error",
        "cannot be read or written (disk I/O error); check the disk, then restore from backup",
    ),
)


def store_error(path: Path, exc: sqlite3.Error) -> StoreError:
    """One line naming the file and what to do, never a traceback."""
    text = str(exc).lower()
    for needle, hint in _HINTS:
        if needle in text:
            return StoreError(f"site store {path} {hint}")
    detail = " ".join(str(exc).split()) or type(exc).__name__
    return StoreError(f"site store {path} failed ({detail}); check the file or restore it from backup")


@contextmanager
def translated_errors(path: Path) -> Iterator[None]:
    try:
        yield
    except sqlite3.Error as exc:
        raise store_error(path, exc) from exc


class Database:
    """A connection shared by API threads and the batch worker, guarded by one re-entrant lock."""

    def __init__(self, path: Path, *, read_only: bool = False) -> None:
        self.path = path
        self.read_only = read_only
        self._lock = threading.RLock()
        self._closed = False
        with translated_errors(path):
            self._conn = _open(path) if not read_only else _open_read_only(path)

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """One transaction, committed (and so durable) when the block ends without error."""
        with self._lock, translated_errors(self.path):
            conn = self._live()
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise

    @contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        """A read transaction: every query in the block sees the same snapshot."""
        with self._lock, translated_errors(self.path):
            conn = self._live()
            conn.execute("BEGIN")
            try:
                yield conn
            finally:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")

    @contextmanager
    def autocommit(self) -> Iterator[sqlite3.Connection]:
        """The bare connection, outside any transaction, for code that manages its own (migrations)."""
        with self._lock, translated_errors(self.path):
            yield self._live()

    def checkpoint(self) -> None:
        """Copy the WAL into the main file and empty it, so replaced pages leave the WAL too."""
        with self._lock, translated_errors(self.path):
            self._live().execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()

    def close(self) -> None:
        with self._lock:
            if not self._closed:
                self._closed = True
                self._conn.close()

    def _live(self) -> sqlite3.Connection:
        if self._closed:
            raise StoreError(f"site store {self.path} is closed; open it again")
        return self._conn


def _open(path: Path) -> sqlite3.Connection:
    _create_private(path)
    conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
    try:
        mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise StoreError(
                f"site store {path} cannot use WAL mode (got {mode}); put the data folder on a local disk"
            )
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        # Pruned payloads are operators' private text: overwrite freed space instead of leaving it.
        conn.execute("PRAGMA secure_delete=ON")
    except BaseException:
        conn.close()
        raise
    return conn


def _open_read_only(path: Path) -> sqlite3.Connection:
    uri = path.resolve().as_uri() + "?mode=ro"
    conn = sqlite3.connect(uri, uri=True, check_same_thread=False, isolation_level=None)
    try:
        conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        conn.execute("PRAGMA query_only=ON")
        conn.execute("SELECT count(*) FROM sqlite_schema").fetchone()  # fail now, not on first use
    except BaseException:
        conn.close()
        raise
    return conn


def _create_private(path: Path) -> None:
    """Create the file readable by its owner only; SQLite gives its -wal and -shm files the same mode."""
    try:
        descriptor = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except FileExistsError:
        return
    except OSError as exc:
        raise StoreError(
            f"site store {path} cannot be created ({exc.strerror}); "
            "check the --data folder exists and is writable"
        ) from exc
    os.close(descriptor)
