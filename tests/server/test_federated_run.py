"""A federated run end to end: a real SuperLink (TLS, node auth), 4 real SuperNodes, SecAgg+, site stores,
the global bundle, publish and rollback."""

from __future__ import annotations

import json
import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edge_agent.agent import Agent
from edge_agent.answers import Item
from edge_agent.federation.supernode import JoinConfig, SuperNode
from edge_agent.site import SiteFolder
from edge_agent.store import SiteStore
from genba.federation import FAB_DIR, genba_fab_hash
from genba.protocol import ERROR_APP_NOT_APPROVED
from genba.tools import free_loopback_port
from genba.versions import ModelVersion
from server.federated_run import TrainConfig, site_overview, train_federated
from server.publish import PublishConfig, list_models, publish
from server.superlink import ServerConfig, SuperLink

pytestmark = pytest.mark.timeout(900)

PHRASES = {"scratch": "scratch on the {}", "dent": "dent near the {}", "ok": "good {} part ok"}
PLACES = ("housing", "bracket", "rim", "flange", "gasket", "clip", "screw", "line")
SECAGG_KINDS = {
    "secagg_public_keys",
    "secagg_key_shares",
    "masked_update",
    "secagg_unmask_shares",
    "evaluation",
}


def _label_site(site: SiteFolder, bundle: Path, mix: dict[str, int]) -> None:
    with Agent.open(site) as agent:
        agent.install(bundle, actor="supervisor")
        rows = [
            (PHRASES[label].format(place), label, "train" if i < count - 2 else "holdout")
            for label, count in mix.items()
            for i, place in enumerate(PLACES[:count])
        ]
        answers = agent.predict([Item(kind="text", value=t, raw=t.encode()) for t, _, _ in rows])
        for answer, (_, label, split) in zip(answers, rows, strict=True):
            agent.store.add_label(answer.input_id, label, actor="operator", split=split)


def test_four_sites_train_under_secagg_one_leaves_mid_run_and_the_global_model_reaches_the_sites(
    tmp_path: Path, bert_bundle: Path, agent_harness: Any, enrolment: Any
) -> None:
    names = ("site-a", "site-b", "site-c", "site-d")
    folder, enrolled = enrolment.provision_with_sites(tmp_path, names, port=free_loopback_port())
    bundle = agent_harness.reversion(bert_bundle, folder.signing_key, tmp_path / "global-v1", 1)
    mixes = (  # non-IID: each site sees mostly one class
        {"scratch": 8, "dent": 4, "ok": 4},
        {"scratch": 4, "dent": 8, "ok": 4},
        {"scratch": 4, "dent": 4, "ok": 8},
        {"scratch": 6, "dent": 6, "ok": 4},
    )
    sites = []
    for name, mix in zip(names, mixes, strict=True):
        site = enrolled[name]
        agent_harness.write_settings(site, agent_harness.TEST_SETTINGS)
        _label_site(site, bundle, mix)
        sites.append(site)
    before = {name: _holdout_accuracy(site, bundle) for name, site in zip(names, sites, strict=True)}

    with SuperLink(ServerConfig(kit=folder.root)) as link:
        link.sync_sites()
        nodes = [SuperNode(JoinConfig(data=site.root)).start() for site in sites]
        try:
            joined = _federation(sites[0])
            assert joined["joined"] is True and joined["superlink"] == folder.superlink_address()
            assert joined["updates_sent"] == 0 and joined["last_update"] is None
            config = TrainConfig(
                kit=folder.root,
                bundle=bundle,
                rounds=3,
                min_sites=3,
                secagg_timeout_s=60.0,  # stages of 4 fresh processes per site on 2 busy cores
                delivery_wait_s=5.0,
            )
            with ThreadPoolExecutor(1) as pool:
                running = pool.submit(train_federated, config)
                # site-d leaves in the middle of round 2, after it sent its SecAgg+ public keys
                _wait_for_ledger(sites[3], "secagg_public_keys", 2, running)
                os.killpg(nodes[3].process.pid, signal.SIGKILL)  # site-d's PC goes down: all of it
                result = running.result()
            ledger_sizes = [_ledger_size(site) for site in sites]
            after_run = [_candidate(site) for site in sites[:3]]
            nodes[3] = SuperNode(JoinConfig(data=sites[3].root)).start()  # site-d comes back
            global_version = result["global_bundle"]["version"]
            published = publish(PublishConfig(kit=folder.root, version=global_version, wait_s=60.0))
            rolled_back = publish(PublishConfig(kit=folder.root, version=1, rollback=True, wait_s=60.0))
            rogue = _rogue_fab(tmp_path)
            refused = train_federated(
                TrainConfig(kit=folder.root, bundle=bundle, rounds=1, secagg_timeout_s=10.0, fab_dir=rogue)
            )
        finally:
            for node in nodes:
                node.stop()

    # The run completed without site-d from round 2 on, and says what happened to round 2. Usually it
    # is aggregated without site-d. On a busy machine a round can also end unaggregated: Flower's
    # SecAgg+ halts it if site-d died with its setup reply in flight, or too few sites' updates
    # arrived in time and the privacy floor held it back. Either way the report says so.
    fits = result["fit_by_round"]
    assert fits["1"]["contributed"] == list(names) and fits["1"]["dropped"] == []
    assert fits["3"]["aggregated"] and fits["3"]["sites"] >= 3 and "site-d" not in fits["3"]["contributed"]
    round_2 = fits["2"]
    assert "site-d" not in round_2["contributed"]
    if round_2["aggregated"]:
        assert "site-d" in round_2["dropped"] and round_2["sites"] >= 3
    else:
        assert round_2.get("halted") or (round_2["sites"] < 3 and "site-d" in round_2["dropped"]), round_2
    assert result["rounds_aggregated"] == [r for r in (1, 2, 3) if fits[str(r)]["aggregated"]]
    assert sorted(result["per_site_by_round"]["1"]) == list(names)
    assert sorted(result["per_site_by_round"]["3"]) == list(names[:3])
    for by_site in result["per_site_by_round"].values():
        for figures in by_site.values():
            assert 0.0 <= figures["accuracy"] <= 1.0 and figures["production_version"] == 1
            assert figures["examples"] == 6  # each site's held-out labels

    # Global accuracy on the sites' evaluation splits improves over the rounds.
    last = result["per_site_by_round"]["3"]
    initial = sum(before[name] for name in last) / len(last)
    final = sum(figures["accuracy"] for figures in last.values()) / len(last)
    assert final > initial, (before, last)
    # The reported global accuracy of a round is the example-weighted mean over the sites that evaluated
    # it (rounds 1 and 3 are evaluated by different sites, so they are not compared with each other).
    for number in ("1", "3"):
        by_site = result["per_site_by_round"][number]
        weighted = sum(f["accuracy"] * f["examples"] for f in by_site.values()) / sum(
            f["examples"] for f in by_site.values()
        )
        assert abs(result["accuracy_by_round"][number] - weighted) < 1e-4, (number, by_site)

    # The global bundle: a head swap of v1 signed by IT, in the registry, the candidate at a, b and c.
    assert global_version == 2
    assert {site: r["outcome"] for site, r in result["delivered"].items()} == {
        "site-a": "installed", "site-b": "installed", "site-c": "installed", "site-d": "not-reached",
    }  # fmt: skip
    assert all(r["files_sent"] == ["head.onnx"] for r in result["delivered"].values())
    for candidate in after_run:
        assert candidate["version"] == ModelVersion(2)
        assert candidate["lineage"]["federated_run"] == result["run"]
        assert candidate["lineage"]["source"]["kind"] == "federated"
    # publish: site-d, back, receives it; the others already hold it.
    assert {site: r["outcome"] for site, r in published["sites"].items()} == {
        "site-a": "already-installed", "site-b": "already-installed", "site-c": "already-installed",
        "site-d": "installed",
    }  # fmt: skip
    # rollback to v1: a new version 3, v1's files, marked as a rollback in its signed lineage.
    assert rolled_back["version"] == 3 and rolled_back["action"] == "rollback"
    assert {r["outcome"] for r in rolled_back["sites"].values()} == {"installed"}
    for site in sites:
        candidate = _candidate(site)
        assert candidate["version"] == ModelVersion(3) and candidate["lineage"]["rollback"] is True
        assert candidate["lineage"]["source"] == {"kind": "rollback", "to_version": 1}
    models = list_models(folder.root)  # `genba server models`
    assert [(v["version"], v["kind"], v["parent_version"]) for v in models["versions"]] == [
        (1, "export", None), (2, "federated", 1), (3, "rollback", 1),
    ]  # fmt: skip
    assert models["versions"][1]["deliveries"]["site-d"] == {"action": "publish", "outcome": "installed"}
    run = next(r for r in models["runs"] if r["run"] == result["run"])
    assert run["outcome"] == "completed" and run["version"] == 2
    assert run["rounds_by_number"][2]["dropped"] == fits["2"]["dropped"]
    assert run["rounds_by_number"][3]["evaluated_by"] == list(names[:3])

    # App code the sites did not approve never ran there; all that left them for it is the ledgered refusal.
    assert refused["rounds_aggregated"] == [] and refused["per_site_by_round"] == {}
    assert refused["global_bundle"] is None
    assert not (tmp_path / "rogue-ran").exists()
    for site, size in zip(sites, ledger_sizes, strict=True):
        entries = _ledger_entries(site)
        new_entries = entries[: len(entries) - size]  # newest first
        after = [entry.fields["kind"] for entry in new_entries]
        # A reply whose run ended before the SuperLink took it is marked not_delivered beside it: for
        # the rogue run only refusals, for the publish and rollback deliveries only their receipts.
        marks = [e.fields["details"] for e in new_entries if e.fields["kind"] == "not_delivered"]
        rogue = [m["kind"] for m in marks if m["run"] == str(refused["run"])]
        refused_replies = after.count("error")
        assert refused_replies > 0 and len(rogue) <= refused_replies and set(rogue) <= {"error"}
        assert {m["kind"] for m in marks if m["run"] != str(refused["run"])} <= {"bundle_receipt"}
        assert sorted(after, reverse=True) == (
            ["not_delivered"] * len(marks) + ["error"] * refused_replies + ["bundle_receipt"] * 2
        )
        with SiteStore.read_only(site.store_file) as store:
            refusals = [e for e in store.audit(limit=1000) if e.fields["event"] == "federated_app_refused"]
        assert refusals and refusals[0].fields["details"]["fab_sha256"] != genba_fab_hash()

    for site in sites:  # the agent's API reports the ledger's own figures
        updates = _ledger_kinds(site).count("masked_update")
        assert updates >= (1 if site is sites[3] else 2)
        state = _federation(site)
        assert state["joined"] is False and state["updates_sent"] == updates
        assert state["last_update"]["masked"] is True
        assert state["bytes_sent_by_kind"]["masked_update"] > 0

    overview = site_overview(folder.root)  # `genba server sites`
    assert {
        name: entry["last_report"]["production_version"] for name, entry in overview.items()
    } == dict.fromkeys(names, 1)
    assert overview["site-a"]["last_report"]["round"] == 3 and overview["site-d"]["last_report"]["round"] == 1
    with (
        np.load(result["head"]) as final_head,
        np.load(Path(result["run_dir"]) / "initial-head.npz") as first,
    ):
        assert final_head["weight"].shape == first["weight"].shape
        assert not np.allclose(final_head["weight"], first["weight"])
        checkpoints = Path(result["run_dir"]) / "results" / "checkpoints"
        assert sorted(p.name for p in checkpoints.iterdir()) == [
            f"round-{r}.npz" for r in result["rounds_aggregated"]
        ]
        with np.load(checkpoints / "round-3.npz") as last_round:
            assert np.array_equal(last_round["weight"], final_head["weight"])

    for site in sites:
        with SiteStore.read_only(site.store_file) as store:
            entries = store.egress(limit=1000)
            report = store.verify_chain("egress")
        assert report.ok and report.entries == len(entries)
        assert {entry.fields["kind"] for entry in entries} == SECAGG_KINDS | {"bundle_receipt", "error"}
        refused_codes = {e.fields["details"]["code"] for e in entries if e.fields["kind"] == "error"}
        assert refused_codes == {ERROR_APP_NOT_APPROVED}  # the rogue app's messages, refused
        assert all(entry.fields["payload_bytes"] > 0 for entry in entries)


def _wait_for_ledger(site: SiteFolder, kind: str, round_: int, running: Any, timeout: float = 600.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with SiteStore.read_only(site.store_file) as store:
            if any(
                e.fields["kind"] == kind and e.fields["round"] == round_ for e in store.egress(limit=1000)
            ):
                return
        if running.done():
            running.result()
            raise AssertionError(f"the run ended before {site.root.name} sent {kind} in round {round_}")
        time.sleep(0.2)
    raise AssertionError(f"{site.root.name} sent no {kind} in round {round_} in time")


def _holdout_accuracy(site: SiteFolder, bundle: Path) -> float:
    """The starting head's accuracy on the site's held-out labels, computed at the site."""
    from edge_agent.federation.site_trainer import SiteTrainer
    from export.head_swap import read_head
    from genba.bundle import verify_directory

    head = read_head(verify_directory(bundle, None))
    _, accuracy, _ = SiteTrainer.open(site.root, embed_training=False).evaluate([head.weight, head.bias])
    return accuracy


def _candidate(site: SiteFolder) -> dict[str, Any]:
    with SiteStore.read_only(site.store_file) as store:
        slots = store.slots()
        assert slots.candidate is not None
        row = next(r for r in store.list_models() if r.id == slots.candidate.model_id)
    return {"version": row.version, "lineage": row.lineage}


def _federation(site: SiteFolder) -> dict[str, Any]:
    from edge_agent.federation.state import federation_state

    with SiteStore.read_only(site.store_file) as store:
        return federation_state(site, store)


def _ledger_kinds(site: SiteFolder) -> list[str]:
    with SiteStore.read_only(site.store_file) as store:
        return [entry.fields["kind"] for entry in store.egress(limit=100_000)]


def _ledger_entries(site: SiteFolder) -> list[Any]:
    with SiteStore.read_only(site.store_file) as store:
        return list(store.egress(limit=100_000))


def _ledger_size(site: SiteFolder) -> int:
    with SiteStore.read_only(site.store_file) as store:
        return len(store.egress(limit=100_000))


def _rogue_fab(tmp_path: Path) -> Path:
    """Genba's FAB with a ClientApp module that would leave a mark if any site ran it."""
    import shutil

    rogue = Path(shutil.copytree(FAB_DIR, tmp_path / "rogue-fab"))
    client = rogue / "genba_federation" / "client.py"
    marker = tmp_path / "rogue-ran"
    client.write_text(
        f"from pathlib import Path\nPath({str(marker)!r}).write_text('ran')\n" + client.read_text()
    )
    return rogue


def test_a_run_is_refused_below_the_privacy_floor_without_a_superlink_or_with_a_bundle_it_did_not_sign(
    tmp_path: Path, bert_bundle: Path, enrolment: Any
) -> None:
    from genba.errors import SignatureError, UsageError

    folder, _ = enrolment.provision_with_sites(tmp_path, ("a", "b", "c"))
    with pytest.raises(UsageError, match="--min-sites must be at least 3"):
        TrainConfig(kit=folder.root, bundle=bert_bundle, min_sites=2)
    with pytest.raises(UsageError, match="run 'genba server start --kit"):
        train_federated(TrainConfig(kit=folder.root, bundle=bert_bundle))
    (folder.it / "server" / "flwr-home").mkdir(parents=True)
    (folder.it / "server" / "flwr-home" / "config.toml").write_text("", encoding="utf-8")
    with pytest.raises(SignatureError):  # signed by another key than this kit's IT key
        train_federated(TrainConfig(kit=folder.root, bundle=bert_bundle))
    assert not (folder.it / "server" / "runs").exists()


def test_publish_rollback_and_train_without_a_model_say_what_to_do(tmp_path: Path, enrolment: Any) -> None:
    import subprocess
    import sys

    folder, _ = enrolment.provision_with_sites(tmp_path, ("a", "b", "c"))

    def genba(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "genba", *args], capture_output=True, text=True, timeout=120
        )

    refused = genba("server", "publish", "2", "--kit", str(folder.root))
    assert refused.returncode == 2 and "genba server start --kit" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1
    (folder.it / "server" / "flwr-home").mkdir(parents=True)
    (folder.it / "server" / "flwr-home" / "config.toml").write_text("", encoding="utf-8")
    for args, message in (
        (("server", "publish", "2"), "registry holds no model yet"),
        (("server", "rollback", "1"), "registry holds no model yet"),
        (("server", "train"), "registry holds no model yet"),
        (("server", "train", "--dp-noise", "0"), "--dp-noise must be greater than 0"),
    ):
        done = genba(*args, "--kit", str(folder.root))
        assert done.returncode == 2 and message in done.stderr, (args, done.stderr)
    models = genba("server", "models", "--kit", str(folder.root))
    assert models.returncode == 0 and json.loads(models.stdout) == {"versions": [], "runs": []}
