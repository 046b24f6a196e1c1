"""A ledger with no exceptions, and the site's one long-lived, pinned ClientApp process.

A real SuperLink (behind its front, TLS, node auth) and three real SuperNodes joined as
``genba agent join`` joins them. The runs ship a small probe app (a FAB written here): its
ServerApp sends each site one message per step and keeps every reply exactly as received
(``server.strategy.RecordingGrid``); its ClientApp answers a step with an allowed reply, an
exception holding site data, or a reply with site data in it. The sites approve it by hash, as IT
would ask them to; a second build of it, which no site approved, would leave a mark if it ran.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from edge_agent.federation.clientapp_process import clientapp_file
from edge_agent.federation.supernode import JoinConfig, SuperNode
from edge_agent.site import SiteFolder
from edge_agent.store import SiteStore
from genba.federation import genba_fab_hash
from genba.protocol import (
    ERROR_APP_NOT_APPROVED,
    ERROR_FAILED,
    ERROR_REASONS,
    ERROR_REFUSED_REPLY,
    content_sha256,
)
from genba.tools import free_loopback_port
from server.runs import flwr_run, new_run_dir, node_names
from server.superlink import ServerConfig, SuperLink

pytestmark = pytest.mark.timeout(900)

NAMES = ("site-a", "site-b", "site-c")
SECRET = "scratch on housing lot qz9-5512"  # a site's data, in what its app raises or tries to send

PYPROJECT = """[build-system]
requires = ["hatchling"]
build-backend = "hatchling.build"

[project]
name = "ledger-probe"
version = "1.0.0"
dependencies = []

[tool.hatch.build.targets.wheel]
packages = ["."]

[tool.flwr.app]
publisher = "genba-tests"

[tool.flwr.app.components]
serverapp = "ledger_probe.server:app"
clientapp = "ledger_probe.client:app"

[tool.flwr.app.config]
steps = "ok"
expected-sites = 3
results = ""
"""

SERVER = """
import json
import time
from pathlib import Path

from flwr.app import ConfigRecord, Message, RecordDict
from flwr.server import ServerApp

from server.strategy import RecordingGrid

app = ServerApp()


@app.main()
def main(grid, context):
    config = context.run_config
    results = Path(str(config["results"]))
    grid = RecordingGrid(grid, results / "received.jsonl")
    deadline = time.monotonic() + 60
    while len(list(grid.get_node_ids())) < int(config["expected-sites"]) and time.monotonic() < deadline:
        time.sleep(0.5)
    nodes = sorted(grid.get_node_ids())
    for number, step in enumerate(str(config["steps"]).split(","), start=1):
        messages = [
            Message(RecordDict({"probe": ConfigRecord({"do": step})}), dst_node_id=node,
                    message_type="query", group_id=str(number))
            for node in nodes
        ]
        grid.send_and_receive(messages, timeout=120)
    (results / "results.json").write_text(json.dumps({"nodes": [str(n) for n in nodes]}))
"""

CLIENT = """
from pathlib import Path

from flwr.app import ConfigRecord, Message, RecordDict
from flwr.clientapp import ClientApp

Path(MARKER).write_text("the probe app ran at a site")
app = ClientApp()


@app.query()
def query(msg, context):
    step = msg.content["probe"]["do"]
    receipt = {"version": 7, "outcome": 1}
    secret = (Path(context.node_config["data"]) / "secret.txt").read_text()  # the site's own data
    if step == "fail":
        raise KeyError(secret)
    if step == "leak":
        receipt["note"] = secret
    return Message(RecordDict({"bundle_receipt": ConfigRecord(receipt)}), reply_to=msg)
"""


def _probe_fab(root: Path, marker: Path) -> Path:
    package = root / "ledger_probe"
    package.mkdir(parents=True)
    (root / "pyproject.toml").write_text(PYPROJECT, encoding="utf-8")
    (package / "__init__.py").write_text("", encoding="utf-8")
    (package / "server.py").write_text(SERVER, encoding="utf-8")
    (package / "client.py").write_text(f"MARKER = {str(marker)!r}\n" + CLIENT, encoding="utf-8")
    return root


def _approve(site: SiteFolder, fab: Path) -> None:
    (site.root / "secret.txt").write_text(SECRET, encoding="utf-8")
    (site.root / "federation").mkdir(parents=True, exist_ok=True)
    (site.root / "federation" / "approved-fabs").write_text(f"{genba_fab_hash(fab)}  # ledger probe\n")


def _run(link: SuperLink, fab: Path, steps: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    run_dir = new_run_dir(link.server.root / "runs")
    flwr_run(link.server, fab, run_dir, {"steps": steps, "expected-sites": len(NAMES)}, timeout_s=600.0)
    names = node_names(link.server)
    received = [json.loads(line) for line in (run_dir / "results" / "received.jsonl").open()]
    by_site: dict[str, Any] = {}
    for reply in received:
        by_site.setdefault(names[reply["node"]], {})[int(reply["round"])] = reply
    return by_site, received


def _ledger(site: SiteFolder) -> list[dict[str, Any]]:
    with SiteStore.read_only(site.store_file) as store:
        assert store.verify_chain("egress").ok
        return [entry.fields for entry in reversed(store.egress(limit=1000))]


def _events(site: SiteFolder, event: str) -> list[dict[str, Any]]:
    with SiteStore.read_only(site.store_file) as store:
        return [e.fields["details"] for e in store.audit(limit=1000) if e.fields["event"] == event]


def _received_sha(reply: dict[str, Any]) -> str:
    """The SHA-256 of what the server received, by the protocol's own canonical form."""
    if reply["error"]:
        return content_sha256({"error": dict(reply["error_reply"])})
    return content_sha256(
        {
            name: {key: _bytes(value) for key, value in fields.items()}
            for name, fields in reply["content"].items()
        }
    )


def _bytes(value: Any) -> Any:
    if isinstance(value, dict) and set(value) == {"b64"}:
        return base64.b64decode(value["b64"])
    return [_bytes(item) for item in value] if isinstance(value, list) else value


def _restarted(site: SiteFolder, pid: int, timeout: float = 60.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        record = json.loads(clientapp_file(site.root).read_text())
        if record["pid"] != pid:
            return dict(record)
        time.sleep(0.2)
    raise AssertionError(f"{site.root.name}'s ClientApp process was not started again")


def test_every_reply_errors_included_is_ledgered_with_the_hash_of_what_the_server_received(
    tmp_path: Path, enrolment: Any
) -> None:
    folder, enrolled = enrolment.provision_with_sites(tmp_path, NAMES, port=free_loopback_port())
    sites = [enrolled[name] for name in NAMES]
    approved = _probe_fab(tmp_path / "probe", tmp_path / "approved-probe-ran")
    unapproved = _probe_fab(tmp_path / "rogue", tmp_path / "rogue-probe-ran")
    for site in sites:
        _approve(site, approved)

    with SuperLink(ServerConfig(kit=folder.root)) as link:
        link.sync_sites()
        nodes = [SuperNode(JoinConfig(data=site.root)).start() for site in sites]
        try:
            rogue, _ = _run(link, unapproved, "ok")
            probe, received = _run(link, approved, "ok,fail,leak")
            first = json.loads(clientapp_file(sites[0].root).read_text())
            os.kill(first["pid"], signal.SIGKILL)  # the ClientApp process dies; the SuperNode lives on
            again = _restarted(sites[0], first["pid"])
            after, _ = _run(link, approved, "ok")
        finally:
            for node in nodes:
                node.stop()
        for node in nodes:  # stop() ended each SuperNode's ClientApp process with it
            pid = json.loads(clientapp_file(node.site.root).read_text())["pid"]
            assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text()

    # App code no site approved never ran; each site answered with a ledgered error saying so.
    assert not (tmp_path / "rogue-probe-ran").exists() and (tmp_path / "approved-probe-ran").exists()
    for site in sites:
        reply = rogue[site.root.name][1]
        assert reply["error_reply"] == {
            "code": ERROR_APP_NOT_APPROVED,
            "reason": ERROR_REASONS[ERROR_APP_NOT_APPROVED],
        }
        assert _events(site, "federated_app_refused")[0]["fab_sha256"] == genba_fab_hash(unapproved)

    # Each step's reply as the server received it: the receipt, and two errors from the fixed table.
    for site in sites:
        replies = probe[site.root.name]
        assert replies[1]["content"] == {"bundle_receipt": {"version": 7, "outcome": 1}}
        assert replies[2]["error_reply"] == {"code": ERROR_FAILED, "reason": ERROR_REASONS[ERROR_FAILED]}
        assert replies[3]["error_reply"] == {
            "code": ERROR_REFUSED_REPLY,
            "reason": ERROR_REASONS[ERROR_REFUSED_REPLY],
        }
        # Everything the ClientApp sent is in its ledger, with the hash of exactly what arrived.
        ledger = _ledger(site)
        kinds = [(entry["kind"], entry["round"]) for entry in ledger]
        assert kinds == [
            ("error", 1),
            ("bundle_receipt", 1),
            ("error", 2),
            ("error", 3),
            ("bundle_receipt", 1),
        ]
        sent = {(e["details"]["run"], e["round"]): e["content_sha256"] for e in ledger[1:4]}
        assert sorted(sent.values()) == sorted(_received_sha(replies[step]) for step in (1, 2, 3))
        assert ledger[0]["content_sha256"] == _received_sha(rogue[site.root.name][1])
        # The real reasons stay at the site.
        reasons = [e["reason"] for e in _events(site, "federated_error_reply")]
        assert any(SECRET in reason for reason in reasons)
        assert any(
            "['note']" in e["reason"] for e in _events(site, "egress_refused")
        )  # which field, not its value
    assert all(reply["node"] for reply in received)

    # Nothing of the site's data reached the SuperLink: not its database, logs or what the server kept.
    server_bytes = b"".join(p.read_bytes() for p in folder.it.rglob("*") if p.is_file())
    assert SECRET.encode() not in server_bytes

    # The ClientApp process that was killed was started again and served the next run.
    assert again["starts"] == 2 and again["pid"] != first["pid"]
    assert after[sites[0].root.name][1]["content"] == {"bundle_receipt": {"version": 7, "outcome": 1}}
