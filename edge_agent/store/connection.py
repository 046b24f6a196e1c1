"""The store's SQLite connections: how they are opened, locked, and how their errors read.

One writer connection, guarded by a lock, takes every write. Reads never take that lock: each
read block borrows a connection of its own from a small pool and reads a WAL snapshot, so a
report, an audit page or a queue ranking never waits for the line's predictions to be written,
and never makes them wait. Writers use ``BEGIN IMMEDIATE`` so the write lock is taken up front (a
deferred transaction that later upgrades can fail with "database is locked" without waiting).

Durability is the site's choice (``[store] durability``); with WAL, both keep the file whole:

- ``power_cut`` (the default): ``synchronous=FULL``, the WAL is flushed to the disk (``fdatasync``)
  before a commit returns, so an acknowledged prediction or label survives a power cut as well as
  a killed process. It costs one flush per transaction (a micro-batch of predictions is one);
  docs/bench/durability.json has what it costs the line's predictions.
- ``process_kill``: ``synchronous=NORMAL``, flushed only at checkpoints; a committed transaction
  survives the process being killed, but a power cut can take back the last commits.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Final

from genba.errors import StoreError, StoreFullError

BUSY_TIMEOUT_MS: Final = 5000
#: ``[store] durability``: what an acknowledged write survives, and the SQLite setting that gives it.
SYNCHRONOUS_BY_DURABILITY: Final = {"power_cut": "FULL", "process_kill": "NORMAL"}
DEFAULT_DURABILITY: Final = "power_cut"

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
    (
        "disk i/o error",
        "cannot be read or written (disk I/O error); check the disk, then restore from backup",
    ),
)


def store_error(path: Path, exc: sqlite3.Error) -> StoreError:
    """One line naming the file and what to do, never a traceback."""
    text = str(exc).lower()
    if _is_full(exc, text):
        return StoreFullError(
            f"site store {path} cannot be written because the disk is full; free some space and retry "
            "(nothing of this write was kept)"
        )
    for needle, hint in _HINTS:
        if needle in text:
            return StoreError(f"site store {path} {hint}")
    detail = " ".join(str(exc).split()) or type(exc).__name__
    return StoreError(f"site store {path} failed ({detail}); check the file or restore it from backup")


def _is_full(exc: sqlite3.Error, text: str) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    return (isinstance(code, int) and code & 0xFF == sqlite3.SQLITE_FULL) or "disk is full" in text


@contextmanager
def translated_errors(path: Path) -> Iterator[None]:
    try:
        yield
    except sqlite3.Error as exc:
        raise store_error(path, exc) from exc


#: Idle read connections kept for the next reader; more readers at once open more, closed after.
IDLE_READERS: Final = 4


class Database:
    """A writer connection shared by API threads and the batch worker, guarded by one re-entrant
    lock, and a pool of read connections that readers borrow one each (``read``)."""

    def __init__(self, path: Path, *, read_only: bool = False, durability: str = DEFAULT_DURABILITY) -> None:
        if durability not in SYNCHRONOUS_BY_DURABILITY:
            raise StoreError(
                f"store durability {durability!r} is not one of {', '.join(SYNCHRONOUS_BY_DURABILITY)}; "
                "fix [store] durability in agent.toml"
            )
        self.path = path
        self.read_only = read_only
        self.durability = durability
        self._lock = threading.RLock()
        self._closed = False
        self._idle: list[sqlite3.Connection] = []
        self._pool_lock = threading.Lock()
        with translated_errors(path):
            synchronous = SYNCHRONOUS_BY_DURABILITY[durability]
            self._conn = _open(path, synchronous) if not read_only else _open_read_only(path)

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
        """A read transaction on a connection of its own: every query in the block sees the same
        snapshot, taken when the block starts, and no write waits for it (WAL)."""
        with translated_errors(self.path):
            conn = self._borrow()
            try:
                conn.execute("BEGIN")
                conn.execute("SELECT 1 FROM sqlite_schema LIMIT 1").fetchall()  # the snapshot starts here
                yield conn
            finally:
                try:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                finally:
                    self._give_back(conn)

    def foreign_writes(self) -> int:
        """A number that changes whenever a connection other than this store's writer commits
        (SQLite's ``data_version``): another process, a tool editing the file by hand.

        Asked of the writer connection without its lock, so that it never waits for a batch being
        written: SQLite is built serialized here (``sqlite3.threadsafety == 3``), and the pragma only
        reads a counter, whatever transaction the connection is in."""
        serialized = sqlite3.threadsafety == 3
        with contextlib.nullcontext() if serialized else self._lock, translated_errors(self.path):
            version: int = self._live().execute("PRAGMA data_version").fetchone()[0]
            return version

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
        with self._pool_lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()

    def _borrow(self) -> sqlite3.Connection:
        self._live()
        if self.read_only:
            self._lock.acquire()  # a read-only store (another process) has one connection
            return self._conn
        with self._pool_lock:
            if self._idle:
                return self._idle.pop()
        return _open_reader(self.path)

    def _give_back(self, conn: sqlite3.Connection) -> None:
        if conn is self._conn:
            self._lock.release()
            return
        with self._pool_lock:
            if not self._closed and len(self._idle) < IDLE_READERS:
                self._idle.append(conn)
                return
        conn.close()

    def _live(self) -> sqlite3.Connection:
        if self._closed:
            raise StoreError(f"site store {self.path} is closed; open it again")
        return self._conn


def _open(path: Path, synchronous: str) -> sqlite3.Connection:
    _create_private(path)
    conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
    try:
        mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise StoreError(
                f"site store {path} cannot use WAL mode (got {mode}); put the data folder on a local disk"
            )
        conn.execute(f"PRAGMA synchronous={synchronous}")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        # Pruned payloads are operators' private text: overwrite freed space instead of leaving it.
        conn.execute("PRAGMA secure_delete=ON")
    except BaseException:
        conn.close()
        raise
    return conn


def _open_reader(path: Path) -> sqlite3.Connection:
    """A read connection beside the writer, in the same process: it never writes."""
    conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
    try:
        conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        conn.execute("PRAGMA query_only=ON")
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
