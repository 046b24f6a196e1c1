"""The site's certificates from its kit (the TLS client certificate and the kit's CA), checked for
expiry: the agent's status lists them and warns within 30 days of either one's end."""

from __future__ import annotations

from typing import Final

from edge_agent.site import SiteFolder
from genba.certificates import CertificateExpiry, check_certificate, utc_now

#: What a site can do about a certificate near its end: only IT issues them.
RENEW: Final = (
    "ask IT for a new site kit; without a valid one federated training cannot connect "
    "(predictions are not affected)"
)


def site_certificates(site: SiteFolder, now_s: float) -> list[CertificateExpiry]:
    """The kit's certificates this site holds (none for a standalone site), at epoch ``now_s``."""
    now = utc_now(now_s)
    named = (
        (site.tls_cert_file, "the site's TLS client certificate"),
        (site.ca_file, "the kit's CA certificate"),
    )
    return [check_certificate(path, name, now=now, renew=RENEW) for path, name in named if path.exists()]
