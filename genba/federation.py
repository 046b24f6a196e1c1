"""Genba's federated app (FAB): where it lives and the hash a site approves.

The FAB in ``genba/federation_fab/`` carries no code of its own: its components are one-line
imports of Genba's installed ``server.server_app`` and ``edge_agent.federation.client_app``. Flower
builds FABs deterministically (fixed file dates), so every installation of the same Genba version
computes the same hash, and a site approves exactly the FAB its own installation would build.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

FAB_DIR = Path(__file__).with_name("federation_fab")


def genba_fab_hash(fab_dir: Path = FAB_DIR) -> str:
    """SHA-256 of the FAB ``flwr run`` builds from ``fab_dir`` (what a SuperNode receives)."""
    from flwr.cli.build import build_fab_from_disk

    return hashlib.sha256(build_fab_from_disk(fab_dir)).hexdigest()
