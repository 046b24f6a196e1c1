"""Faults a federation survives: IT's SuperLink restarted mid-run, and a site's line cut and restored.

A real SuperLink (behind its front, TLS, node auth) and three real SuperNodes on loopback, as in
test_federated_run.py, on a tiny model and few rounds. After each fault nothing is corrupt on
either side (the registry and the site stores pass SQLite's integrity check, both hash chains of
every site verify) and every reply a site ledgered either reached the server, byte for byte, or is
marked in the same ledger as not delivered; no reply reached the server that its site's ledger lacks.
"""

from __future__ import annotations

import json
import re
import sqlite3
import time
from collections import Counter
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from edge_agent.agent import Agent
from edge_agent.answers import Item
from edge_agent.federation.supernode import JoinConfig, SuperNode
from edge_agent.federation.undelivered import NOT_DELIVERED
from edge_agent.site import SiteFolder
from edge_agent.store import SiteStore
from genba.tools import free_loopback_port
from server.federated_run import TrainConfig, train_federated
from server.publish import list_models
from server.runs import RunInterruptedError, node_names
from server.strategy import received_sha256
from server.superlink import ServerConfig, ServerFolder, SuperLink

pytestmark = [pytest.mark.timeout(900), pytest.mark.fault]

NAMES = ("site-a", "site-b", "site-c")
PHRASES = {"scratch": "scratch on the {}", "dent": "dent near the {}", "ok": "good {} part ok"}
PLACES = ("housing", "bracket", "rim", "flange")
#: How long a short cut of the line lasts: with the SuperNode's backoff (1, 2, 4 s...) it is back
#: well inside a SecAgg+ stage's timeout (25 s here).
SHORT_CUT_S = 3.0


def _sites(
    tmp_path: Path, bert_bundle: Path, agent_harness: Any, enrolment: Any, names: tuple[str, ...] = NAMES
) -> tuple[Any, list[Any], Path]:
    """Enrolled sites serving v1 (a tiny BERT), each with a few labels to train and evaluate on."""
    folder, enrolled = enrolment.provision_with_sites(tmp_path, names, port=free_loopback_port())
    bundle = agent_harness.reversion(bert_bundle, folder.signing_key, tmp_path / "v1", 1)
    sites = [enrolled[name] for name in names]
    for site in sites:
        agent_harness.write_settings(site, agent_harness.TEST_SETTINGS)
        with Agent.open(site) as agent:
            agent.install(bundle, actor="supervisor")
            rows = [
                (PHRASES[label].format(place), label, "train" if i < 2 else "holdout")
                for label in PHRASES
                for i, place in enumerate(PLACES)
            ]
            answers = agent.predict([Item(kind="text", value=t, raw=t.encode()) for t, _, _ in rows])
            for answer, (_, label, split) in zip(answers, rows, strict=True):
                agent.store.add_label(answer.input_id, label, actor="operator", split=split)
    return folder, sites, bundle


def test_a_superlink_restarted_mid_run_stops_the_run_cleanly_and_the_sites_take_part_in_the_next(
    tmp_path: Path, bert_bundle: Path, agent_harness: Any, enrolment: Any
) -> None:
    folder, sites, bundle = _sites(tmp_path, bert_bundle, agent_harness, enrolment)
    config = TrainConfig(
        kit=folder.root, bundle=bundle, rounds=1, secagg_timeout_s=60.0, deliver=False, keep_received=True
    )
    link = SuperLink(ServerConfig(kit=folder.root)).start()
    link.sync_sites()
    nodes = [SuperNode(JoinConfig(data=site.root)).start() for site in sites]
    try:
        with ThreadPoolExecutor(1) as pool:
            running = pool.submit(train_federated, config)
            # Round 1 is under way: every site's keys reached the ServerApp, their shares are on the way.
            _wait_for_ledger(sites[0], "secagg_key_shares", 1, running.done)
            first_port = link.upstream_port
            link.stop()  # IT restarts `genba server start`
            assert not _dialling(first_port)  # the run's ServerApp ended with its SuperLink
            link = SuperLink(ServerConfig(kit=folder.root)).start()
            with pytest.raises(RunInterruptedError) as stopped:
                running.result()
        again = train_federated(config)  # the sites reconnect by themselves and take part
        names = node_names(link.server)
        assert all(node.running() for node in nodes)
    finally:
        for node in nodes:
            node.stop()
        link.stop()

    # The interrupted run said so in one line (what `genba server train` prints, exit code 1) and is
    # recorded as interrupted; nothing of it was released.
    message = str(stopped.value)
    assert stopped.value.exit_code == 1 and len(message.splitlines()) == 1
    interrupted = re.fullmatch(r"run (\S+) stopped: the SuperLink went away while it ran, .*", message)
    assert interrupted, message
    models = list_models(folder.root)
    runs = {run["run"]: run for run in models["runs"]}
    assert (
        runs[interrupted.group(1)]["outcome"] == "interrupted"
        and runs[interrupted.group(1)]["version"] is None
    )
    assert runs[again["run"]]["outcome"] == "completed"
    assert [v["version"] for v in models["versions"]] == [1, 2]  # v2: the second run's

    assert again["rounds_aggregated"] == [1]
    assert again["fit_by_round"]["1"]["contributed"] == list(NAMES)
    assert sorted(again["per_site_by_round"]["1"]) == list(NAMES)

    _assert_nothing_corrupt(folder, sites)
    first_dir = ServerFolder(folder).root / "runs" / interrupted.group(1)
    for site in sites:
        _assert_ledger_matches(site, names, Path(again["run_dir"]))
        # Of the interrupted run, what reached the ServerApp (the keys) is in the ledger, as sent; the
        # shares in flight reached the SuperLink before it stopped, or are marked as not delivered
        # (the restarted SuperLink no longer knew their run).
        received = _received(first_dir, names)[site.root.name]
        ledgered, undelivered = _ledgered(site, _flower_run(first_dir))
        assert received and not received - ledgered and not undelivered - ledgered, site.root.name


def test_a_site_cut_off_during_and_between_rounds_reconnects_and_its_ledger_matches_what_arrived(
    tmp_path: Path, bert_bundle: Path, agent_harness: Any, enrolment: Any, byte_proxy: Any
) -> None:
    names = (*NAMES, "site-d")  # the privacy floor's 3 can go on without site-c
    folder, sites, bundle = _sites(tmp_path, bert_bundle, agent_harness, enrolment, names)
    config = TrainConfig(
        kit=folder.root, bundle=bundle, rounds=2, secagg_timeout_s=25.0, deliver=False, keep_received=True
    )
    site_c = sites[2]
    with SuperLink(ServerConfig(kit=folder.root)) as link, byte_proxy.ByteCountingProxy(link.port) as line:
        link.sync_sites()
        dials = {site_c.root: f"127.0.0.1:{line.port}"}  # site-c's line runs through the proxy
        nodes = [
            SuperNode(JoinConfig(data=site.root, superlink=dials.get(site.root))).start() for site in sites
        ]
        try:
            with ThreadPoolExecutor(1) as pool:
                running = pool.submit(train_federated, config)
                _cut_after(line, site_c, "secagg_public_keys", 1, running)  # during round 1
                _cut_after(line, site_c, "evaluation", 1, running)  # between rounds 1 and 2
                _wait_for_ledger(site_c, "secagg_public_keys", 2, running.done)  # back: it answers round 2
                line.cut()  # round 2: cut off until the run is over
                result = running.result()
            line.restore()
            named = node_names(link.server)
            run_dir = Path(result["run_dir"])
            _wait_until_settled(site_c, named, run_dir)
            assert all(node.running() for node in nodes)
        finally:
            for node in nodes:
                node.stop()

    # Round 1: site-c came back in time and took part, or the round went on without it and says so
    # (a short cut can fall just as the SuperLink takes its reply, whose content then never arrives).
    # Round 2 went on without it, and says so.
    fits = result["fit_by_round"]
    assert fits["1"]["aggregated"] and (fits["1"]["contributed"] == list(names) or _left_out(fits["1"]))
    assert fits["2"]["aggregated"] and _left_out(fits["2"]), fits["2"]
    assert "site-c" not in result["per_site_by_round"]["2"]
    assert line.counts.refused > 0 and line.counts.connections > 1  # it was cut off, and dialled again

    _assert_nothing_corrupt(folder, sites)
    for site in sites:
        _assert_ledger_matches(site, named, run_dir)


def _left_out(fit: dict[str, Any]) -> bool:
    """site-c is not among the round's contributors, and the round's report says it dropped or halted."""
    return "site-c" not in fit["contributed"] and ("site-c" in fit["dropped"] or bool(fit.get("halted")))


def _cut_after(line: Any, site: SiteFolder, kind: str, round_: int, running: Future[Any]) -> None:
    """Cut the site's line as soon as it ledgered ``kind`` in ``round_`` (its reply may be on the way)."""
    _wait_for_ledger(site, kind, round_, running.done)
    line.cut()
    time.sleep(SHORT_CUT_S)
    line.restore()


def _wait_for_ledger(site: SiteFolder, kind: str, round_: int, ended: Any, timeout: float = 600.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with SiteStore.read_only(site.store_file) as store:
            if any(e.fields["kind"] == kind and e.fields["round"] == round_ for e in store.egress(limit=100)):
                return
        if ended():
            raise AssertionError(f"the run ended before {site.root.name} sent {kind} in round {round_}")
        time.sleep(0.05)
    raise AssertionError(f"{site.root.name} sent no {kind} in round {round_} in time")


def _wait_until_settled(
    site: SiteFolder, names: dict[str, str], run_dir: Path, timeout: float = 120.0
) -> None:
    """A reply held back by the cut is sent once the line is back: accepted, or refused and marked."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ledgered, undelivered = _ledgered(site, _flower_run(run_dir))
        if ledgered - undelivered == _received(run_dir, names).get(site.root.name, Counter()):
            return
        time.sleep(1.0)
    _assert_ledger_matches(site, names, run_dir)


def _assert_ledger_matches(site: SiteFolder, names: dict[str, str], run_dir: Path) -> None:
    """Every reply of the run in the site's ledger reached the ServerApp or is marked as not delivered;
    every reply the ServerApp received from the site is in its ledger."""
    ledgered, undelivered = _ledgered(site, _flower_run(run_dir))
    received = _received(run_dir, names).get(site.root.name, Counter())
    assert not undelivered - ledgered, (site.root.name, "a mark for a reply the ledger lacks")
    assert ledgered - undelivered == received, (site.root.name, ledgered, undelivered, received)


def _ledgered(site: SiteFolder, run: str) -> tuple[Counter[str], Counter[str]]:
    """The run's replies in the site's ledger, and those marked as not delivered (content hashes)."""
    with SiteStore.read_only(site.store_file) as store:
        entries = [e.fields for e in store.egress(limit=10_000) if e.fields["details"].get("run") == run]
    sent = Counter(e["content_sha256"] for e in entries if e["kind"] != NOT_DELIVERED)
    marked = Counter(e["content_sha256"] for e in entries if e["kind"] == NOT_DELIVERED)
    return sent, marked


def _received(run_dir: Path, names: dict[str, str]) -> dict[str, Counter[str]]:
    """What the ServerApp received from each site (content hashes by the protocol's canonical form);
    Flower's own stand-in for a reply whose objects never came is no site's."""
    received: dict[str, Counter[str]] = {}
    path = run_dir / "results" / "received.jsonl"
    for line in path.read_text(encoding="utf-8").splitlines() if path.is_file() else []:
        reply = json.loads(line)
        if reply["node"] in names:
            received.setdefault(names[reply["node"]], Counter())[received_sha256(reply)] += 1
    return received


def _flower_run(run_dir: Path) -> str:
    """The Flower run id of a Genba run, as ``flwr run`` announced it."""
    found = re.search(
        r"Successfully started run (\d+)", (run_dir / "flwr-run.log").read_text(errors="replace")
    )
    assert found, run_dir
    return found.group(1)


def _dialling(port: int) -> list[str]:
    """Command lines of the processes that still reach for the SuperLink on this loopback port."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            command = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if f"127.0.0.1:{port}" in command and "flwr-serverapp" in command:
            found.append(command)
    return found


def _assert_nothing_corrupt(folder: Any, sites: list[SiteFolder]) -> None:
    with sqlite3.connect(ServerFolder(folder).root / "registry.sqlite") as registry:
        assert registry.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    for site in sites:
        with SiteStore.read_only(site.store_file) as store:
            assert store.integrity_check() == "ok"
            assert all(report.ok for report in store.verify_chains(full=True).values()), site.root.name
