"""Which certificates of the site's kit the operator must hear about: expiring within 30 days,
expired, or unusable. No Qt: the window words it in the banner (``gui.app``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePath

from edge_agent.service.schemas import StatusResponse

#: The kit's files, by what the banner calls them (anything else by its file name).
KINDS = {"site-tls.crt": "client", "ca.crt": "ca"}


@dataclass(frozen=True)
class CertificateWarning:
    kind: str  # "client", "ca", or the file's name
    state: str  # expiring, expired, not_yet_valid or unreadable
    date: str  # the day it ends (YYYY-MM-DD), or "" when unknown
    days: int  # whole days left (0 once expired)
    message: str  # the agent's own line, for the states the banner does not word itself


def certificate_warnings(status: StatusResponse) -> list[CertificateWarning]:
    """Expired first, then the soonest to expire; a certificate that is fine is not mentioned."""
    warnings = [
        CertificateWarning(
            kind=KINDS.get(PurePath(c.path).name, PurePath(c.path).name),
            state=c.state,
            date=(c.not_after or "")[:10],
            days=max(0, int(c.days_left or 0)),
            message=c.message,
        )
        for c in status.certificates
        if c.state != "ok"
    ]
    return sorted(warnings, key=lambda w: (w.state != "expired", w.days))
