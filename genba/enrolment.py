"""The enrolment request: what a site sends IT so that IT never holds one of the site's private keys.

A site makes its own keys (``genba agent init --data D --site NAME --enrol-request FILE``) and
writes their public halves to ``FILE``, a JSON document::

    {"format": "genba-enrolment/1", "site": NAME,
     "auth_key": "ecdsa-sha2-nistp384 AAAA...",        the SuperNode authentication key (OpenSSH)
     "sign_key": "-----BEGIN PUBLIC KEY-----...",       the site's Ed25519 bundle-signing key
     "csr": "-----BEGIN CERTIFICATE REQUEST-----..."}   CN = NAME, signed by the site's TLS key

IT checks it (``genba provision add-site --request FILE``) and answers with a kit that holds
certificates and public keys only. Both ends print the request's :func:`fingerprint`, short
enough to read over the phone, so IT can confirm that the file it received is the one the site
wrote before it issues anything.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.x509.oid import NameOID

from genba import keys
from genba.errors import UsageError
from genba.names import is_site_name

FORMAT = "genba-enrolment/1"
FIELDS = ("format", "site", "auth_key", "sign_key", "csr")
#: Curves a site's TLS client key may use (what the federation front's OpenSSL accepts everywhere).
TLS_CURVES = ("secp256r1", "secp384r1", "secp521r1")
MAX_SITE_NAME = 64
MAX_REQUEST_BYTES = 64 * 1024


class EnrolmentError(UsageError):
    """A request, or a kit answering one, that must not be used (the message says why, on one line)."""


def site_name_problem(name: str) -> str | None:
    """Why ``name`` cannot name a site, or None: it becomes a folder, a TOML value and a CN."""
    if not isinstance(name, str) or not is_site_name(name) or len(name) > MAX_SITE_NAME:
        return f"site name {name!r} must be 1-{MAX_SITE_NAME} ASCII letters, digits, '-' or '_'"
    return None


@dataclass(frozen=True)
class EnrolmentRequest:
    """A checked request: every key parses and the CSR is self-signed by its key for CN = ``site``."""

    site: str
    auth_key: str
    sign_key: str
    csr: str

    @property
    def auth_public_key(self) -> ec.EllipticCurvePublicKey:
        return keys.parse_auth_public_line(self.auth_key)

    @property
    def sign_public_key(self) -> Ed25519PublicKey:
        key = serialization.load_pem_public_key(self.sign_key.encode("ascii"))
        assert isinstance(key, Ed25519PublicKey)  # checked in from_document
        return key

    @property
    def certificate_request(self) -> x509.CertificateSigningRequest:
        return x509.load_pem_x509_csr(self.csr.encode("ascii"))

    def document(self) -> dict[str, str]:
        return {
            "format": FORMAT,
            "site": self.site,
            "auth_key": self.auth_key,
            "sign_key": self.sign_key,
            "csr": self.csr,
        }

    def fingerprint(self) -> str:
        """A short fingerprint of the request (80 bits, ``xxxx-xxxx-xxxx-xxxx-xxxx``) to confirm by phone.

        It covers the format, the name and each key as its canonical DER (the CSR as a whole), so
        any change to what IT would act on changes it, and re-wrapping the PEM text does not.
        """
        digest = hashlib.sha256()
        for part in (
            FORMAT.encode("ascii"),
            self.site.encode("ascii"),
            _spki(self.auth_public_key),
            _spki(self.sign_public_key),
            self.certificate_request.public_bytes(serialization.Encoding.DER),
        ):
            digest.update(len(part).to_bytes(4, "big") + part)
        short = digest.hexdigest()[:20]
        return "-".join(short[i : i + 4] for i in range(0, len(short), 4))

    @classmethod
    def from_document(cls, document: Any) -> EnrolmentRequest:
        """Check every field and the keys; EnrolmentError (one line) for the first problem."""
        if not isinstance(document, dict):
            raise EnrolmentError("is not a JSON object")
        if document.get("format") != FORMAT:
            raise EnrolmentError(
                f"has format {document.get('format')!r}, not {FORMAT!r}: "
                "make it with 'genba agent init --enrol-request'"
            )
        missing = [field for field in FIELDS if not isinstance(document.get(field), str)]
        if missing:
            raise EnrolmentError(f"lacks {', '.join(missing)} (each a string)")
        unknown = sorted(set(document) - set(FIELDS))
        if unknown:
            raise EnrolmentError(f"has unknown fields: {', '.join(unknown)}")
        site, auth_key, sign_key, csr_pem = (document[field] for field in FIELDS[1:])
        problem = site_name_problem(site)
        if problem:
            raise EnrolmentError(problem)
        try:
            auth_public = keys.parse_auth_public_line(auth_key)
        except ValueError as exc:
            raise EnrolmentError(f"auth_key is not an OpenSSH ECDSA public key ({exc})") from exc
        try:
            sign_public = serialization.load_pem_public_key(sign_key.encode("ascii"))
        except (ValueError, TypeError, UnicodeEncodeError) as exc:
            raise EnrolmentError("sign_key is not a PEM public key") from exc
        if not isinstance(sign_public, Ed25519PublicKey):
            raise EnrolmentError("sign_key is not an Ed25519 public key (Genba signs with Ed25519)")
        try:
            csr = x509.load_pem_x509_csr(csr_pem.encode("ascii"))
        except (ValueError, UnicodeEncodeError) as exc:
            raise EnrolmentError("csr is not a PEM certificate request") from exc
        _check_csr(csr, site)
        if _spki(csr.public_key()) == _spki(auth_public):
            raise EnrolmentError("the TLS key and the SuperNode auth key are the same key; use two keys")
        return cls(site=site, auth_key=keys.auth_public_line(auth_public), sign_key=sign_key, csr=csr_pem)

    @classmethod
    def read(cls, path: Path) -> EnrolmentRequest:
        """The request in ``path``; EnrolmentError naming the file and the problem, on one line."""
        try:
            size = path.stat().st_size
            if size > MAX_REQUEST_BYTES:
                raise EnrolmentError(f"enrolment request {path} is {size} bytes; a request is a few KB")
            document = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise EnrolmentError(f"enrolment request {path} not found") from exc
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise EnrolmentError(f"enrolment request {path} is not a readable JSON file ({exc})") from exc
        try:
            return cls.from_document(document)
        except EnrolmentError as exc:
            raise EnrolmentError(f"enrolment request {path} {exc}") from exc


def _check_csr(csr: x509.CertificateSigningRequest, site: str) -> None:
    if not csr.is_signature_valid:
        raise EnrolmentError("csr's signature is not valid: the request was altered after the site made it")
    key = csr.public_key()
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name not in TLS_CURVES:
        raise EnrolmentError(f"csr's key must be ECDSA on {', '.join(TLS_CURVES)}")
    names = csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if len(names) != 1 or len(csr.subject) != 1 or names[0].value != site:
        raise EnrolmentError(f"csr's subject is {csr.subject.rfc4514_string()!r}, not CN={site}")


def _spki(key: Any) -> bytes:
    return bytes(
        key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
