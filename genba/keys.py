"""Keys: Ed25519 signing recipes, and a site's federation keys, over ``cryptography``.

Signing keys: private keys are PKCS#8 PEM written with mode 0600; public keys are
SubjectPublicKeyInfo PEM. A key id is the first 16 hex digits of the SHA-256
of the raw public key, so a manifest names its signer without embedding keys.

A site's federation keys, made at the site and never anywhere else (``genba agent init
--enrol-request``): the SuperNode authentication key (ECDSA P-384 in OpenSSH format, what
``flower-supernode --auth-supernode-private-key`` and ``flwr supernode register`` read) and the
TLS client key (ECDSA P-384, PKCS#8 PEM) whose certificate request names the site.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.x509.oid import NameOID

from genba.errors import KeyFileError, OutputPathError, SignatureError

PRIVATE_KEY_MODE = 0o600
#: The curve of a site's SuperNode authentication key and TLS client key.
FEDERATION_CURVE = ec.SECP384R1


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


# A site's federation keys ---------------------------------------------------------------------


def generate_federation_key() -> ec.EllipticCurvePrivateKey:
    """A SuperNode authentication key or a TLS client key (ECDSA P-384)."""
    return ec.generate_private_key(FEDERATION_CURVE())


def auth_public_line(public_key: ec.EllipticCurvePublicKey) -> str:
    """The OpenSSH public key line ``flwr supernode register`` reads (``ecdsa-sha2-nistp384 AAAA...``)."""
    return public_key.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode(
        "ascii"
    )


def parse_auth_public_line(line: str) -> ec.EllipticCurvePublicKey:
    """An OpenSSH ECDSA public key line; ValueError for anything else."""
    try:
        key = serialization.load_ssh_public_key(line.strip().encode("ascii"))
    except (ValueError, UnicodeEncodeError, TypeError) as exc:
        raise ValueError("not an OpenSSH public key line") from exc
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise ValueError("not an ECDSA key (the SuperNode authentication key is ECDSA)")
    return key


def write_auth_key_pair(key: ec.EllipticCurvePrivateKey, path: Path) -> Path:
    """``path`` (OpenSSH private key, 0600) and ``path.pub`` (OpenSSH public key line); never overwrites."""
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
    )
    write_new_file(path, private, PRIVATE_KEY_MODE)
    public = path.with_name(path.name + ".pub")
    write_new_file(public, auth_public_line(key.public_key()).encode("ascii") + b"\n", 0o644)
    return public


def write_private_pem(key: ec.EllipticCurvePrivateKey, path: Path) -> None:
    """An EC private key as unencrypted PKCS#8 PEM, 0600 from the first byte; never overwrites."""
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    write_new_file(path, pem, PRIVATE_KEY_MODE)


def load_ec_private_key(path: Path) -> ec.EllipticCurvePrivateKey:
    """A PKCS#8 PEM EC private key (a TLS client key) or an OpenSSH one (the SuperNode auth key)."""
    data = _read_key_file(path)
    try:
        if data.lstrip().startswith(b"-----BEGIN OPENSSH PRIVATE KEY-----"):
            key: object = serialization.load_ssh_private_key(data, password=None)
        else:
            key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise KeyFileError(f"{path} is not an unencrypted PEM or OpenSSH private key") from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise KeyFileError(f"{path} is not an ECDSA private key")
    return key


def certificate_request(key: ec.EllipticCurvePrivateKey, common_name: str) -> x509.CertificateSigningRequest:
    """A CSR whose subject is ``CN=common_name`` alone, signed by ``key`` (it proves the site holds it)."""
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    return x509.CertificateSigningRequestBuilder().subject_name(subject).sign(key, hashes.SHA384())


def public_key_sha256(public_key: ec.EllipticCurvePublicKey | Ed25519PublicKey) -> str:
    """SHA-256 of the key's SubjectPublicKeyInfo (DER), hex: compares keys of any kind."""
    der = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).hexdigest()


def write_new_file(path: Path, data: bytes, mode: int) -> None:
    """Create ``path`` with ``mode`` from the first byte; refuse an existing file."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    except FileExistsError as exc:
        raise OutputPathError(f"{path} already exists; refusing to overwrite it") from exc
    except OSError as exc:
        raise OutputPathError(f"cannot write {path}: {exc.strerror}") from exc
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
