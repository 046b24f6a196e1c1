"""``genba agent backup`` / ``restore``: one archive holding a whole site folder, taken while it serves.

The store is copied with SQLite's online backup API in one step: a read transaction, so the copy
is the store as it was at one instant (every prediction acknowledged before the backup began is in
it) and, in WAL mode, the agent's writers never wait for it. The copy is checked
(``PRAGMA integrity_check``) before it enters the archive. Everything else in the site folder
(models, keys, tokens, trusted signers, kit and configuration) goes in as files, each listed in
``backup.json`` with its sha256 and file mode; the running agent's address and lock file, and
temporary files, do not.

A restore goes into a folder that does not exist yet (or is empty): it unpacks into a temporary
sibling, refuses anything not listed or not matching its hash (and any link, absolute path or
``..``), puts every file mode back (private keys 0600, tokens as they were), checks the store's
integrity and both hash chains (audit log, egress ledger) from their first entries, and only then
renames the folder into place. Group ownership of the token files (``genba-ROLE``) is restored
where that group exists, as ``genba agent init`` sets it.
"""

from __future__ import annotations

import contextlib
import grp
import gzip
import io
import json
import os
import shutil
import sqlite3
import tarfile
import tempfile
import time
import zlib
from pathlib import Path, PurePosixPath
from typing import Any, Final

from edge_agent.site import SiteFolder
from edge_agent.store import SiteStore
from edge_agent.store.schema import missing_parts
from genba.bundle import sha256_file
from genba.errors import StoreError, UsageError, shown

FORMAT: Final = "genba-site-backup/1"
MANIFEST: Final = "backup.json"
STORE_NAME: Final = "store.db"
#: Site-folder entries that belong to a running agent, not to the site.
SKIPPED: Final = frozenset({"store.db", "store.db-wal", "store.db-shm", "agent.addr", "agent.lock"})
_CHUNK: Final = 1 << 20


def _problems(integrity: list[str]) -> str:
    """The first problems ``PRAGMA integrity_check`` reported, on one line (its rows hold line breaks)."""
    return " ".join("; ".join(integrity[:3]).split())


def _site_files(root: Path) -> list[Path]:
    """The site folder's regular files to keep, relative to it, in a stable order."""
    files: list[Path] = []
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root)
        if relative.parts[0] in SKIPPED or path.name.endswith((".tmp", "-journal")):
            continue
        if any(part.startswith(".install-") for part in relative.parts):  # a model being installed
            continue
        if path.is_symlink() or not path.is_file():
            continue
        files.append(relative)
    return files


def _copy_store(source: Path, target: Path) -> dict[str, Any]:
    """The store at one instant, through the online backup API; checked before it is kept."""
    try:
        src = sqlite3.connect(source, timeout=60)
        try:
            dst = sqlite3.connect(target)
            try:
                src.backup(dst)  # pages=-1: the whole database in one step, one read snapshot
                dst.execute("PRAGMA journal_mode=DELETE")  # one self-contained file in the archive
                integrity = [row[0] for row in dst.execute("PRAGMA integrity_check")]
                inputs = dst.execute("SELECT count(*) FROM inputs").fetchone()[0]
            finally:
                dst.close()
        finally:
            src.close()
    except sqlite3.Error as exc:
        raise StoreError(f"cannot back up the site store {source}: {exc}") from exc
    if integrity != ["ok"]:
        raise StoreError(f"the copy of {source} fails its integrity check: {_problems(integrity)}")
    return {"inputs": int(inputs), "integrity": "ok"}


def backup(site: SiteFolder, out: Path) -> dict[str, Any]:
    """Write ``out`` (``.tar``, or gzip-compressed for ``.tar.gz``/``.tgz``): the whole site."""
    site.require_initialized()
    if not site.store_file.is_file():
        raise UsageError(f"{site.root} has no site store yet ({site.store_file}); nothing to back up")
    out = Path(out)
    if out.exists():
        raise UsageError(f"{out} exists; choose a new file for the backup")
    if not out.parent.is_dir():
        raise UsageError(f"{out.parent} is not a folder")
    compress = out.name.endswith((".tar.gz", ".tgz"))
    with tempfile.TemporaryDirectory(prefix=".genba-backup-", dir=out.parent) as scratch:
        store_copy = Path(scratch) / STORE_NAME
        started = time.time()
        store = _copy_store(site.store_file, store_copy)
        files: dict[str, dict[str, Any]] = {
            STORE_NAME: {
                "sha256": sha256_file(store_copy),
                "mode": site.store_file.stat().st_mode & 0o7777,
                "bytes": store_copy.stat().st_size,
            }
        }
        sources: dict[str, Path] = {STORE_NAME: store_copy}
        for relative in _site_files(site.root):
            path = site.root / relative
            name = relative.as_posix()
            try:
                info = path.stat()
                mode = info.st_mode & 0o7777
                files[name] = {"sha256": sha256_file(path), "mode": mode, "bytes": info.st_size}
            except FileNotFoundError as exc:
                raise StoreError(f"{path} went away during the backup; run it again") from exc
            try:
                files[name]["group"] = grp.getgrgid(info.st_gid).gr_name
            except KeyError:
                pass
            sources[name] = path
        listing = {
            "format": FORMAT,
            "site": site.root.name,
            "created_at": started,
            "store": store,
            "files": files,
        }
        partial = Path(scratch) / "archive"
        try:
            with tarfile.open(partial, "w:gz" if compress else "w") as archive:
                body = json.dumps(listing, indent=2, sort_keys=True).encode("utf-8")
                entry = tarfile.TarInfo(MANIFEST)
                entry.size, entry.mode, entry.mtime = len(body), 0o600, int(started)
                archive.addfile(entry, io.BytesIO(body))
                for name, path in sources.items():
                    member = archive.gettarinfo(str(path), arcname=f"site/{name}")
                    member.uid = member.gid = 0
                    member.uname = member.gname = ""
                    member.mode = files[name]["mode"]
                    with path.open("rb") as handle:
                        archive.addfile(member, handle)
        except OSError as exc:  # a file that shrank or went away while read, or the disk is full
            raise StoreError(f"cannot write the backup of {site.root}: {exc}; run it again") from exc
        # a file changed while it was read no longer matches what the listing says of it
        for name, path in sources.items():
            if name != STORE_NAME and (not path.is_file() or sha256_file(path) != files[name]["sha256"]):
                raise StoreError(f"{site.root / name} changed during the backup; run it again")
        os.chmod(partial, 0o600)  # it holds the site's private keys
        os.replace(partial, out)
    return {
        "backup": str(out),
        "site": site.root.name,
        "files": len(files),
        "inputs": store["inputs"],
        "bytes": out.stat().st_size,
        "seconds": round(time.time() - started, 3),
    }


def _safe_name(name: str) -> PurePosixPath:
    path = PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts or not path.parts or "\x00" in name:
        raise StoreError(f"backup member {name!r} is not a plain relative path; refused")
    return path


def _read_listing(archive: tarfile.TarFile, source: Path) -> dict[str, Any]:
    try:
        member = archive.getmember(MANIFEST)
        handle = archive.extractfile(member)
        if handle is None:
            raise KeyError(MANIFEST)
        listing = json.loads(handle.read().decode("utf-8"))
    except (KeyError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise UsageError(f"{source} is not a Genba site backup (no readable {MANIFEST})") from exc
    if not isinstance(listing, dict) or listing.get("format") != FORMAT:
        raise UsageError(f"{source} is not a Genba site backup of a format this release reads ({FORMAT})")
    store, files = listing.get("store"), listing.get("files")
    if not isinstance(store, dict) or not _is_count(store.get("inputs")) or not isinstance(files, dict):
        raise StoreError(
            f"{source}: its {MANIFEST} lacks the store's or the files' entries; the backup is damaged"
        )
    damaged = sorted(name for name, entry in files.items() if not _is_file_entry(entry))
    if damaged:
        raise StoreError(
            f"{source}: the {MANIFEST} entry of {shown(damaged[0])} is malformed; the backup is damaged"
        )
    return listing


def _is_count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_file_entry(entry: object) -> bool:
    """A ``files`` entry as ``backup`` writes it: a sha256, an integer mode, a group name or none."""
    return (
        isinstance(entry, dict)
        and isinstance(entry.get("sha256"), str)
        and _is_count(entry.get("mode"))
        and isinstance(entry.get("group"), str | None)
    )


#: What a damaged archive raises while it is read: a bad header, a cut or corrupt gzip stream, a
#: size or sparse map in a tar header that tarfile cannot use (ValueError: a seek past any offset).
_UNREADABLE = (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile, ValueError, OverflowError)
#: Two members that cannot both be unpacked: a file where a folder must go, or the reverse.
_CLASHES = (FileExistsError, IsADirectoryError, NotADirectoryError)


def restore(source: Path, data: Path) -> dict[str, Any]:
    """Unpack the backup ``source`` into the new site folder ``data``, verified before it appears."""
    source, data = Path(source), Path(data)
    if data.exists() and (not data.is_dir() or any(data.iterdir())):
        raise UsageError(f"{data} exists and is not empty; restore into a new folder")
    if not source.is_file():
        raise UsageError(f"{source} is not a file")
    data.parent.mkdir(parents=True, exist_ok=True)
    try:
        with (
            _open_archive(source) as archive,
            tempfile.TemporaryDirectory(prefix=f".{data.name}.restore-", dir=data.parent) as scratch,
        ):
            return _restore_from(archive, source, Path(scratch) / "site", data)
    except _UNREADABLE as exc:
        raise UsageError(
            f"{source} is damaged and cannot be read ({_reason(exc)}); use another backup"
        ) from exc
    except _CLASHES as exc:
        name = shown(Path(exc.filename or "").name)
        raise StoreError(
            f"{source} holds {name} both as a file and as a folder; the backup is damaged"
        ) from exc
    except OSError as exc:  # a negative size in a tar header seeks before the start; or the disk is full
        raise StoreError(f"cannot restore {source} into {data}: {_reason(exc)}") from exc


def _reason(error: BaseException) -> str:
    return shown(" ".join(str(error).split()) or type(error).__name__)


def _restore_from(archive: tarfile.TarFile, source: Path, staging: Path, data: Path) -> dict[str, Any]:
    listing = _read_listing(archive, source)
    files: dict[str, dict[str, Any]] = listing["files"]
    staging.mkdir(mode=0o751)
    seen: set[str] = set()
    for member in archive.getmembers():
        if member.name != MANIFEST:
            seen.add(_restore_member(archive, member, files, seen, staging, source))
    missing = sorted(set(files) - seen)
    if missing:
        names = ", ".join(shown(name) for name in missing[:5])
        raise StoreError(f"{source} lacks {names}; the backup is incomplete")
    report = _verify_store(staging / STORE_NAME)
    if report["inputs"] != listing["store"]["inputs"]:
        raise StoreError(
            f"{source}: the store holds {report['inputs']} inputs, its backup.json says otherwise"
        )
    if data.exists():
        data.rmdir()  # empty, checked above
    os.replace(staging, data)
    return {"restored": str(data), "site": listing.get("site"), "files": len(files), **report}


def _restore_member(
    archive: tarfile.TarFile,
    member: tarfile.TarInfo,
    files: dict[str, dict[str, Any]],
    seen: set[str],
    staging: Path,
    source: Path,
) -> str:
    """Unpack one listed site file into ``staging``, checked against its hash; its name."""
    path = _safe_name(member.name)
    if path.parts[0] != "site" or len(path.parts) < 2 or not member.isfile():
        raise StoreError(f"backup member {member.name!r} is not a site file; refused")
    name = PurePosixPath(*path.parts[1:]).as_posix()
    expected = files.get(name)
    if expected is None or name in seen:
        raise StoreError(f"backup member {name!r} is not listed in its {MANIFEST}; refused")
    target = staging.joinpath(*path.parts[1:])
    target.parent.mkdir(parents=True, exist_ok=True)
    handle = archive.extractfile(member)
    assert handle is not None  # a regular file
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        shutil.copyfileobj(handle, out, _CHUNK)
    if sha256_file(target) != expected["sha256"]:
        raise StoreError(f"{shown(name)} in {source} does not match its hash; the backup is damaged")
    _restore_group(target, expected.get("group"))
    os.chmod(target, expected["mode"] & 0o777)
    return name


def _open_archive(source: Path) -> tarfile.TarFile:
    try:
        return tarfile.open(source, "r:*")
    except (tarfile.TarError, OSError) as exc:
        raise UsageError(f"{source} is not a readable backup archive: {_reason(exc)}") from exc


def _require_whole_schema(path: Path) -> None:
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
        missing = missing_parts(conn)
    if missing:
        named = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        raise StoreError(
            f"the restored store lacks {named} of this Genba's schema; it is not a whole site store, "
            "use another backup"
        )


def _restore_group(path: Path, group: str | None) -> None:
    if not group:
        return
    try:
        os.chown(path, -1, grp.getgrnam(group).gr_gid)
    except (KeyError, PermissionError):
        pass  # no such group here, or not ours to give: the owner's group keeps it


def _verify_store(path: Path) -> dict[str, Any]:
    conn = sqlite3.connect(path)
    try:
        integrity = [row[0] for row in conn.execute("PRAGMA integrity_check")]
        inputs = int(conn.execute("SELECT count(*) FROM inputs").fetchone()[0])
    except sqlite3.Error as exc:
        raise StoreError(f"the restored store {path} cannot be read: {exc}") from exc
    finally:
        conn.close()
    if integrity != ["ok"]:
        raise StoreError(f"the restored store fails its integrity check: {_problems(integrity)}")
    with SiteStore(path) as store:  # a store from an older release is migrated, a newer one refused
        _require_whole_schema(path)
        chains = store.verify_chains(full=True)
    broken = {name: report.first_bad_seq for name, report in chains.items() if not report.ok}
    if broken:
        raise StoreError(f"the restored store's hash chains are broken: {broken}")
    return {
        "inputs": inputs,
        "integrity": "ok",
        "chains": {name: report.entries for name, report in chains.items()},
    }
