"""A real SuperLink with TLS and SuperNode auth on loopback, and real SuperNodes of provisioned sites."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from edge_agent.federation.supernode import JoinConfig, JoinFailedError, JoinRefusedError, SuperNode
from edge_agent.site import SiteFolder
from genba.tools import free_loopback_port
from server import pki
from server.provision import ProvisionConfig, provision, revoke_site
from server.superlink import ServerConfig, SuperLink

pytestmark = pytest.mark.timeout(300)


def _online(link: SuperLink, node_id: str) -> bool:
    return any(
        n["node-id"] == node_id and n["status"] == "online" for n in link.flwr("supernode", "ls")["nodes"]
    )


def _eventually(condition: Callable[[], bool], timeout: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.5)
    return False


def test_registered_sites_join_and_unknown_revoked_or_misconfigured_ones_are_refused(
    tmp_path: Path, enrolment: Any
) -> None:
    port = free_loopback_port()
    folder, sites = enrolment.provision_with_sites(
        tmp_path, ("site-a", "site-b"), port=port, site_root=lambda name: tmp_path / f"data-{name}"
    )
    rogue = SiteFolder(shutil.copytree(sites["site-b"].root, tmp_path / "data-rogue"))  # another auth key
    rogue.auth_key_file.unlink()
    pki.write_auth_key_pair(pki.new_auth_key(), rogue.auth_key_file.with_name("rogue"))
    shutil.move(rogue.auth_key_file.with_name("rogue"), rogue.auth_key_file)
    stranger = SiteFolder(shutil.copytree(sites["site-a"].root, tmp_path / "data-stranger"))
    other_ca = provision(ProvisionConfig(out=tmp_path / "other", server_host="127.0.0.1"))
    shutil.copyfile(other_ca.it / "ca.crt", stranger.ca_file)

    with SuperLink(ServerConfig(kit=folder.root)) as link:
        changes = link.sync_sites()
        assert changes["registered"] == ["site-a", "site-b"]
        assert link.sync_sites()["registered"] == []  # idempotent
        nodes = changes["nodes"]

        with SuperNode(JoinConfig(data=sites["site-a"].root)) as site_a:
            assert _eventually(lambda: _online(link, nodes["site-a"]["node_id"])), site_a.last_log_line()
            assert site_a.running()

            with pytest.raises(
                JoinRefusedError, match="refused site 'data-rogue': its key is not registered"
            ):
                SuperNode(JoinConfig(data=rogue.root, max_retries=2)).start().wait(timeout=120)
            # A SuperLink certificate from another CA is not trusted: TLS fails, the site never joins.
            with pytest.raises(
                JoinFailedError, match="did not present a valid certificate from this site's CA"
            ):
                SuperNode(JoinConfig(data=stranger.root, max_retries=2)).start().wait(timeout=120)

            revoke_site(folder.root, "site-b")
            assert link.sync_sites()["unregistered"] == ["site-b"]
            with pytest.raises(JoinRefusedError):
                SuperNode(JoinConfig(data=sites["site-b"].root, max_retries=2)).start().wait(timeout=120)
            assert _online(link, nodes["site-a"]["node_id"])  # the others carry on

    # The registrations live in the SuperLink's database inside the IT folder: a restart keeps them.
    with SuperLink(ServerConfig(kit=folder.root)) as again:
        assert again.sync_sites() == {**again.sync_sites(), "registered": [], "unregistered": []}
        status = {n["node-id"]: n["status"] for n in again.flwr("supernode", "ls")["nodes"]}
        assert status[nodes["site-a"]["node_id"]] in ("registered", "offline", "online")
        assert status.get(nodes["site-b"]["node_id"], "unregistered") == "unregistered", status


def test_genba_server_start_registers_the_sites_and_stops_cleanly_on_sigterm(
    tmp_path: Path, enrolment: Any
) -> None:
    import json
    import signal
    import subprocess
    import sys

    from genba import env

    port = free_loopback_port()
    folder, _ = enrolment.provision_with_sites(tmp_path, ("a", "b", "c"), port=port)
    command = [sys.executable, "-m", "genba", "server", "start", "--kit", str(folder.root)]
    server = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env.child_environment()
    )
    try:
        assert server.stdout is not None
        started = json.loads(server.stdout.readline())
        assert started["superlink"] == f"127.0.0.1:{port}" and started["registered"] == ["a", "b", "c"]
        assert started["sites"] == {"a": "active", "b": "active", "c": "active"}
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=60) == 0, server.stderr.read() if server.stderr else ""
    finally:
        if server.poll() is None:
            server.kill()
    leftover = subprocess.run(["pgrep", "-f", str(folder.root)], capture_output=True, text=True)
    assert leftover.stdout.strip() == "", "a Flower process outlived 'genba server start'"


def test_an_expired_superlink_certificate_is_refused_before_start_and_renewed(
    tmp_path: Path, enrolment: Any
) -> None:
    import datetime as dt

    from server.provision import renew_certificate
    from server.superlink import SuperLinkError

    folder, _ = enrolment.provision_with_sites(tmp_path, ("a",), port=free_loopback_port())
    renew_certificate(folder.root, days=1, now=dt.datetime.now(dt.UTC) - dt.timedelta(days=10))
    link = SuperLink(ServerConfig(kit=folder.root))
    with pytest.raises(SuperLinkError, match="expired on .*genba provision renew-certificate"):
        link.start()
    assert link.process is None and not (folder.it / "server" / "superlink.db").exists()
    renewed = renew_certificate(folder.root)
    assert dt.datetime.fromisoformat(renewed["valid_until"]) > dt.datetime.now(dt.UTC)
    assert oct((folder.it / "superlink.key").stat().st_mode & 0o777) == "0o600"
    with SuperLink(ServerConfig(kit=folder.root)) as running:  # a real TLS handshake with the kit's CA
        assert running.process is not None and running.process.poll() is None
