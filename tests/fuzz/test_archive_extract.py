"""Fuzz unpacking a bundle archive (``genba.archive.extract_safely``): hostile members and bytes.

Besides a typed answer: nothing is written outside the destination, no link or special file is
unpacked, and a refused archive leaves nothing half-unpacked behind.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import genba_fuzz_samples as samples
import genba_fuzzing as fuzzing
import pytest
from hypothesis import strategies as st

from genba import archive
from genba.errors import ArchiveError


@dataclass(frozen=True)
class ArchiveCase:
    suffix: str
    members: list[samples.Member]
    mutate: bool  # mutate the written archive's bytes with ``edits`` drawn from ``seed``
    seed: int
    member_limit: int


def archive_cases() -> st.SearchStrategy[ArchiveCase]:
    return st.builds(
        ArchiveCase,
        st.sampled_from((".tar", ".zip")),
        samples.member_edits(samples.bundle_members()),
        st.booleans(),
        st.integers(0, 2**32),
        st.sampled_from((archive.MAX_MEMBER_BYTES, 1000, 0)),
    )


def write_archive(case: ArchiveCase, sandbox: Path) -> Path:
    source = sandbox / f"in{case.suffix}"
    writer = samples.write_tar if case.suffix == ".tar" else samples.write_zip
    writer(case.members, source, sandbox)
    if case.mutate:
        source.write_bytes(samples.damaged(source.read_bytes(), case.seed, tar=case.suffix == ".tar"))
    return source


def check(case: ArchiveCase) -> None:
    with fuzzing.sandbox() as sandbox:
        source = write_archive(case, sandbox)
        out = sandbox / "out"
        root = fuzzing.expect_typed(
            lambda: archive.extract_safely(source, out, max_member_bytes=case.member_limit), "extract_safely"
        )
        fuzzing.expect_only(sandbox, {source.name, "out", "tmp"}, "extract_safely")
        if root is None and (out / "bundle").exists():
            raise fuzzing.Crash("extract_safely refused an archive but left it half-unpacked")
        unpacked = fuzzing.tree(out)
        odd = sorted(name for name, value in unpacked.items() if isinstance(value, str) and value != "<dir>")
        if odd:
            raise fuzzing.Crash(f"extract_safely unpacked links or special files: {odd}")


TARGET = fuzzing.Target("archive_extract", archive_cases(), check)


def test_unpacking_an_archive_answers_every_input_with_a_typed_error_and_stays_inside() -> None:
    fuzzing.check_target(TARGET)


# ---------------------------------------------------------------------------- found by fuzzing

SAMPLE = samples.bundle_members()


def _case(suffix: str, members: list[samples.Member]) -> ArchiveCase:
    return ArchiveCase(suffix, members, False, 0, archive.MAX_MEMBER_BYTES)


@pytest.mark.parametrize("suffix", [".tar", ".zip"])
def test_a_member_given_twice_is_refused_and_nothing_stays(suffix: str) -> None:
    """Was FileExistsError from the second copy, and the first copy left behind."""
    case = _case(suffix, [*SAMPLE, SAMPLE[0]])
    check(case)
    with (
        fuzzing.sandbox() as sandbox,
        pytest.raises(ArchiveError, match="twice, or as file and folder; refused"),
    ):
        archive.extract_safely(write_archive(case, sandbox), sandbox / "out")


def test_a_file_inside_a_file_is_refused() -> None:
    """Was FileExistsError: ``head.onnx/x`` needs a folder where the file ``head.onnx`` is."""
    check(_case(".tar", [*SAMPLE, samples.Member("head.onnx/x", "file", b"x")]))


def test_a_refused_archive_leaves_no_half_unpacked_folder() -> None:
    """Was a half-unpacked ``bundle`` folder left in the destination after a refused link."""
    case = _case(".zip", [*SAMPLE, samples.Member("link", "symlink", link="/etc/passwd")])
    check(case)
    with fuzzing.sandbox() as sandbox:
        with pytest.raises(ArchiveError, match="is a link"):
            archive.extract_safely(write_archive(case, sandbox), sandbox / "out")
        assert list((sandbox / "out").iterdir()) == []


def test_a_zip_whose_directory_points_before_its_start_is_refused() -> None:
    """Was OSError(22) from zipfile seeking to a negative offset (a corrupt end record)."""
    with fuzzing.sandbox() as sandbox:
        source = write_archive(_case(".zip", SAMPLE), sandbox)
        data = bytearray(source.read_bytes())
        end = data.rindex(b"PK\x05\x06")  # the end record; its bytes 16-19 locate the central directory
        offset = struct.unpack_from("<I", data, end + 16)[0]
        struct.pack_into("<I", data, end + 16, offset + 100_000)
        source.write_bytes(bytes(data))
        with pytest.raises(ArchiveError, match="cannot be unpacked|not a readable archive"):
            archive.extract_safely(source, sandbox / "out")
        assert list((sandbox / "out").iterdir()) == []


@pytest.mark.parametrize("suffix", [".tar", ".zip"])
def test_the_unchanged_archive_unpacks(suffix: str) -> None:
    """The fuzzing starts from archives that unpack: the property is not met by refusing all."""
    with fuzzing.sandbox() as sandbox:
        root = archive.extract_safely(write_archive(_case(suffix, SAMPLE), sandbox), sandbox / "out")
        assert {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()} == set(
            samples.bundle_files()
        )


def test_a_member_name_with_a_nul_byte_is_refused() -> None:
    """Was ValueError ('embedded null byte') from creating the file: a PAX header (a name not in
    ASCII) carries the NUL that a plain tar header or a zip name would cut the name at."""
    case = _case(".tar", [*SAMPLE, samples.Member("preprocess/\u00e9\x00b", "file", b"x")])
    check(case)
    with fuzzing.sandbox() as sandbox, pytest.raises(ArchiveError, match="NUL byte in its name; refused"):
        archive.extract_safely(write_archive(case, sandbox), sandbox / "out")


HUGE_SIZE = b"\x80" + b"\xff" * 11  # base-256: a size no file offset holds
SPARSE = (("GNU.sparse.major", "1"), ("GNU.sparse.minor", "0"))  # a GNU 1.0 sparse file, map missing


@pytest.mark.parametrize(
    ("field", "value", "pax"),
    [
        pytest.param("size", HUGE_SIZE, (), id="size past any offset (was ValueError from seek)"),
        pytest.param("size", samples.NEGATIVE_SIZE, (), id="negative size (was OSError 22 from seek)"),
        pytest.param("mode", b"0644", SPARSE, id="sparse map missing (was ValueError from tarfile)"),
    ],
)
def test_a_tar_header_tarfile_cannot_use_is_refused(
    field: str, value: bytes, pax: tuple[tuple[str, str], ...]
) -> None:
    members = [samples.Member("head.onnx", "file", b"no map here", pax=pax), *SAMPLE[:2]]
    with fuzzing.sandbox() as sandbox:
        source = write_archive(_case(".tar", members), sandbox)
        data = source.read_bytes()
        header = samples.tar_headers(data)[1]  # the second header: the first member's, or the next's
        source.write_bytes(samples.with_tar_field(data, header, field, value))
        with pytest.raises(ArchiveError, match="not a readable archive|cannot be unpacked"):
            archive.extract_safely(source, sandbox / "out")
        assert list((sandbox / "out").iterdir()) == []


def test_a_zip_member_compressed_with_an_unknown_method_is_refused() -> None:
    """Was NotImplementedError ('That compression method is not supported') from zipfile."""
    with fuzzing.sandbox() as sandbox:
        source = write_archive(_case(".zip", SAMPLE[:1]), sandbox)
        data = bytearray(source.read_bytes())
        for at, offset in ((data.find(b"PK\x03\x04"), 8), (data.find(b"PK\x01\x02"), 10)):
            struct.pack_into("<H", data, at + offset, 99)  # the method field of both headers
        source.write_bytes(bytes(data))
        with pytest.raises(ArchiveError, match="not a readable archive"):
            archive.extract_safely(source, sandbox / "out")


def test_a_pax_header_of_a_size_no_read_takes_is_refused() -> None:
    """Was OverflowError ('cannot fit int into an index-sized integer') from tarfile reading it."""
    members = [samples.Member("head.onnx", "file", b"x", pax=(("comment", "x"),)), *SAMPLE[:1]]
    with fuzzing.sandbox() as sandbox:
        source = write_archive(_case(".tar", members), sandbox)
        data = source.read_bytes()
        source.write_bytes(samples.with_tar_field(data, samples.tar_headers(data)[0], "size", HUGE_SIZE))
        with pytest.raises(ArchiveError, match="not a readable archive"):
            archive.extract_safely(source, sandbox / "out")
