"""``flwr-clientapp`` as a site runs it: only approved app code (FABs) is installed and run.

A SuperNode starts one ``flwr-clientapp`` process per message, by name, from PATH. ``genba agent
join`` puts a ``flwr-clientapp`` of the site's own first on that PATH (``DATA/federation/bin``):
it runs Flower's real entry point with one change, that a FAB whose SHA-256 is not approved is
refused before it is installed or imported. Approved: the FAB this Genba installation builds
itself (``genba.federation``), plus hashes listed in ``DATA/federation/approved-fabs``. A refusal
is audited in the site store and the message fails; nothing of the FAB runs.
"""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path
from typing import Any

APPROVED_ENV = "GENBA_APPROVED_FABS"
SITE_ENV = "GENBA_SITE_DATA"


class UnapprovedAppError(RuntimeError):
    """The SuperLink sent app code this site has not approved."""


def checked_install(install: Any, approved: frozenset[str], site: Path | None) -> Any:
    def install_if_approved(content: bytes, *args: Any, **kwargs: Any) -> Any:
        digest = hashlib.sha256(content).hexdigest()
        if digest not in approved:
            _audit_refusal(site, digest)
            raise UnapprovedAppError(
                f"the SuperLink sent a Flower app (FAB sha256 {digest[:16]}...) this site has not approved; "
                "it was not installed or run"
            )
        return install(content, *args, **kwargs)

    return install_if_approved


def _audit_refusal(site: Path | None, digest: str) -> None:
    if site is None:
        return
    from edge_agent.store import SiteStore

    with SiteStore(site / "store.db") as store:
        store.append_audit("federated_app_refused", "federation", {"fab_sha256": digest})


def main() -> None:
    from flwr.supernode.cli.flwr_clientapp import flwr_clientapp
    from flwr.supernode.runtime import run_clientapp

    approved = frozenset(h for h in os.environ.get(APPROVED_ENV, "").split(",") if h)
    site = Path(os.environ[SITE_ENV]) if os.environ.get(SITE_ENV) else None
    run_clientapp.install_from_fab = checked_install(run_clientapp.install_from_fab, approved, site)
    flwr_clientapp()


def write_shim(folder: Path) -> Path:
    """``folder/flwr-clientapp``: this interpreter running :func:`main` (argv[0] keeps Flower's name)."""
    folder.mkdir(parents=True, exist_ok=True)
    shim = folder / "flwr-clientapp"
    shim.write_text(
        f"#!{sys.executable}\nfrom edge_agent.federation.pinned_clientapp import main\n\nmain()\n",
        encoding="utf-8",
    )
    shim.chmod(0o755)
    return shim
