"""Bundle integrity and trust: any change to any byte, an extra file or a wrong key is refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from genba import bundle, keys
from genba.errors import BundleError, IntegrityError, SignatureError
from genba.runtime import BundleModel


def _trusted(public: Path) -> list[object]:
    return [keys.load_public_key(public)]


def _all_files(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def test_signed_bundle_verifies_with_its_key(bert_bundle: Path, keypair: tuple[Path, Path]) -> None:
    verified = bundle.verify_directory(bert_bundle, _trusted(keypair[1]))
    assert verified.signer_key_id == keys.key_id(keys.load_public_key(keypair[1]))
    assert set(verified.manifest.graphs) == {"backbone", "head"}


def test_manifest_is_canonical_and_lists_every_payload_file(bert_bundle: Path) -> None:
    raw = (bert_bundle / "manifest.json").read_bytes()
    manifest = json.loads(raw)
    assert bundle.canonical_bytes(manifest) == raw
    payload = set(_all_files(bert_bundle)) - {"manifest.json", "manifest.sig"}
    assert set(manifest["files"]) == payload
    for name, entry in manifest["files"].items():
        assert entry["sha256"] == bundle.sha256_file(bert_bundle / name)


@pytest.mark.parametrize("position", ["first", "middle", "last"])
def test_changing_any_byte_of_any_file_is_refused(
    bundle_copy: Path, keypair: tuple[Path, Path], position: str
) -> None:
    for name in _all_files(bundle_copy):
        target = bundle_copy / name
        original = target.read_bytes()
        index = {"first": 0, "middle": len(original) // 2, "last": len(original) - 1}[position]
        tampered = bytearray(original)
        tampered[index] ^= 0x01
        target.write_bytes(bytes(tampered))
        with pytest.raises(BundleError):
            bundle.verify_directory(bundle_copy, _trusted(keypair[1]))
        with pytest.raises(BundleError), bundle.open_verified(bundle_copy, _trusted(keypair[1])) as verified:
            BundleModel(verified)
        target.write_bytes(original)
    bundle.verify_directory(bundle_copy, _trusted(keypair[1]))  # restored: valid again


def test_payload_tampering_is_caught_even_without_a_trusted_key(bundle_copy: Path) -> None:
    target = bundle_copy / "head.onnx"
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0xFF
    target.write_bytes(bytes(data))
    with pytest.raises(IntegrityError, match="head.onnx"):
        bundle.verify_directory(bundle_copy, trusted=None)


def test_an_added_file_is_refused(bundle_copy: Path, keypair: tuple[Path, Path]) -> None:
    (bundle_copy / "preprocess" / "extra.json").write_text("{}")
    with pytest.raises(IntegrityError, match="does not list"):
        bundle.verify_directory(bundle_copy, _trusted(keypair[1]))


def test_a_removed_file_is_refused(bundle_copy: Path, keypair: tuple[Path, Path]) -> None:
    (bundle_copy / "head.onnx").unlink()
    with pytest.raises(IntegrityError, match="missing"):
        bundle.verify_directory(bundle_copy, _trusted(keypair[1]))


def test_a_link_inside_the_bundle_is_refused(bundle_copy: Path) -> None:
    (bundle_copy / "head.onnx").unlink()
    (bundle_copy / "head.onnx").symlink_to(bundle_copy / "backbone.onnx")
    with pytest.raises(IntegrityError, match="link"):
        bundle.verify_directory(bundle_copy, trusted=None)


def test_a_wrong_key_is_refused(bert_bundle: Path, other_keypair: tuple[Path, Path]) -> None:
    with pytest.raises(SignatureError, match="invalid"):
        bundle.verify_directory(bert_bundle, _trusted(other_keypair[1]))


def test_a_resigned_manifest_by_another_key_is_refused(
    bundle_copy: Path, keypair: tuple[Path, Path], other_keypair: tuple[Path, Path]
) -> None:
    raw = (bundle_copy / "manifest.json").read_bytes()
    (bundle_copy / "manifest.sig").write_bytes(keys.load_private_key(other_keypair[0]).sign(raw))
    with pytest.raises(SignatureError):
        bundle.verify_directory(bundle_copy, _trusted(keypair[1]))


def test_an_unsigned_bundle_is_refused_when_trust_is_required(
    bundle_copy: Path, keypair: tuple[Path, Path]
) -> None:
    (bundle_copy / "manifest.sig").unlink()
    with pytest.raises(SignatureError, match="unsigned"):
        bundle.verify_directory(bundle_copy, _trusted(keypair[1]))
    assert bundle.verify_directory(bundle_copy, trusted=None).signer_key_id is None


def test_signing_an_unsigned_copy_makes_it_verify(
    bundle_copy: Path, other_keypair: tuple[Path, Path], tmp_path: Path
) -> None:
    (bundle_copy / "manifest.sig").unlink()
    signed = bundle.sign_existing(bundle_copy, keys.load_private_key(other_keypair[0]), tmp_path / "signed")
    assert bundle.verify_directory(signed, _trusted(other_keypair[1])).signed


def test_writer_leaves_nothing_behind_on_failure(tmp_path: Path) -> None:
    out = tmp_path / "never"
    with pytest.raises(RuntimeError), bundle.BundleWriter(out) as writer:
        (writer.root / "backbone.onnx").write_bytes(b"partial")
        raise RuntimeError("export failed half way")
    assert list(tmp_path.iterdir()) == []


def test_writer_removes_the_folders_it_made_when_it_fails(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError), bundle.BundleWriter(tmp_path / "new" / "deeper" / "bundle"):
        raise RuntimeError("export failed")
    assert list(tmp_path.iterdir()) == []


def test_a_non_bundle_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(BundleError, match="not a Genba bundle"):
        bundle.verify_directory(tmp_path, trusted=None)
