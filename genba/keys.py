"""Signing keys: Ed25519 recipes over ``cryptography``, PEM on disk.

Private keys are PKCS#8 PEM written with mode 0600; public keys are
SubjectPublicKeyInfo PEM. A key id is the first 16 hex digits of the SHA-256
of the raw public key, so a manifest names its signer without embedding keys.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from genba.errors import KeyFileError, OutputPathError, SignatureError

PRIVATE_KEY_MODE = 0o600


def generate_signing_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def key_id(public_key: Ed25519PublicKey) -> str:
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def public_key_pem(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def write_key_pair(private_key: Ed25519PrivateKey, path: Path) -> tuple[Path, Path]:
    """Write ``path`` (private, 0600) and ``path.pub``; refuse to overwrite either."""
    public_path = path.with_name(path.name + ".pub")
    for target in (path, public_path):
        if target.exists():
            raise OutputPathError(f"{target} already exists; choose another --out or remove it")
    private_pem = private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # Create with 0600 from the start: no window where the key is world-readable.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_KEY_MODE)
        with os.fdopen(fd, "wb") as handle:
            handle.write(private_pem)
        public_path.write_bytes(public_key_pem(private_key.public_key()))
    except OSError as exc:
        raise OutputPathError(f"cannot write key to {path}: {exc.strerror}") from exc
    return path, public_path


def load_private_key(path: Path) -> Ed25519PrivateKey:
    data = _read_key_file(path)
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise KeyFileError(
            f"{path} is not a PEM private key; create one with 'genba keys new --out {path}'"
        ) from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyFileError(f"{path} is not an Ed25519 private key; Genba signs with Ed25519")
    return key


def load_public_key(path: Path) -> Ed25519PublicKey:
    data = _read_key_file(path)
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError) as exc:
        raise KeyFileError(f"{path} is not a PEM public key (expected the .pub file)") from exc
    if not isinstance(key, Ed25519PublicKey):
        raise KeyFileError(f"{path} is not an Ed25519 public key")
    return key


def sign(private_key: Ed25519PrivateKey, message: bytes) -> bytes:
    return private_key.sign(message)


def verify_signature(
    message: bytes, signature: bytes, trusted: list[Ed25519PublicKey], expected_key_id: str | None
) -> str:
    """Return the id of the trusted key that made ``signature``; raise SignatureError otherwise."""
    for public_key in trusted:
        if expected_key_id is not None and key_id(public_key) != expected_key_id:
            continue
        try:
            public_key.verify(signature, message)
        except InvalidSignature:
            continue
        return key_id(public_key)
    raise SignatureError("signature invalid or not made by a trusted key")


def _read_key_file(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError as exc:
        raise KeyFileError(f"key file {path} not found") from exc
    except OSError as exc:
        raise KeyFileError(f"cannot read key file {path}: {exc.strerror}") from exc
