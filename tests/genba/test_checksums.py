"""SHA256SUMS: written over every file, and any changed, added, missing or linked file is refused."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import pytest

from genba.checksums import verify_checksums, write_checksums
from genba.errors import KitIntegrityError


@pytest.fixture
def kit(tmp_path: Path) -> Path:
    root = tmp_path / "kit"
    (root / "wheelhouse").mkdir(parents=True)
    (root / "install.sh").write_text("#!/bin/sh\n")
    (root / "wheelhouse" / "a-1.0-py3-none-any.whl").write_bytes(b"wheel a")
    (root / "wheelhouse" / "name with spaces.txt").write_bytes(b"b")
    return root


def test_the_file_is_what_sha256sum_checks(kit: Path) -> None:
    digest = write_checksums(kit)
    assert digest == hashlib.sha256((kit / "SHA256SUMS").read_bytes()).hexdigest()
    assert verify_checksums(kit) == 3
    done = subprocess.run(
        ["sha256sum", "--check", "--strict", "SHA256SUMS"], cwd=kit, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("damage", ["changed", "added", "removed", "link", "escaping line"])
def test_any_difference_is_refused(kit: Path, damage: str) -> None:
    write_checksums(kit)
    wheel = kit / "wheelhouse" / "a-1.0-py3-none-any.whl"
    if damage == "changed":
        wheel.write_bytes(b"wheel A")
    elif damage == "added":
        (kit / "wheelhouse" / "b-1.0-py3-none-any.whl").write_bytes(b"b")
    elif damage == "removed":
        wheel.unlink()
    elif damage == "link":
        (kit / "more.whl").symlink_to(wheel)
    else:
        with (kit / "SHA256SUMS").open("a") as stream:
            stream.write(f"{'0' * 64}  wheelhouse/../../etc/passwd\n")
    with pytest.raises(KitIntegrityError):
        verify_checksums(kit)
