"""How long a certificate has left: warned within 30 days of its expiry, stated as expired after.

The agent's status (the site's TLS client certificate and the kit's CA) and IT's ``genba server
sites`` (the SuperLink's certificate and the CA) both say it the same way: one entry per
certificate with its end date, the days left, a state and one line saying what to do.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Final

from cryptography import x509

#: A certificate this close to its end is warned about (the issue's 30 days; kits last 2 years).
EXPIRY_WARNING_DAYS: Final = 30

#: ``ok``: valid for longer than the warning; ``expiring``: within it; ``expired``: past its end;
#: ``not_yet_valid``: its start is ahead of this PC's clock; ``unreadable``: no PEM certificate.
STATES: Final = ("ok", "expiring", "expired", "not_yet_valid", "unreadable")


@dataclass(frozen=True)
class CertificateExpiry:
    name: str  # what the certificate is for, as a person calls it
    path: str
    state: str
    not_after: str | None  # ISO 8601, UTC
    days_left: float | None  # negative once expired
    message: str  # one line: what and, unless ok, what to do

    @property
    def needs_attention(self) -> bool:
        return self.state != "ok"

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def check_certificate(
    path: Path, name: str, *, now: dt.datetime, renew: str, warn_days: float = EXPIRY_WARNING_DAYS
) -> CertificateExpiry:
    """The state of the PEM certificate at ``path``; ``renew`` says how to get a new one."""
    try:
        certificate = x509.load_pem_x509_certificate(path.read_bytes())
    except (OSError, ValueError):
        return CertificateExpiry(name, str(path), "unreadable", None, None,
                                 f"{name} ({path}) cannot be read as a PEM certificate; {renew}")  # fmt: skip
    end = certificate.not_valid_after_utc
    days_left = (end - now).total_seconds() / 86400.0
    state, message = _state(name, path, certificate, now, days_left, warn_days)
    if state != "ok":
        message = f"{message}; {renew}"
    return CertificateExpiry(name, str(path), state, end.isoformat(), round(days_left, 2), message)


def _state(
    name: str, path: Path, certificate: x509.Certificate, now: dt.datetime, days_left: float, warn_days: float
) -> tuple[str, str]:
    end = certificate.not_valid_after_utc.date().isoformat()
    if days_left <= 0:
        return "expired", f"{name} ({path}) expired on {end}"
    if certificate.not_valid_before_utc > now:
        start = certificate.not_valid_before_utc.date().isoformat()
        return "not_yet_valid", f"{name} ({path}) is not valid before {start}: check this PC's clock"
    if days_left <= warn_days:
        return "expiring", f"{name} ({path}) expires on {end}, in {days_left:.0f} days"
    return "ok", f"{name} is valid until {end}"


def utc_now(clock_seconds: float) -> dt.datetime:
    """A clock's epoch seconds as the aware UTC datetime certificates are compared with."""
    return dt.datetime.fromtimestamp(clock_seconds, dt.UTC)
