"""``SHA256SUMS``: the checksum file of an offline kit, in the format ``sha256sum --check`` reads.

One line per file, ``HEX  RELATIVE/PATH``, sorted, covering every file of the folder but the
checksum file itself. A kit verifies only when every listed file is there with its hash and
nothing else is: an added file (a wheel pip would pick up) is refused as surely as a changed one.
"""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath

from genba.bundle import sha256_file
from genba.errors import KitIntegrityError

CHECKSUM_FILE = "SHA256SUMS"
_LINE = re.compile(r"(?P<digest>[0-9a-f]{64})  (?P<path>[^\n]+)")


def kit_files(root: Path) -> list[str]:
    """Every file under ``root`` (POSIX paths relative to it) but the checksum file; refuses links."""
    found = []
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root).as_posix()
        if path.is_symlink():
            raise KitIntegrityError(f"{root / relative} is a link; a kit holds plain files only")
        if path.is_file() and relative != CHECKSUM_FILE:
            found.append(relative)
    return found


def write_checksums(root: Path) -> str:
    """Write ``root/SHA256SUMS`` over every file in ``root``; returns the sha256 of that file."""
    lines = [f"{sha256_file(root / relative)}  {relative}\n" for relative in kit_files(root)]
    target = root / CHECKSUM_FILE
    target.write_text("".join(lines), encoding="utf-8")
    return sha256_file(target)


def read_checksums(root: Path) -> dict[str, str]:
    """Path → expected sha256 from ``root/SHA256SUMS``; refuses a malformed or escaping entry."""
    source = root / CHECKSUM_FILE
    if not source.is_file():
        raise KitIntegrityError(f"{source} is missing; copy the whole kit again from its source")
    expected: dict[str, str] = {}
    for number, line in enumerate(source.read_text(encoding="utf-8").splitlines(), start=1):
        match = _LINE.fullmatch(line)
        path = PurePosixPath(match["path"]) if match else None
        if match is None or path is None or path.is_absolute() or ".." in path.parts:
            raise KitIntegrityError(
                f"{source}, line {number}: not 'SHA256  RELATIVE/PATH'; the kit is damaged"
            )
        expected[match["path"]] = match["digest"]
    return expected


def verify_checksums(root: Path) -> int:
    """Check every file of ``root`` against its SHA256SUMS; returns how many files matched."""
    expected = read_checksums(root)
    present = kit_files(root)
    for relative in present:
        if relative not in expected:
            raise KitIntegrityError(
                f"{root / relative} is not listed in {CHECKSUM_FILE}; the kit was altered"
            )
    for relative, digest in expected.items():
        path = root / relative
        if not path.is_file():
            raise KitIntegrityError(f"{path} is listed in {CHECKSUM_FILE} but missing; copy the kit again")
        if sha256_file(path) != digest:
            raise KitIntegrityError(f"{path} does not match {CHECKSUM_FILE}: invalid; copy the kit again")
    return len(expected)
