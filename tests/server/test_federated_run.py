"""A federated run end to end: a real SuperLink (TLS, node auth), 3 real SuperNodes, SecAgg+, site stores."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edge_agent.agent import Agent
from edge_agent.answers import Item
from edge_agent.federation.supernode import JoinConfig, SuperNode
from edge_agent.site import SiteFolder
from edge_agent.site_init import init_site
from edge_agent.store import SiteStore
from genba.federation import FAB_DIR, genba_fab_hash
from genba.tools import free_loopback_port
from server.federated_run import TrainConfig, site_overview, train_federated
from server.provision import ProvisionConfig, provision
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
            agent.label(answer.input_id, label, actor="operator", split=split)


def test_three_sites_train_a_head_under_secagg_and_every_reply_is_in_their_ledgers(
    tmp_path: Path, bert_bundle: Path, agent_harness: Any
) -> None:
    names = ("site-a", "site-b", "site-c")
    folder = provision(
        ProvisionConfig(out=tmp_path / "it", server_host="127.0.0.1", sites=names, port=free_loopback_port())
    )
    bundle = agent_harness.reversion(bert_bundle, folder.signing_key, tmp_path / "global-v1", 1)
    mixes = (
        {"scratch": 8, "dent": 4, "ok": 4},
        {"scratch": 4, "dent": 8, "ok": 4},
        {"scratch": 4, "dent": 4, "ok": 8},
    )
    sites = []
    for name, mix in zip(names, mixes, strict=True):
        site = init_site(tmp_path / name, site_name=None, kit=folder.kits / name)
        agent_harness.write_settings(site, agent_harness.TEST_SETTINGS)
        _label_site(site, bundle, mix)
        sites.append(site)

    with SuperLink(ServerConfig(kit=folder.root)) as link:
        link.sync_sites()
        nodes = [SuperNode(JoinConfig(data=site.root)).start() for site in sites]
        try:
            joined = _federation(sites[0])
            assert joined["joined"] is True and joined["superlink"] == folder.superlink_address()
            assert joined["updates_sent"] == 0 and joined["last_update"] is None
            result = train_federated(TrainConfig(kit=folder.root, bundle=bundle, rounds=2, min_sites=3))
            ledger_sizes = [_ledger_size(site) for site in sites]
            rogue = _rogue_fab(tmp_path)
            refused = train_federated(
                TrainConfig(kit=folder.root, bundle=bundle, rounds=1, secagg_timeout_s=10.0, fab_dir=rogue)
            )
        finally:
            for node in nodes:
                node.stop()

    # App code the sites did not approve never ran there, and nothing left them for it.
    assert refused["rounds_aggregated"] == [] and refused["per_site_by_round"] == {}
    assert not (tmp_path / "rogue-ran").exists()
    for site, size in zip(sites, ledger_sizes, strict=True):
        assert _ledger_size(site) == size
        with SiteStore.read_only(site.store_file) as store:
            refusals = [e for e in store.audit(limit=1000) if e.fields["event"] == "federated_app_refused"]
        assert refusals and refusals[0].fields["details"]["fab_sha256"] != genba_fab_hash()

    for site in sites:  # what the agent's API reports: the ledger's own figures
        state = _federation(site)
        assert state["joined"] is False and state["updates_sent"] == 2
        assert state["last_update"]["round"] == 2 and state["last_update"]["masked"] is True
        assert state["bytes_sent_by_kind"]["masked_update"] > 0

    assert result["rounds_aggregated"] == [1, 2], json.dumps(result)[:2000]
    overview = site_overview(folder.root)  # `genba server sites`
    assert {
        name: entry["last_report"]["production_version"] for name, entry in overview.items()
    } == dict.fromkeys(names, 1)
    assert all(
        entry["state"] == "active" and entry["last_report"]["round"] == 2 for entry in overview.values()
    )
    assert all(fit["sites"] == 3 for fit in result["fit_by_round"].values())
    for round_ in ("1", "2"):
        per_site = result["per_site_by_round"][round_]
        assert sorted(per_site) == list(names)
        for figures in per_site.values():
            assert 0.0 <= figures["accuracy"] <= 1.0 and figures["production_version"] == 1
            assert figures["examples"] == 6  # each site's held-out labels
    with np.load(result["head"]) as final, np.load(Path(result["run_dir"]) / "initial-head.npz") as initial:
        assert final["weight"].shape == initial["weight"].shape
        assert not np.allclose(final["weight"], initial["weight"])

    for site in sites:
        with SiteStore.read_only(site.store_file) as store:
            entries = store.egress(limit=1000)
            report = store.verify_chain("egress")
        assert report.ok and report.entries == len(entries)
        kinds = {entry.fields["kind"] for entry in entries}
        assert kinds == SECAGG_KINDS
        assert all(entry.fields["payload_bytes"] > 0 for entry in entries)
        assert {entry.fields["round"] for entry in entries if entry.fields["kind"] == "masked_update"} == {
            1,
            2,
        }


def _federation(site: SiteFolder) -> dict[str, Any]:
    from edge_agent.federation.state import federation_state

    with SiteStore.read_only(site.store_file) as store:
        return federation_state(site, store)


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
    tmp_path: Path, bert_bundle: Path
) -> None:
    from genba.errors import SignatureError, UsageError

    folder = provision(ProvisionConfig(out=tmp_path / "it", server_host="127.0.0.1", sites=("a", "b", "c")))
    with pytest.raises(UsageError, match="--min-sites must be at least 3"):
        TrainConfig(kit=folder.root, bundle=bert_bundle, min_sites=2)
    with pytest.raises(UsageError, match="run 'genba server start --kit"):
        train_federated(TrainConfig(kit=folder.root, bundle=bert_bundle))
    (folder.it / "server" / "flwr-home").mkdir(parents=True)
    (folder.it / "server" / "flwr-home" / "config.toml").write_text("", encoding="utf-8")
    with pytest.raises(SignatureError):  # signed by another key than this kit's IT key
        train_federated(TrainConfig(kit=folder.root, bundle=bert_bundle))
    assert not (folder.it / "server" / "runs").exists()
