"""The federation CA's certificate revocation list: the sites' client certificates no longer admitted.

``it/crl.pem`` is what the front (nginx, ``ssl_crl``) checks every site's client certificate
against. It is rewritten from ``it/sites.json`` whenever the server starts or the registry
changes (``revoke-site``), signed by the federation CA, and valid for :data:`CRL_DAYS` days: nginx
refuses every client once a CRL's next update has passed, so a running server rewrites it daily.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from server.provision import ITFolder, write_crl

CRL_DAYS = 7
#: How often a running server rewrites the CRL even when nothing changed (well within CRL_DAYS).
REFRESH_S = 24 * 3600.0


def write_revocation_list(folder: ITFolder, now: dt.datetime | None = None) -> Path:
    """``it/crl.pem`` for the registry as it is now, valid :data:`CRL_DAYS` days (atomically
    replaced, its CRL number one above the last): the same list ``revoke-site`` writes."""
    return write_crl(folder, now=now, days=CRL_DAYS)
