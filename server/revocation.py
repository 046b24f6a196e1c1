"""The federation CA's certificate revocation list: the sites' client certificates no longer admitted.

``it/crl.pem`` is what the front (nginx, ``ssl_crl``) checks every site's client certificate
against. It is rewritten from ``it/sites.json`` whenever the server starts or the registry
changes (``revoke-site``), signed by the federation CA, and valid for :data:`CRL_DAYS` days: nginx
refuses every client once a CRL's next update has passed, so a running server rewrites it daily.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from server import pki

if TYPE_CHECKING:
    from server.provision import ITFolder

CRL_DAYS = 7
#: How often a running server rewrites the CRL even when nothing changed (well within CRL_DAYS).
REFRESH_S = 24 * 3600.0


def revoked_serials(registry: dict[str, dict[str, Any]]) -> list[int]:
    """Serial numbers of the client certificates of every revoked site."""
    serials = []
    for entry in registry.values():
        serial = entry.get("client_certificate", {}).get("serial")
        if entry.get("state") == "revoked" and serial is not None:
            serials.append(int(str(serial), 16) if isinstance(serial, str) else int(serial))
    return sorted(serials)


def write_revocation_list(folder: ITFolder, now: dt.datetime | None = None) -> Path:
    """``it/crl.pem`` for the registry as it is now (atomically replaced)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization

    now = now or dt.datetime.now(dt.UTC)
    authority = pki.load_authority(folder.it / "ca.crt", folder.it / "ca.key")
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(authority.certificate.subject)
        .last_update(now - dt.timedelta(minutes=5))
        .next_update(now + dt.timedelta(days=CRL_DAYS))
    )
    for serial in revoked_serials(folder.registry()):
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(now).build()
        )
    crl = builder.sign(authority.key, hashes.SHA256())
    path = folder.it / "crl.pem"
    temporary = path.with_suffix(".tmp")
    temporary.write_bytes(crl.public_bytes(serialization.Encoding.PEM))
    os.replace(temporary, path)
    return path
