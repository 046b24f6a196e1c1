"""Fuzz verifying a bundle directory: changed bytes, manifests, added, removed and linked files.

Besides a typed answer: a bundle accepted against the trusted key without being re-signed holds
exactly the files it was signed with, and verifying writes nothing.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import genba_fuzz_samples as samples
import genba_fuzzing as fuzzing
import pytest
from hypothesis import strategies as st

from genba import bundle
from genba.errors import BundleError, IntegrityError

NEW_NAMES = ("extra.bin", "preprocess/extra.json", "a\nb", "deep/er/x.onnx", " ", ".hidden", "é.onnx")


@dataclass(frozen=True)
class Edit:
    kind: str  # bytes, manifest, remove, add, symlink, folder, fifo
    name: str
    data: bytes = b""
    resign: bool = False
    link: str = ""


@st.composite
def _edit(draw: st.DrawFn) -> Edit:
    files = samples.bundle_files()
    existing = draw(st.sampled_from(sorted(files)))
    kind = draw(st.sampled_from(("bytes", "manifest", "remove", "add", "symlink", "folder", "fifo")))
    if kind == "bytes":
        return Edit(kind, existing, draw(fuzzing.mutated_bytes(files[existing])))
    if kind == "manifest":
        document = draw(fuzzing.mutated_json(json.loads(files["manifest.json"])))
        raw = _manifest_bytes(document, canonical=draw(st.booleans()))
        return Edit(kind, "manifest.json", raw, resign=draw(st.booleans()))
    name = draw(
        st.sampled_from(NEW_NAMES) | st.just(existing) | st.text(st.characters(), min_size=1, max_size=16)
    )
    if kind == "add":
        return Edit(kind, name, draw(st.binary(max_size=64)))
    if kind == "symlink":
        return Edit(
            kind, name, link=draw(st.sampled_from(("<outside>", "backbone.onnx", "..", "/", "nowhere", name)))
        )
    return Edit(kind, existing if kind == "remove" else name)


def _manifest_bytes(document: Any, canonical: bool) -> bytes:
    try:
        return bundle.canonical_bytes(document) if canonical else json.dumps(document, indent=1).encode()
    except (TypeError, ValueError):
        return json.dumps(document).encode()


def _safe_name(root: Path, name: str) -> bool:
    """Whether editing ``name`` stays inside the bundle: no ``..``, and no link or file on the way."""
    parts = name.split("/")
    try:
        os.fsencode(name)
    except UnicodeEncodeError:  # a lone surrogate: no file system name
        return False
    if "\x00" in name or any(part in {"", ".", ".."} for part in parts):
        return False
    folders = [root.joinpath(*parts[:end]) for end in range(1, len(parts))]
    return not any(folder.is_symlink() or (folder.exists() and not folder.is_dir()) for folder in folders)


def _apply(root: Path, edit: Edit, outside: Path) -> bool:
    """Apply ``edit`` to the bundle at ``root``; False when it re-signed the manifest."""
    target = root / edit.name
    if not _safe_name(root, edit.name):
        return True
    if edit.kind in {"bytes", "manifest"}:
        if target.is_dir() and not target.is_symlink():
            return True
        target.unlink(missing_ok=True)  # a FIFO an earlier edit made would block the write
        target.write_bytes(edit.data)
        signature = root / bundle.SIGNATURE_NAME
        if edit.resign and (signature.is_symlink() or not signature.is_dir()):
            signature.unlink(missing_ok=True)  # a FIFO an earlier edit made would block the write
            signature.write_bytes(samples.sign(edit.data))
            return False
        return True
    if target.is_dir() and not target.is_symlink():
        return True  # one edit a path; a folder stays
    target.unlink(missing_ok=True)
    target.parent.mkdir(parents=True, exist_ok=True)
    if edit.kind == "add":
        target.write_bytes(edit.data)
    elif edit.kind == "symlink":
        target.symlink_to(outside if edit.link == "<outside>" else edit.link)
    elif edit.kind == "folder":
        target.mkdir()
        (target / "inside").write_bytes(b"x")
    elif edit.kind == "fifo":
        os.mkfifo(target)
    return True


def _files(root: Path) -> dict[str, bytes | str]:
    return {name: value for name, value in fuzzing.tree(root).items() if value != "<dir>"}


def check(edits: list[Edit]) -> None:
    with fuzzing.sandbox() as sandbox:
        root, outside = sandbox / "bundle", sandbox / "outside.txt"
        outside.write_bytes(b"not part of the bundle")
        for name, data in samples.bundle_files().items():
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            (root / name).write_bytes(data)
        signed_as_sampled = all([_apply(root, edit, outside) for edit in edits])
        before = fuzzing.tree(sandbox)
        verified = fuzzing.expect_typed(lambda: bundle.verify_directory(root, samples.trusted()), "verify")
        fuzzing.expect_typed(lambda: bundle.verify_directory(root, None), "verify (integrity only)")
        with fuzzing.sandbox():
            fuzzing.expect_typed(lambda: _open(root), "open_verified")
        if fuzzing.tree(sandbox) != before:
            raise fuzzing.Crash("verifying a bundle directory changed files in it")
        if verified is not None and signed_as_sampled and _files(root) != samples.bundle_files():
            raise fuzzing.Crash("a bundle whose files changed was accepted against the trusted key")


def _open(root: Path) -> None:
    with bundle.open_verified(root, samples.trusted()):
        pass


TARGET = fuzzing.Target("bundle_directory", st.lists(_edit(), min_size=1, max_size=3), check)


def test_verifying_a_bundle_directory_answers_every_change_with_a_typed_error() -> None:
    fuzzing.check_target(TARGET)


# ---------------------------------------------------------------------------- found by fuzzing


def _verify_with(*edits: Edit) -> BaseException:
    """The typed error verifying the sample bundle with ``edits`` applied gives."""
    with fuzzing.sandbox() as sandbox:
        root = sandbox / "bundle"
        for name, data in samples.bundle_files().items():
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            (root / name).write_bytes(data)
        for edit in edits:
            _apply(root, edit, sandbox / "outside.txt")
        with pytest.raises(BundleError) as caught:
            bundle.verify_directory(root, samples.trusted())
        return caught.value


def test_a_folder_named_manifest_json_is_refused_as_damaged() -> None:
    """Was IsADirectoryError from reading the folder."""
    error = _verify_with(Edit("folder", "manifest.json"))
    assert (
        isinstance(error, IntegrityError)
        and "manifest.json" in str(error)
        and "not a plain file" in str(error)
    )


def test_a_fifo_named_manifest_json_is_refused_without_waiting_on_it() -> None:
    """Was a hang: reading manifest.json blocked on the FIFO forever."""
    check([Edit("fifo", "manifest.json")])
    assert "not a plain file" in str(_verify_with(Edit("fifo", "manifest.json")))


def test_a_fifo_beside_the_listed_files_is_refused() -> None:
    """Was accepted: a special file the manifest does not list slipped past the unlisted-file check."""
    error = _verify_with(Edit("fifo", "\U000afe4d"))
    assert isinstance(error, IntegrityError) and "not a plain file" in str(error)


def test_a_link_whose_name_holds_a_line_break_is_named_on_one_line() -> None:
    """Was a two-line message: 'bundle holds a link (a<newline>b)'."""
    error = _verify_with(Edit("symlink", "a\nb", link="nowhere"))
    assert str(error) == "bundle holds a link ('a\\nb'); bundles hold plain files only"


def test_a_manifest_json_linked_to_itself_is_refused() -> None:
    """Was OSError (ELOOP) from reading through the link."""
    error = _verify_with(Edit("symlink", "manifest.json", link="manifest.json"))
    assert isinstance(error, IntegrityError) and "not a plain file" in str(error)
