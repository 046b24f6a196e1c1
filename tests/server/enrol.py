"""Provisioning for tests: an IT folder and sites enrolled the way a plant does it.

Each site makes its own keys and request (``enrol_site``), IT answers with a kit (``add_site``)
and the site finishes from it (``init_site``): the same public pieces ``genba agent init
--enrol-request``, ``genba provision add-site --request`` and ``genba agent init --kit`` use.
Loaded by path through the ``enrolment`` fixture (tests/conftest.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

from edge_agent.site import SiteFolder
from edge_agent.site_init import enrol_site, init_site
from genba import keys
from server.provision import DEFAULT_PORT, ITFolder, ProvisionConfig, add_site, provision


def provision_with_sites(
    tmp_path: Path,
    names: Iterable[str],
    *,
    port: int = DEFAULT_PORT,
    out: Path | None = None,
    server_host: str = "127.0.0.1",
    site_root: Callable[[str], Path] | None = None,
) -> tuple[ITFolder, dict[str, SiteFolder]]:
    """``out`` (default ``tmp_path/it``) provisioned, and each named site enrolled and initialised.

    A site's folder is ``site_root(name)`` (default ``tmp_path/name``); its request is written
    beside the IT folder under ``requests/``.
    """
    folder = provision(ProvisionConfig(out=out or tmp_path / "it", server_host=server_host, port=port))
    requests = folder.root.parent / f"{folder.root.name}-requests"
    requests.mkdir(exist_ok=True)
    sites = {}
    for name in names:
        root = site_root(name) if site_root is not None else tmp_path / name
        request = requests / f"{name}.json"
        enrol_site(root, name, request)
        add_site(folder.root, request)
        sites[name] = init_site(root, site_name=None, kit=folder.kits / name)
    return folder, sites


def new_auth_public_line() -> str:
    """A SuperNode auth public key no site holds (what a rogue node would try to register)."""
    return keys.auth_public_line(keys.generate_federation_key().public_key())
