"""Fuzz verifying a bundle archive (``bundle.open_verified`` on a ``.tar``/``.zip``).

Besides a typed answer: the temporary folder it unpacks into is gone afterwards, accepted or not,
and nothing is written beside the archive.
"""

from __future__ import annotations

from dataclasses import dataclass

import genba_fuzz_samples as samples
import genba_fuzzing as fuzzing
import pytest
from hypothesis import strategies as st

from genba import bundle


@dataclass(frozen=True)
class BundleArchiveCase:
    suffix: str
    members: list[samples.Member]
    mutate: bool
    seed: int


def _cases() -> st.SearchStrategy[BundleArchiveCase]:
    files = samples.bundle_files()
    changed_file = st.sampled_from(sorted(files)).flatmap(
        lambda name: fuzzing.mutated_bytes(files[name]).map(lambda data: (name, data))
    )
    members = st.one_of(
        samples.member_edits(samples.bundle_members()),
        changed_file.map(
            lambda edit: [samples.Member(n, "file", edit[1] if n == edit[0] else d) for n, d in files.items()]
        ),
    )
    return st.builds(
        BundleArchiveCase, st.sampled_from((".tar", ".zip")), members, st.booleans(), st.integers(0, 2**32)
    )


def _open(source: object) -> None:
    with bundle.open_verified(source, samples.trusted()) as verified:  # type: ignore[arg-type]
        verified.manifest.files  # noqa: B018  the verified manifest, read inside the block


def check(case: BundleArchiveCase) -> None:
    with fuzzing.sandbox() as sandbox:
        source = sandbox / f"bundle{case.suffix}"
        writer = samples.write_tar if case.suffix == ".tar" else samples.write_zip
        writer(case.members, source, sandbox)
        if case.mutate:
            source.write_bytes(samples.damaged(source.read_bytes(), case.seed, tar=case.suffix == ".tar"))
        fuzzing.expect_typed(lambda: _open(source), "open_verified")
        fuzzing.expect_only(sandbox, {source.name, "tmp"}, "open_verified")
        left = sorted(p.name for p in (sandbox / "tmp").iterdir())
        if left:
            raise fuzzing.Crash(f"open_verified left {left} in the temporary folder")


TARGET = fuzzing.Target("bundle_archive", _cases(), check)


def test_verifying_a_bundle_archive_answers_every_input_with_a_typed_error_and_cleans_up() -> None:
    fuzzing.check_target(TARGET)


@pytest.mark.parametrize("suffix", [".tar", ".zip"])
def test_the_unchanged_archive_verifies(suffix: str) -> None:
    """The fuzzing starts from archives that verify: the property is not met by refusing all."""
    with fuzzing.sandbox() as sandbox:
        source = sandbox / f"bundle{suffix}"
        (samples.write_tar if suffix == ".tar" else samples.write_zip)(
            samples.bundle_members(), source, sandbox
        )
        with bundle.open_verified(source, samples.trusted()) as verified:
            assert verified.signer_key_id is not None
