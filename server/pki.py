"""The federation's keys and certificates: safe recipes over ``cryptography``, nothing hand-rolled.

* The kit's own CA (ECDSA P-384, self-signed, CA:true with path length 0) signs the SuperLink's
  TLS certificate and each site's TLS client certificate; sites trust it through ``ca.crt`` in
  their kit, and the federation front checks client certificates against it and its CRL.
* The SuperLink certificate names the host sites dial (a DNS name or an IP address) plus
  ``localhost`` and ``127.0.0.1`` for IT's own tools on the server, is valid for server
  authentication only, and is short-lived compared with the CA.
* A site's client certificate is issued from the site's own CSR (the site keeps its key): CN =
  the site's name, client authentication only, two years or the CA's remaining lifetime.
* The CRL (``it/crl.pem``) lists the client certificates of revoked sites, signed by the CA and
  replaced atomically; its next update is the CA's expiry, so a front never rejects every site
  because IT has not revoked anyone lately.
* A site's SuperNode authentication key is ECDSA P-384 in OpenSSH format, what
  ``flower-supernode --auth-supernode-private-key`` and ``flwr supernode register`` read; the
  site makes it (``genba.keys``), IT only ever sees its public line.

Private keys are written 0600 from the first byte (``os.open`` with the mode), never overwritten.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from genba import keys
from genba.errors import KeyFileError, UsageError
from genba.files import replace_atomically

PRIVATE_MODE = 0o600
CA_DAYS = 3650
SERVER_DAYS = 825
CLIENT_DAYS = 730
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
    return keys.generate_federation_key()


def write_certificate(certificate: x509.Certificate, path: Path) -> None:
    keys.write_new_file(path, certificate.public_bytes(serialization.Encoding.PEM), 0o644)


def write_private_pem(key: ec.EllipticCurvePrivateKey, path: Path) -> None:
    keys.write_private_pem(key, path)


def write_auth_key_pair(key: ec.EllipticCurvePrivateKey, path: Path) -> Path:
    """``path`` (OpenSSH private key, 0600) and ``path.pub`` (OpenSSH public key line)."""
    return keys.write_auth_key_pair(key, path)


def auth_public_line(public_key: ec.EllipticCurvePublicKey) -> str:
    return keys.auth_public_line(public_key)


def client_certificate(
    authority: Authority,
    request: x509.CertificateSigningRequest,
    name: str,
    *,
    days: int = CLIENT_DAYS,
    now: dt.datetime | None = None,
) -> x509.Certificate:
    """A TLS client certificate for site ``name`` over the key in ``request`` (checked by the caller).

    Only the request's public key is used: its subject and any extensions it asks for are ignored.
    Valid for ``days`` or until the CA expires, whichever comes first.
    """
    start = _now(now)
    end = min(start + dt.timedelta(days=days), authority.certificate.not_valid_after_utc)
    public_key = request.public_key()
    if not isinstance(public_key, ec.EllipticCurvePublicKey):
        raise UsageError("a site's TLS key must be ECDSA")
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(authority.certificate.subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(start - dt.timedelta(minutes=5))
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_usage(cert_sign=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(authority.key.public_key()), critical=False
        )
        .sign(authority.key, hashes.SHA384())
    )


def certificate_sha256(certificate: x509.Certificate) -> str:
    """The certificate's SHA-256 fingerprint (of its DER), lowercase hex."""
    return hashlib.sha256(certificate.public_bytes(serialization.Encoding.DER)).hexdigest()


def serial_hex(certificate: x509.Certificate) -> str:
    return format(certificate.serial_number, "x")


def write_crl(
    authority: Authority,
    revoked: Iterable[tuple[int, dt.datetime]],
    path: Path,
    *,
    now: dt.datetime | None = None,
    days: int | None = None,
) -> x509.CertificateRevocationList:
    """Write the CA's CRL listing ``revoked`` (serial, revocation time) to ``path``, atomically.

    Its next update is ``days`` from now, or (None) the CA's expiry: nginx refuses every client
    once a CRL's next update has passed, so a short one must be rewritten by a running server.
    The CRL number is one above the one in ``path`` (1 for the first). Written to a temporary file
    beside ``path`` and renamed over it, so a front that reloads on change never reads half a CRL.
    """
    start = _now(now)
    if days is None:
        next_update = max(authority.certificate.not_valid_after_utc, start + dt.timedelta(days=1))
    else:
        next_update = start + dt.timedelta(days=days)
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(authority.certificate.subject)
        .last_update(start - dt.timedelta(minutes=5))
        .next_update(next_update)
        .add_extension(x509.CRLNumber(_crl_number(path) + 1), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(authority.key.public_key()), critical=False
        )
    )
    for serial, when in sorted(revoked):
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(when).build()
        )
    crl = builder.sign(authority.key, hashes.SHA384())
    replace_atomically(path, crl.public_bytes(serialization.Encoding.PEM))
    return crl


def load_crl(path: Path) -> x509.CertificateRevocationList:
    try:
        return x509.load_pem_x509_crl(path.read_bytes())
    except FileNotFoundError as exc:
        raise KeyFileError(f"CRL {path} not found") from exc
    except ValueError as exc:
        raise KeyFileError(f"{path} is not a PEM CRL") from exc


def _crl_number(path: Path) -> int:
    if not path.is_file():
        return 0
    try:
        return int(load_crl(path).extensions.get_extension_for_class(x509.CRLNumber).value.crl_number)
    except (KeyFileError, x509.ExtensionNotFound):
        return 0


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


def _now(now: dt.datetime | None) -> dt.datetime:
    return now or dt.datetime.now(dt.UTC)
