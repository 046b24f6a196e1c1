"""The SuperLink's front as the plant network meets it: a real nginx with mutual TLS in front of a real
SuperLink on loopback, real SuperNodes of enrolled sites, and an attacker on the plant's address.

The plant network is 127.0.0.2 here (the provisioned server host): the front listens there; the
SuperLink itself listens on 127.0.0.1 only. The attacker uses Flower's own ``flwr`` CLI (the real
Control API client) and raw HTTPS with no certificate, with another CA's certificate, and with a
real site's certificate (a malicious site).
"""

from __future__ import annotations

import json
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from edge_agent.agent import Agent
from edge_agent.answers import Item
from edge_agent.federation.supernode import JoinConfig, JoinRefusedError, SuperNode
from edge_agent.site import SiteFolder
from genba import env
from genba.federation import FAB_DIR
from genba.tools import console_tool, free_loopback_port
from server.federated_run import TrainConfig, train_federated
from server.front import FLEET_CALLS, FrontError
from server.superlink import CONNECTION, ServerConfig, ServerFolder, SuperLink

pytestmark = pytest.mark.timeout(900)

PLANT = "127.0.0.2"
#: Control and Runtime API calls an attacker would make (Flower 1.42's HTTP routes), and Fleet's own
#: self-registration, which a SuperNode with an IT-registered key never needs.
FORBIDDEN = (
    "/v1/control/list-runs",
    "/v1/control/start-run",
    "/v1/control/register-node",
    "/v1/control/list-nodes",
    "/v1/control/stop-run",
    "/v1/fleet/register-node",
    "/v1/fleet/unregister-node",
    "/v1/serverappio/list-apps-to-launch",
    "/v1/runtime/get-run",
    "/health",
    "/",
    "/v1/fleet/../control/list-runs",
    "/v1/fleet/pull-messages/../../control/list-runs",
    "/v1/fleet%2F..%2Fcontrol/list-runs",
)


def _plant_flwr_home(tmp_path: Path, ca: Path, port: int) -> Path:
    """What an attacker on the plant network would configure: Flower's CLI pointed at the front."""
    home = tmp_path / "attacker-flwr-home"
    home.mkdir()
    (home / "config.toml").write_text(
        f'[superlink]\ndefault = "plant"\n\n[superlink.plant]\naddress = "{PLANT}:{port}"\n'
        f'root-certificates = "{ca}"\n',
        encoding="utf-8",
    )
    return home


def _flwr(home: Path, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    environment = env.child_environment({"FLWR_HOME": str(home)})
    return subprocess.run(
        [console_tool("flwr"), *args, "--format", "json"],
        capture_output=True, text=True, env=environment, timeout=120, cwd=cwd,
    )  # fmt: skip


def _refused(done: subprocess.CompletedProcess[str]) -> bool:
    try:
        document = json.loads(done.stdout[done.stdout.index("{") :])
    except ValueError:
        return done.returncode != 0
    return done.returncode != 0 or not document.get("success", False)


def _client(ca: Path, certificate: tuple[Path, Path] | None) -> httpx.Client:
    context = ssl.create_default_context(cafile=str(ca))
    if certificate is not None:
        context.load_cert_chain(str(certificate[0]), str(certificate[1]))
    return httpx.Client(verify=context, timeout=10.0)


def _status(client: httpx.Client, url: str) -> int | str:
    """The HTTP status the front answers, or the TLS failure that stopped the request."""
    try:
        return client.post(url, content=b"", headers={"content-type": "application/protobuf"}).status_code
    except httpx.HTTPError as error:
        return type(error).__name__


def _status_with(ca: Path, site: SiteFolder, url: str) -> int | str:
    with _client(ca, (site.tls_cert_file, site.tls_key_file)) as client:
        return _status(client, url)


def _eventually(condition: Callable[[], bool], timeout: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return False


def _online(folder: Any, name: str) -> bool:
    """Whether the SuperLink (asked over loopback, as IT) has the site's node online."""
    server = ServerFolder(folder)
    node_id = server.nodes()[name]["node_id"]
    done = subprocess.run(
        [console_tool("flwr"), "supernode", "ls", CONNECTION, "--format", "json"],
        capture_output=True, text=True, env=server.environment(), timeout=60,
    )  # fmt: skip
    document = json.loads(done.stdout[done.stdout.index("{") :])
    return any(n["node-id"] == node_id and n["status"] == "online" for n in document.get("nodes", []))


def _no_certificate(answer: int | str) -> bool:
    """The front's answer to a client without a valid certificate: 407, or a failed TLS handshake."""
    return answer == 407 or isinstance(answer, str)


def _proxied_paths(link: SuperLink) -> list[str]:
    """Paths the front passed to the SuperLink (anything it answered itself has status 400/403)."""
    assert link.front is not None
    entries = [json.loads(line) for line in link.front.access_log.read_text().splitlines() if line.strip()]
    return [entry["path"] for entry in entries if entry["status"] not in (407, 403)]


def _label(site: SiteFolder, bundle: Path, harness: Any, mix: dict[str, int]) -> None:
    with Agent.open(site) as agent:
        agent.install(bundle, actor="supervisor")
        rows = [
            (f"{label} on the {place} of {site.root.name}", label, "train" if i < count - 2 else "holdout")
            for label, count in mix.items()
            for i, place in enumerate(("housing", "bracket", "rim", "flange", "gasket", "clip")[:count])
        ]
        answers = agent.predict([Item(kind="text", value=t, raw=t.encode()) for t, _, _ in rows])
        for answer, (_, label, split) in zip(answers, rows, strict=True):
            agent.store.add_label(answer.input_id, label, actor="operator", split=split)


def _train(folder: Any, bundle: Path) -> dict[str, Any]:
    config = TrainConfig(
        kit=folder.root, bundle=bundle, rounds=1, min_sites=3, secagg_timeout_s=60.0, delivery_wait_s=5.0
    )
    return train_federated(config)


def test_from_the_plant_network_only_enrolled_sites_reach_only_the_fleet_api_while_sites_train(
    tmp_path: Path, enrolment: Any, bert_bundle: Path, agent_harness: Any
) -> None:
    port = free_loopback_port()
    names = ("site-a", "site-b", "site-c")
    folder, sites = enrolment.provision_with_sites(tmp_path, names, server_host=PLANT, port=port)
    bundle = agent_harness.reversion(bert_bundle, folder.signing_key, tmp_path / "global-v1", 1)
    mixes = (
        {"scratch": 5, "dent": 3, "ok": 3},
        {"scratch": 3, "dent": 5, "ok": 3},
        {"scratch": 3, "dent": 3, "ok": 5},
    )
    for site, mix in zip(sites.values(), mixes, strict=True):
        agent_harness.write_settings(site, agent_harness.TEST_SETTINGS)
        _label(site, bundle, agent_harness, mix)
    ca = folder.it / "ca.crt"
    _, strangers = enrolment.provision_with_sites(
        tmp_path / "elsewhere", ("x",), server_host=PLANT, out=tmp_path / "elsewhere-it"
    )
    stranger_site = strangers["x"]
    attacker_home = _plant_flwr_home(tmp_path, ca, port)

    with SuperLink(ServerConfig(kit=folder.root)) as link:
        assert link.bind == PLANT and link.upstream_port != port
        link.sync_sites()
        nodes = [SuperNode(JoinConfig(data=site.root)).start() for site in sites.values()]
        try:
            with ThreadPoolExecutor(1) as pool:
                running = pool.submit(_train, folder, bundle)
                # Flower's CLI from the plant network: no run listed, none started, no node registered.
                listed = _flwr(attacker_home, "ls")
                nodes_listed = _flwr(attacker_home, "supernode", "ls")
                key = tmp_path / "rogue.pub"
                key.write_text(enrolment.new_auth_public_line() + "\n", encoding="ascii")
                registered = _flwr(attacker_home, "supernode", "register", str(key))
                started = _flwr(attacker_home, "run", str(FAB_DIR), "plant", cwd=tmp_path)
                # Raw HTTPS: no certificate, another CA's certificate, a real site's certificate.
                urls = [f"https://{PLANT}:{port}{path}" for path in FORBIDDEN]
                with _client(ca, None) as anonymous:
                    anonymous_answers = {url: _status(anonymous, url) for url in urls}
                    fleet_anonymous = _status(anonymous, f"https://{PLANT}:{port}/v1/fleet/pull-messages")
                with _client(ca, (stranger_site.tls_cert_file, stranger_site.tls_key_file)) as foreign:
                    foreign_answers = {url: _status(foreign, url) for url in urls[:3]}
                site_a = sites["site-a"]
                with _client(ca, (site_a.tls_cert_file, site_a.tls_key_file)) as insider:
                    insider_answers = {url: _status(insider, url) for url in urls}
                # The SuperLink's own port is not on the plant's address at all.
                with pytest.raises(OSError):
                    socket.create_connection((PLANT, link.upstream_port), timeout=3).close()
                result = running.result()
            registered_nodes = link.flwr("supernode", "ls")["nodes"]
            runs = link.flwr("ls")["runs"]
        finally:
            for node in nodes:
                node.stop()
        proxied = _proxied_paths(link)

    for done in (listed, nodes_listed, registered, started):
        assert _refused(done), done.stdout + done.stderr
    # No certificate, or one the federation's CA did not issue: refused before any path is looked at.
    assert all(map(_no_certificate, anonymous_answers.values())), anonymous_answers
    assert _no_certificate(fleet_anonymous)
    assert all(map(_no_certificate, foreign_answers.values())), foreign_answers
    # A site's own certificate opens the Fleet calls a SuperNode makes and nothing else.
    assert all(answer in (403, 404) for answer in insider_answers.values()), insider_answers
    assert {path.rsplit("/", 1)[-1] for path in proxied} <= set(FLEET_CALLS), proxied
    # Meanwhile the enrolled sites trained, and nothing the attacker tried left a trace in the SuperLink.
    assert result["rounds_aggregated"] == [1], result["fit_by_round"]
    assert sorted(result["fit_by_round"]["1"]["contributed"]) == list(names)
    assert len([n for n in registered_nodes if n["status"] != "unregistered"]) == len(names)
    started_by_it = list((folder.it / "server" / "runs").glob("*/flwr-run.log"))  # training, delivery
    assert len(runs) == len(started_by_it) == 2, runs


def test_a_site_revoked_while_the_server_runs_is_refused_within_seconds(
    tmp_path: Path, enrolment: Any
) -> None:
    port = free_loopback_port()
    folder, sites = enrolment.provision_with_sites(
        tmp_path, ("site-a", "site-b"), server_host=PLANT, port=port
    )
    server = subprocess.Popen(
        [sys.executable, "-m", "genba", "server", "start", "--kit", str(folder.root)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env.child_environment(),
    )  # fmt: skip
    site_b = sites["site-b"]
    node = None
    try:
        assert server.stdout is not None
        started = json.loads(server.stdout.readline())
        assert started["registered"] == ["site-a", "site-b"] and started["listening"] == f"{PLANT}:{port}"
        node = SuperNode(JoinConfig(data=site_b.root)).start()
        ca = folder.it / "ca.crt"
        flower_signature_needed = 401  # Flower itself answers: the front passed the request on
        assert _status_with(ca, site_b, f"https://{PLANT}:{port}/v1/fleet/get-run") == flower_signature_needed
        assert _eventually(lambda: _online(folder, "site-b")), node.last_log_line()
        revoke = subprocess.run(
            [sys.executable, "-m", "genba", "provision", "--out", str(folder.root), "revoke-site", "site-b"],
            capture_output=True, text=True, env=env.child_environment(), timeout=60,
        )  # fmt: skip
        assert revoke.returncode == 0, revoke.stderr
        revoked_at = time.monotonic()
        refused = _eventually(
            lambda: _no_certificate(_status_with(ca, site_b, f"https://{PLANT}:{port}/v1/fleet/get-run")), 30
        )
        refused_after = time.monotonic() - revoked_at
        # The site's SuperNode, online until now, is refused at its next request and ends with one line.
        with pytest.raises(JoinRefusedError, match="refused site 'site-b''s certificate"):
            node.wait(timeout=60)
        ended_after = time.monotonic() - revoked_at
        assert refused and refused_after < 5.0, refused_after
        assert ended_after < 30.0, ended_after
        assert json.loads(server.stdout.readline())["unregistered"] == ["site-b"]
        # The other site is still admitted.
        assert _status_with(ca, sites["site-a"], f"https://{PLANT}:{port}/v1/fleet/get-run") == 401
    finally:
        if node is not None:
            node.stop()
        server.terminate()
        server.wait(timeout=60)


def test_a_front_whose_port_is_taken_refuses_to_start_in_one_line(tmp_path: Path, enrolment: Any) -> None:
    port = free_loopback_port()
    folder, _ = enrolment.provision_with_sites(tmp_path, (), server_host=PLANT, port=port)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as squatter:
        squatter.bind((PLANT, port))
        squatter.listen()
        link = SuperLink(ServerConfig(kit=folder.root))
        with pytest.raises(FrontError, match=f"{PLANT}:{port} is already in use"):
            link.start()
        assert link.process is not None and link.process.poll() is not None  # nothing left running
