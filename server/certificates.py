"""IT's view of the federation's certificates: the CA, the SuperLink's TLS certificate and each
active site's client certificate, with how long each has left (``genba server certificates``).
Warned within 30 days of their end and stated as expired after, as a site's agent does."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any, Final

from genba.certificates import check_certificate
from server.provision import ITFolder, kit_sites

RENEW_SERVER: Final = "renew it with 'genba provision --out DIR renew-certificate', then restart the server"
RENEW_CA: Final = "a new CA means a new kit for every site: plan the change before then"
RENEW_SITE: Final = (
    "a site's certificate is not renewed in place: the site enrols again under a new name "
    "('genba agent init --enrol-request') and IT adds it ('genba provision add-site')"
)


def certificate_report(kit: Path, now: dt.datetime | None = None) -> dict[str, Any]:
    """Every certificate of the IT folder ``kit``; ``warnings`` holds the lines that need action."""
    folder = ITFolder(Path(kit)).require()
    moment = now or dt.datetime.now(dt.UTC)
    checked = [
        check_certificate(path, name, now=moment, renew=renew) for path, name, renew in _certificates(folder)
    ]
    return {
        "certificates": [c.to_json() for c in checked],
        "warnings": [c.message for c in checked if c.needs_attention],
    }


def _certificates(folder: ITFolder) -> list[tuple[Path, str, str]]:
    named = [
        (folder.ca_file, "the federation's CA certificate", RENEW_CA),
        (folder.it / "superlink.crt", "the SuperLink's TLS certificate", RENEW_SERVER),
    ]
    for site in sorted(kit_sites(folder)):
        named.append(
            (folder.kits / site / "site-tls.crt", f"site {site}'s TLS client certificate", RENEW_SITE)
        )
    return [(path, name, renew) for path, name, renew in named if path.exists()]
