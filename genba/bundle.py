"""The model bundle: manifest, per-file hashes, signature, atomic writes, verification.

Layout of a bundle directory::

    manifest.json   canonical JSON (sorted keys, no insignificant whitespace)
    manifest.sig    Ed25519 signature over the exact bytes of manifest.json
    backbone.onnx   ...and every other payload file, each listed in the manifest's file table

A bundle is valid only if manifest.json is canonical, every listed file exists
with the listed SHA-256, no unlisted file is present, and (when trusted keys are
given) the signature verifies against one of them. The manifest is parsed once, into the typed
``Manifest`` (``genba.manifest``), when the bundle is read; nothing else reads it as a dict.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from genba import archive, keys
from genba.errors import BundleFormatError, IntegrityError, OutputPathError, SignatureError, shown
from genba.manifest import (
    FORMAT_VERSION,
    FileEntry,
    GraphSpec,
    InputSpec,
    Lineage,
    Manifest,
    ModelInfo,
    ParentRef,
    Precision,
    Signer,
    Variant,
)

__all__ = [
    "FORMAT_VERSION",
    "MANIFEST_NAME",
    "SIGNATURE_NAME",
    "BundleWriter",
    "FileEntry",
    "GraphSpec",
    "InputSpec",
    "Lineage",
    "Manifest",
    "ModelInfo",
    "ParentRef",
    "Precision",
    "Signer",
    "Variant",
    "VerifiedBundle",
    "canonical_bytes",
    "draft_manifest",
    "file_table",
    "finalize_manifest",
    "open_verified",
    "payload_files",
    "read_manifest",
    "sha256_file",
    "sign_existing",
    "verify_directory",
]

MANIFEST_NAME = "manifest.json"
SIGNATURE_NAME = "manifest.sig"
_RESERVED = frozenset({MANIFEST_NAME, SIGNATURE_NAME})
_CHUNK = 1 << 20


def canonical_bytes(manifest: Mapping[str, Any]) -> bytes:
    """The one byte form of a manifest that is hashed, signed and written."""
    return json.dumps(
        manifest, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def payload_files(root: Path) -> dict[str, Path]:
    """Every file under ``root`` except the manifest and signature, by POSIX relative path.

    Links and special files (FIFOs, devices, sockets) are refused outright: a bundle is plain
    files and folders, nothing that points elsewhere or blocks a reader.
    """
    found: dict[str, Path] = {}
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root).as_posix()
        if path.is_symlink():
            raise IntegrityError(f"bundle holds a link ({shown(relative)}); bundles hold plain files only")
        if not path.is_file() and not path.is_dir():
            raise IntegrityError(f"bundle holds {shown(relative)}, which is not a plain file; remove it")
        if path.is_file() and relative not in _RESERVED:
            found[relative] = path
    return found


def file_table(root: Path) -> dict[str, dict[str, Any]]:
    return {
        name: {"sha256": sha256_file(path), "bytes": path.stat().st_size}
        for name, path in payload_files(root).items()
    }


@dataclass(frozen=True)
class VerifiedBundle:
    """A bundle whose files matched its manifest (and whose signature verified, if checked)."""

    path: Path
    manifest: Manifest
    signer_key_id: str | None

    @property
    def signed(self) -> bool:
        return self.signer_key_id is not None

    def file(self, name: str) -> Path:
        if name not in self.manifest.files:
            raise BundleFormatError(f"bundle lists no file named {name!r}")
        return self.path / name


def read_manifest(root: Path) -> tuple[Manifest, bytes]:
    """The bundle's manifest, checked canonical and parsed, and its exact bytes."""
    manifest_path = root / MANIFEST_NAME
    if not root.is_dir():
        raise BundleFormatError(f"{root} is not a bundle directory or archive")
    if not manifest_path.exists() and not manifest_path.is_symlink():
        raise BundleFormatError(f"{root} has no {MANIFEST_NAME}; it is not a Genba bundle")
    if manifest_path.is_symlink() or not manifest_path.is_file():
        raise IntegrityError(f"{MANIFEST_NAME} in {root} is not a plain file; the bundle is damaged")
    try:
        raw = manifest_path.read_bytes()
    except OSError as exc:
        raise BundleFormatError(f"{MANIFEST_NAME} in {root} cannot be read ({exc.strerror})") from exc
    try:
        manifest = json.loads(raw.decode("utf-8"))
    except (
        UnicodeDecodeError,
        json.JSONDecodeError,
        RecursionError,
    ) as exc:  # RecursionError: nested too deep
        raise IntegrityError(f"{MANIFEST_NAME} is corrupt (not valid JSON)") from exc
    if not isinstance(manifest, dict) or not _is_canonical(manifest, raw):
        raise IntegrityError(f"{MANIFEST_NAME} was modified (not in canonical form)")
    return Manifest.from_json(manifest), raw


def _is_canonical(manifest: Mapping[str, Any], raw: bytes) -> bool:
    """Whether ``raw`` is the canonical form of what it parsed to (NaN and lone surrogates never are)."""
    try:
        return canonical_bytes(manifest) == raw
    except ValueError:  # NaN or infinity (JSON has none), or a lone surrogate (UTF-8 has none)
        return False


def verify_directory(root: Path, trusted: list[Ed25519PublicKey] | None) -> VerifiedBundle:
    """Verify a bundle directory; ``trusted=None`` checks integrity only (no signature)."""
    manifest, raw = read_manifest(root)
    signer = _verify_signature(root, manifest, raw, trusted) if trusted is not None else None
    _verify_files(root, manifest.files)
    return VerifiedBundle(path=root, manifest=manifest, signer_key_id=signer)


@contextlib.contextmanager
def open_verified(source: Path, trusted: list[Ed25519PublicKey] | None) -> Iterator[VerifiedBundle]:
    """Verify a bundle directory or a ``.tar``/``.zip`` of one (unpacked safely to a temp dir)."""
    if source.is_dir():
        yield verify_directory(source, trusted)
        return
    if not source.exists():
        raise BundleFormatError(f"bundle {source} not found")
    with tempfile.TemporaryDirectory(prefix="genba-bundle-") as scratch:
        root = archive.extract_safely(source, Path(scratch))
        yield verify_directory(root, trusted)


def _verify_signature(root: Path, manifest: Manifest, raw: bytes, trusted: list[Ed25519PublicKey]) -> str:
    signature_path = root / SIGNATURE_NAME
    if not signature_path.is_file():
        raise SignatureError(
            "bundle is unsigned; sign it with 'genba bundle sign' or export with --signing-key"
        )
    expected = manifest.signer.key_id if manifest.signer else None
    return keys.verify_signature(raw, signature_path.read_bytes(), trusted, expected)


def _verify_files(root: Path, listed: Mapping[str, FileEntry]) -> None:
    present = payload_files(root)
    unlisted = sorted(set(present) - set(listed))
    if unlisted:
        raise IntegrityError(f"bundle holds a file its manifest does not list: {shown(unlisted[0])}")
    for name, entry in sorted(listed.items()):
        if name not in present:
            raise IntegrityError(f"bundle file {shown(name)} is missing")
        if sha256_file(present[name]) != entry.sha256:
            raise IntegrityError(f"bundle file {shown(name)} does not match its hash (modified or corrupt)")


# ---------------------------------------------------------------------------- writing


class BundleWriter:
    """Stage a bundle in a temporary sibling directory, then rename it into place.

    Nothing appears at ``out`` unless :meth:`commit` succeeds; a failure at any
    point (or an exception inside the ``with`` block) removes the staging dir.
    """

    def __init__(self, out: Path) -> None:
        self.out = out
        self.staging: Path | None = None
        self.manifest: Manifest | None = None  # what commit() wrote, hashes and signer included
        self._created_parents: list[Path] = []

    def __enter__(self) -> BundleWriter:
        if self.out.exists():
            raise OutputPathError(f"{self.out} already exists; choose another --out or remove it")
        parent = self.out.parent
        self._created_parents = [p for p in (parent, *parent.parents) if not p.exists()]
        try:
            parent.mkdir(parents=True, exist_ok=True)
            self.staging = Path(tempfile.mkdtemp(prefix=f".{self.out.name}.tmp-", dir=parent))
        except OSError as exc:
            raise OutputPathError(f"cannot write to {parent}: {exc.strerror}") from exc
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self.staging is None:
            return  # committed: the bundle and its folders stay
        shutil.rmtree(self.staging, ignore_errors=True)
        for folder in self._created_parents:  # innermost first; only the ones made for this bundle
            try:
                folder.rmdir()
            except OSError:
                break

    @property
    def root(self) -> Path:
        if self.staging is None:
            raise RuntimeError("BundleWriter used outside its 'with' block")
        return self.staging

    def commit(self, manifest: Manifest | Mapping[str, Any], signing_key: Ed25519PrivateKey | None) -> Path:
        self.manifest = finalize_manifest(self.root, manifest, signing_key)
        try:
            os.rename(self.root, self.out)
        except OSError as exc:
            raise OutputPathError(f"cannot create {self.out}: {exc.strerror}") from exc
        self.staging = None
        return self.out


def draft_manifest(fields: Mapping[str, Any]) -> Manifest:
    """A manifest before signing, checked like any other: no files listed yet, no signer."""
    unsigned = {k: v for k, v in fields.items() if k not in {"files", "signer"}}
    return Manifest.from_json({**unsigned, "format_version": FORMAT_VERSION, "files": {}})


def finalize_manifest(
    root: Path, manifest: Manifest | Mapping[str, Any], signing_key: Ed25519PrivateKey | None
) -> Manifest:
    """Hash the payload into the manifest, write it canonically, and sign it.

    The result is parsed before it is written: a writer never signs a manifest a reader refuses.
    """
    final = manifest.to_json() if isinstance(manifest, Manifest) else dict(manifest)
    final["format_version"] = FORMAT_VERSION
    final["files"] = file_table(root)
    final["signer"] = (
        {"key_id": keys.key_id(signing_key.public_key()), "algorithm": "ed25519"}
        if signing_key is not None
        else None
    )
    written = Manifest.from_json(final)
    raw = canonical_bytes(written.to_json())
    (root / MANIFEST_NAME).write_bytes(raw)
    signature_path = root / SIGNATURE_NAME
    if signing_key is not None:
        signature_path.write_bytes(keys.sign(signing_key, raw))
    elif signature_path.exists():
        signature_path.unlink()
    return written


def sign_existing(bundle: Path, signing_key: Ed25519PrivateKey, out: Path) -> Path:
    """Verify ``bundle``'s integrity, then write a signed copy at ``out`` (atomically)."""
    with open_verified(bundle, trusted=None) as verified, BundleWriter(out) as writer:
        for name in verified.manifest.files:
            target = writer.root / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(verified.path / name, target)
        return writer.commit(verified.manifest, signing_key)
