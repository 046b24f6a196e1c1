"""The federation's keys and certificates: safe recipes over ``cryptography``, nothing hand-rolled.

* The kit's own CA (ECDSA P-384, self-signed, CA:true with path length 0) signs only the
  SuperLink's TLS certificate; sites trust it through ``ca.crt`` in their kit.
* The SuperLink certificate names the host sites dial (a DNS name or an IP address) plus
  ``localhost`` and ``127.0.0.1`` for IT's own tools on the server, is valid for server
  authentication only, and is short-lived compared with the CA.
* A site's SuperNode authentication key is ECDSA P-384 in OpenSSH format, what
  ``flower-supernode --auth-supernode-private-key`` and ``flwr supernode register`` read.

Private keys are written 0600 from the first byte (``os.open`` with the mode), never overwritten.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from genba.errors import KeyFileError, OutputPathError, UsageError

PRIVATE_MODE = 0o600
CA_DAYS = 3650
SERVER_DAYS = 825
_CURVE = ec.SECP384R1


@dataclass(frozen=True)
class Authority:
    """The kit's CA: its certificate and the key that signs the SuperLink's certificate."""

    certificate: x509.Certificate
    key: ec.EllipticCurvePrivateKey


def new_authority(name: str, now: dt.datetime | None = None) -> Authority:
    key = ec.generate_private_key(_CURVE())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{name} Genba federation CA")])
    start = _now(now)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start - dt.timedelta(minutes=5))
        .not_valid_after(start + dt.timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_usage(cert_sign=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA384())
    )
    return Authority(certificate, key)


def server_certificate(
    authority: Authority, host: str, *, days: int = SERVER_DAYS, now: dt.datetime | None = None
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """A TLS server certificate for ``host`` (and localhost / 127.0.0.1), signed by ``authority``."""
    key = ec.generate_private_key(_CURVE())
    start = _now(now)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)]))
        .issuer_name(authority.certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start - dt.timedelta(minutes=5))
        .not_valid_after(start + dt.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName(subject_names(host)), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_usage(cert_sign=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(authority.key.public_key()), critical=False
        )
        .sign(authority.key, hashes.SHA384())
    )
    return certificate, key


def subject_names(host: str) -> list[x509.GeneralName]:
    """``host`` as an IP or DNS name, then localhost and 127.0.0.1 (each once)."""
    check_host(host)
    names: list[x509.GeneralName] = []
    for name in (host, "localhost", "127.0.0.1"):
        try:
            entry: x509.GeneralName = x509.IPAddress(ipaddress.ip_address(name))
        except ValueError:
            entry = x509.DNSName(name)
        if entry not in names:
            names.append(entry)
    return names


def check_host(host: str) -> str:
    """A host name or IP address sites can dial: no scheme, port, path or spaces."""
    try:
        ipaddress.ip_address(host)
        return host
    except ValueError:
        pass
    labels = host.split(".")
    valid = (
        bool(host)
        and len(host) <= 253
        and all(
            0 < len(label) <= 63 and label.replace("-", "").isalnum() and label.isascii() and label[0] != "-"
            for label in labels
        )
    )
    if not valid:
        raise UsageError(
            f"server host {host!r} is not a host name or IP address; give what the sites will dial, "
            "e.g. --server-host genba-it.plant.local or --server-host 10.0.4.2 (no scheme or port)"
        )
    return host


def new_auth_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(_CURVE())


def write_certificate(certificate: x509.Certificate, path: Path) -> None:
    _write_new(path, certificate.public_bytes(serialization.Encoding.PEM), 0o644)


def write_private_pem(key: ec.EllipticCurvePrivateKey, path: Path) -> None:
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    _write_new(path, pem, PRIVATE_MODE)


def write_auth_key_pair(key: ec.EllipticCurvePrivateKey, path: Path) -> Path:
    """``path`` (OpenSSH private key, 0600) and ``path.pub`` (OpenSSH public key line)."""
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
    )
    _write_new(path, private, PRIVATE_MODE)
    public = path.with_name(path.name + ".pub")
    _write_new(public, auth_public_line(key.public_key()).encode("ascii") + b"\n", 0o644)
    return public


def auth_public_line(public_key: ec.EllipticCurvePublicKey) -> str:
    return public_key.public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    ).decode()


def load_certificate(path: Path) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(path.read_bytes())
    except FileNotFoundError as exc:
        raise KeyFileError(f"certificate {path} not found") from exc
    except ValueError as exc:
        raise KeyFileError(f"{path} is not a PEM certificate") from exc


def load_authority(certificate: Path, key: Path) -> Authority:
    loaded = serialization.load_pem_private_key(key.read_bytes(), password=None)
    if not isinstance(loaded, ec.EllipticCurvePrivateKey):
        raise KeyFileError(f"{key} is not the CA's EC private key")
    return Authority(load_certificate(certificate), loaded)


def _usage(*, cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=not cert_sign,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def _write_new(path: Path, data: bytes, mode: int) -> None:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    except FileExistsError as exc:
        raise OutputPathError(f"{path} already exists; refusing to overwrite it") from exc
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def _now(now: dt.datetime | None) -> dt.datetime:
    return now or dt.datetime.now(dt.UTC)
