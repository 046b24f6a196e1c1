"""Bundle archives: packed bundles verify; unsafe members are refused before anything is written."""

from __future__ import annotations

import io
import stat
import tarfile
import zipfile
from pathlib import Path

import pytest

from genba import archive, bundle, keys
from genba.errors import ArchiveError


@pytest.mark.parametrize("suffix", [".tar", ".zip"])
def test_packed_bundle_verifies(
    bert_bundle: Path, keypair: tuple[Path, Path], tmp_path: Path, suffix: str
) -> None:
    packed = archive.pack(bert_bundle, tmp_path / f"bundle{suffix}")
    with bundle.open_verified(packed, [keys.load_public_key(keypair[1])]) as verified:
        assert verified.manifest == bundle.verify_directory(bert_bundle, None).manifest


def _tar_with(path: Path, member: tarfile.TarInfo, data: bytes = b"") -> Path:
    with tarfile.open(path, "w") as tar:
        tar.addfile(member, io.BytesIO(data) if data else None)
    return path


def _extract(source: Path, tmp_path: Path) -> None:
    archive.extract_safely(source, tmp_path / "out")


@pytest.mark.parametrize("name", ["../evil.onnx", "preprocess/../../evil", "/etc/evil"])
def test_tar_members_escaping_the_bundle_are_refused(tmp_path: Path, name: str) -> None:
    member = tarfile.TarInfo(name)
    member.size = 4
    source = _tar_with(tmp_path / "evil.tar", member, b"evil")
    with pytest.raises(ArchiveError, match="refused"):
        _extract(source, tmp_path)
    assert not (tmp_path / "evil.onnx").exists()


@pytest.mark.parametrize("kind", [tarfile.SYMTYPE, tarfile.LNKTYPE])
def test_tar_links_are_refused(tmp_path: Path, kind: bytes) -> None:
    member = tarfile.TarInfo("backbone.onnx")
    member.type = kind
    member.linkname = "/etc/passwd"
    with pytest.raises(ArchiveError, match="link"):
        _extract(_tar_with(tmp_path / "link.tar", member), tmp_path)


def test_zip_members_escaping_the_bundle_are_refused(tmp_path: Path) -> None:
    source = tmp_path / "evil.zip"
    with zipfile.ZipFile(source, "w") as zf:
        zf.writestr("../evil.onnx", b"evil")
    with pytest.raises(ArchiveError, match="escapes"):
        _extract(source, tmp_path)


def test_zip_symlinks_are_refused(tmp_path: Path) -> None:
    source = tmp_path / "link.zip"
    info = zipfile.ZipInfo("backbone.onnx")
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    with zipfile.ZipFile(source, "w") as zf:
        zf.writestr(info, "/etc/passwd")
    with pytest.raises(ArchiveError, match="link"):
        _extract(source, tmp_path)


def test_oversized_members_are_refused(tmp_path: Path) -> None:
    member = tarfile.TarInfo("backbone.onnx")
    member.size = 64
    source = _tar_with(tmp_path / "big.tar", member, b"x" * 64)
    with pytest.raises(ArchiveError, match="larger than"):
        archive.extract_safely(source, tmp_path / "out", max_member_bytes=32)


def test_a_corrupt_archive_is_refused(tmp_path: Path) -> None:
    source = tmp_path / "junk.tar"
    source.write_bytes(b"not a tar archive at all" * 40)
    with pytest.raises(ArchiveError):
        _extract(source, tmp_path)
