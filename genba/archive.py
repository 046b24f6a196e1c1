"""Safe reading and writing of bundle archives (``.tar`` and ``.zip``).

Reading refuses absolute paths, ``..`` components, links of any kind, special
files and members over a size limit, and never calls ``extractall``: every
member is copied by hand into the destination after its name was checked.
"""

from __future__ import annotations

import shutil
import stat
import tarfile
import zipfile
import zlib
from pathlib import Path, PurePosixPath
from typing import IO

from genba.errors import ArchiveError, OutputPathError, shown

MAX_MEMBER_BYTES = 2 * 1024**3
MAX_TOTAL_BYTES = 8 * 1024**3
SUFFIXES = (".tar", ".zip")
_ROOT_NAME = "bundle"


def is_archive(path: Path) -> bool:
    return path.suffix.lower() in SUFFIXES


def extract_safely(
    source: Path,
    destination: Path,
    max_member_bytes: int = MAX_MEMBER_BYTES,
    max_total_bytes: int = MAX_TOTAL_BYTES,
) -> Path:
    """Unpack ``source`` under ``destination``/bundle and return that directory.

    A refused or unreadable archive leaves nothing behind: the half-unpacked folder is removed.
    """
    root = destination / _ROOT_NAME
    root.mkdir(parents=True)
    try:
        _extract(source, root, _Limits(max_member_bytes, max_total_bytes))
    except BaseException:
        shutil.rmtree(root, ignore_errors=True)
        raise
    return root


#: What a damaged archive raises while it is read: a bad header, a cut-off or corrupt stream,
#: a compression method or encryption zipfile does not support, a size or sparse map in a tar
#: header that tarfile cannot use (ValueError: a seek past any offset, a map that does not parse).
_UNREADABLE = (
    tarfile.TarError, zipfile.BadZipFile, EOFError, zlib.error, NotImplementedError, RuntimeError, ValueError,
    OverflowError,  # a PAX header's size no read can take
)  # fmt: skip
#: Two members that cannot both be unpacked: a file where a folder is, a name given twice.
_CLASHES = (FileExistsError, IsADirectoryError, NotADirectoryError)


def _extract(source: Path, root: Path, limits: _Limits) -> None:
    suffix = source.suffix.lower()
    try:
        if suffix == ".tar":
            _extract_tar(source, root, limits)
        elif suffix == ".zip":
            _extract_zip(source, root, limits)
        else:
            raise ArchiveError(f"{shown(source.name)}: unknown archive type (expected .tar or .zip)")
    except _UNREADABLE as exc:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise ArchiveError(f"{shown(source.name)} is not a readable archive: {shown(reason)}") from exc
    except _CLASHES as exc:
        clash = shown(Path(exc.filename or "").name)
        raise ArchiveError(
            f"{shown(source.name)} holds {clash} twice, or as file and folder; refused"
        ) from exc
    except OSError as exc:
        raise ArchiveError(f"{shown(source.name)} cannot be unpacked ({exc.strerror or exc})") from exc


def pack(bundle: Path, out: Path) -> Path:
    """Write ``bundle``'s files into a ``.tar`` or ``.zip`` at ``out`` (temp file + rename)."""
    if out.exists():
        raise OutputPathError(f"{out} already exists; choose another path or remove it")
    if not is_archive(out):
        raise OutputPathError(f"{out.name}: archive name must end in .tar or .zip")
    partial = out.with_name(f".{out.name}.partial")
    files = sorted(p for p in bundle.rglob("*") if p.is_file() and not p.is_symlink())
    try:
        if out.suffix.lower() == ".tar":
            with tarfile.open(partial, "w", format=tarfile.PAX_FORMAT) as tar:
                for path in files:
                    tar.add(path, arcname=path.relative_to(bundle).as_posix(), recursive=False)
        else:
            with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED) as zf:
                for path in files:
                    zf.write(path, arcname=path.relative_to(bundle).as_posix())
        partial.rename(out)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise OutputPathError(f"cannot write {out}: {exc.strerror}") from exc
    return out


class _Limits:
    def __init__(self, per_member: int, total: int) -> None:
        self.per_member = per_member
        self.total = total
        self.used = 0

    def admit(self, name: str, size: int) -> None:
        if size > self.per_member:
            raise ArchiveError(
                f"archive member {shown(name)} is larger than the {self.per_member}-byte limit"
            )
        self.used += size
        if self.used > self.total:
            raise ArchiveError(f"archive unpacks to more than the {self.total}-byte limit")


def _safe_relative(name: str) -> PurePosixPath:
    if not name or name.startswith(("/", "\\")) or name[1:2] == ":":
        raise ArchiveError(f"archive member {name!r} has an absolute path; refused")
    if "\x00" in name:
        raise ArchiveError(f"archive member {name!r} has a NUL byte in its name; refused")
    path = PurePosixPath(name)
    if "\\" in name or any(part == ".." for part in path.parts):
        raise ArchiveError(f"archive member {name!r} escapes the bundle ('..'); refused")
    return path


def _extract_tar(source: Path, root: Path, limits: _Limits) -> None:
    with tarfile.open(source, "r:") as tar:
        for member in tar.getmembers():
            relative = _safe_relative(member.name)
            if member.issym() or member.islnk():
                raise ArchiveError(f"archive member {member.name!r} is a link; refused")
            if member.isdir():
                (root / relative).mkdir(parents=True, exist_ok=True)
                continue
            if not member.isfile():
                raise ArchiveError(f"archive member {member.name!r} is not a regular file; refused")
            limits.admit(member.name, member.size)
            handle = tar.extractfile(member)
            if handle is None:
                raise ArchiveError(f"archive member {member.name!r} cannot be read")
            _copy_bounded(handle, root / relative, member.size, member.name)


def _extract_zip(source: Path, root: Path, limits: _Limits) -> None:
    with zipfile.ZipFile(source) as zf:
        for info in zf.infolist():
            relative = _safe_relative(info.filename)
            mode = info.external_attr >> 16
            if stat.S_ISLNK(mode):
                raise ArchiveError(f"archive member {info.filename!r} is a link; refused")
            if info.is_dir():
                (root / relative).mkdir(parents=True, exist_ok=True)
                continue
            limits.admit(info.filename, info.file_size)
            with zf.open(info) as handle:
                _copy_bounded(handle, root / relative, info.file_size, info.filename)


def _copy_bounded(handle: IO[bytes], target: Path, declared: int, name: str) -> None:
    """Copy at most ``declared`` bytes: a member that inflates past its header is refused."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("xb") as out:
        shutil.copyfileobj(_BoundedReader(handle, declared, name), out)


class _BoundedReader:
    def __init__(self, handle: IO[bytes], limit: int, name: str) -> None:
        self.handle, self.remaining, self.name = handle, limit, name

    def read(self, size: int = -1) -> bytes:
        chunk = self.handle.read(1 << 20 if size < 0 else size)
        self.remaining -= len(chunk)
        if self.remaining < 0:
            raise ArchiveError(f"archive member {self.name!r} is larger than it declares; refused")
        return chunk
