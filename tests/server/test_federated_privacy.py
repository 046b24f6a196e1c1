"""What IT can learn from a federated run, and what really leaves a site.

Three real SuperNodes reach a real SuperLink (TLS, node auth) through byte-counting loopback
proxies; a fourth site serves another model and refuses the run. The ServerApp keeps every
reply it receives (``keep_received``), so the test attacks exactly what the server holds.
"""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edge_agent.agent import Agent
from edge_agent.answers import Item
from edge_agent.federation.site_trainer import SiteTrainer
from edge_agent.federation.state import federation_state
from edge_agent.federation.supernode import JoinConfig, SuperNode
from edge_agent.federation.traffic_report import control_traffic
from edge_agent.site import SiteFolder
from edge_agent.store import SiteStore
from export.head_swap import read_head
from genba.bundle import verify_directory
from genba.masking import MASKED_RECORD
from genba.protocol import ERROR_REASONS, ERROR_ROUND_REFUSED
from genba.tools import free_loopback_port
from server.federated_run import TrainConfig, train_federated
from server.privacy import PrivacyConfig, epsilon
from server.publish import list_models
from server.runs import node_names
from server.strategy import received_sha256
from server.superlink import ServerConfig, SuperLink

pytestmark = pytest.mark.timeout(900)

TEMPLATES = {  # each report carries a token found nowhere else (a lot number)
    "scratch": "scratch on housing lot {}",
    "dent": "dent near bracket of lot {}",
    "ok": "good part from lot {} ok",
}
NOISE, CLIP = 1.0, 0.1
#: SecAgg+'s quantisation step with Flower's defaults (clipping range 8, 2**22 levels), per site.
QUANTISATION = 16 / 2**22
#: What a proxy may count beyond the ledger's payloads and the control traffic the site reports,
#: as a share of the ledgered payload bytes.
UNEXPLAINED_SHARE = 0.05


def _texts(site: str, label: str, count: int) -> list[str]:
    return [TEMPLATES[label].format(_lot(site, label, i)) for i in range(count)]


def _lot(site: str, label: str, index: int) -> str:
    return f"qz{site[-1]}{label[:2]}{index:03d}vk"


def _label(site: SiteFolder, bundle: Path, mix: dict[str, int]) -> list[str]:
    texts = []
    with Agent.open(site) as agent:
        agent.install(bundle, actor="supervisor")
        for label, count in mix.items():
            batch = _texts(site.root.name, label, count)
            answers = agent.predict([Item(kind="text", value=t, raw=t.encode()) for t in batch])
            for i, answer in enumerate(answers):
                agent.store.add_label(
                    answer.input_id, label, actor="operator", split="holdout" if i >= count - 2 else "train"
                )
            texts += batch
    return texts


def test_the_server_learns_only_the_sum_no_text_leaves_and_every_byte_is_accounted_for(
    tmp_path: Path, bert_bundle: Path, tiny_bert: Path, agent_harness: Any, byte_proxy: Any, enrolment: Any
) -> None:
    from export import ExportConfig, export_model

    names = ("site-a", "site-b", "site-c", "site-d")
    folder, enrolled = enrolment.provision_with_sites(tmp_path, names, port=free_loopback_port())
    v1 = agent_harness.reversion(bert_bundle, folder.signing_key, tmp_path / "v1", 1)
    other = export_model(  # site-d serves another model: the same network quantised, v5
        ExportConfig(model_dir=tiny_bert, task="text-classification", out=tmp_path / "int8", precision="int8")
    ).bundle
    v5 = agent_harness.reversion(other, folder.signing_key, tmp_path / "v5", 5)
    mixes = (
        {"scratch": 8, "dent": 4, "ok": 4},
        {"scratch": 4, "dent": 8, "ok": 4},
        {"scratch": 4, "dent": 4, "ok": 8},
    )
    sites, texts = [], []
    for name, mix, bundle in zip(names, [*mixes, mixes[0]], (v1, v1, v1, v5), strict=True):
        site = enrolled[name]
        agent_harness.write_settings(site, agent_harness.TEST_SETTINGS)
        texts += _label(site, bundle, mix)
        sites.append(site)
    initial = read_head(verify_directory(v1, None))
    # Each site's plaintext update in round 1, computed at the site: what the server must not see.
    plaintext = {
        site.root.name: (trainer.fit([initial.weight, initial.bias]), trainer.train_examples)
        for site in sites[:3]
        for trainer in [SiteTrainer.open(site.root)]
    }

    with SuperLink(ServerConfig(kit=folder.root)) as link:
        link.sync_sites()
        proxies = [byte_proxy.ByteCountingProxy(link.port).__enter__() for _ in sites[:3]]
        nodes = [
            SuperNode(JoinConfig(data=site.root, superlink=f"127.0.0.1:{proxy.port}")).start()
            for site, proxy in zip(sites[:3], proxies, strict=True)
        ]
        nodes.append(SuperNode(JoinConfig(data=sites[3].root)).start())
        connected = time.monotonic()
        try:
            result = train_federated(
                TrainConfig(kit=folder.root, bundle=v1, rounds=1, secagg_timeout_s=60.0, keep_received=True,
                            deliver=False)
            )  # fmt: skip
            private = train_federated(
                TrainConfig(kit=folder.root, bundle=v1, rounds=1, secagg_timeout_s=60.0, deliver=False,
                            privacy=PrivacyConfig(noise_multiplier=NOISE, clipping_norm=CLIP))
            )  # fmt: skip
        finally:
            for node in nodes:
                node.stop()
            minutes = (time.monotonic() - connected) / 60
            for proxy in proxies:
                proxy.__exit__()

    # site-d serves another backbone: it refused the round, the others carried on.
    assert result["rounds_aggregated"] == [1]
    assert result["fit_by_round"]["1"]["contributed"] == ["site-a", "site-b", "site-c"]
    assert (
        result["fit_by_round"]["1"]["dropped"] == ["site-d"] and result["fit_by_round"]["1"]["failures"] >= 1
    )
    assert "site-d" not in result["per_site_by_round"]["1"]
    with SiteStore.read_only(sites[3].store_file) as store:  # keys for SecAgg+ setup, then refusals
        sent = store.egress(limit=100)
        assert {e.fields["kind"] for e in sent} <= {"secagg_public_keys", "secagg_key_shares", "error"}
        assert {e.fields["details"]["code"] for e in sent if e.fields["kind"] == "error"} == {
            ERROR_ROUND_REFUSED
        }
        refusals = [
            e.fields["details"]
            for e in store.audit(limit=100)
            if e.fields["event"] == "federated_round_refused"
        ]
    assert {r["step"] for r in refusals} == {"fit", "evaluate"}
    assert all(
        "serves tiny-bert v5, whose backbone is not the one this run trains" in r["reason"] for r in refusals
    )

    # The aggregate is the example-weighted mean of the plaintext updates, within quantisation.
    total = sum(count for _, count in plaintext.values())
    expected_w = sum(head.weight * count for head, count in plaintext.values()) / total
    with np.load(result["head"]) as final:
        assert np.max(np.abs(final["weight"] - expected_w)) < 3 * QUANTISATION * 1000
        assert np.max(np.abs(final["weight"] - expected_w)) < 1e-3

    # With DP: each site's update clipped at the site, every site weighted the same, Gaussian
    # noise of std z*C/min_sites on the average, and the run's epsilon where IT and the sites see it.
    assert private["rounds_aggregated"] == [1]  # site-d's refusal does not void a DP round
    clipped = [_clip(head, initial, CLIP) for head, _ in plaintext.values()]
    expected = initial.weight + sum(clipped) / len(clipped)
    with np.load(private["head"]) as noisy:
        residual = (noisy["weight"] - expected).ravel()
    assert 0.75 < residual.std() / (NOISE * CLIP / 3) < 1.3 and abs(residual.mean()) < NOISE * CLIP / 3
    spent = epsilon(NOISE, 1, 1e-5)
    settings = {"noise_multiplier": NOISE, "clipping_norm": CLIP, "delta": 1e-5}
    assert private["privacy"] == {**settings, "rounds": 1, "epsilon": spent}
    assert (
        next(r for r in list_models(folder.root)["runs"] if r["run"] == private["run"])["privacy"]["epsilon"]
        == spent
    )
    for site in sites[:3]:
        with SiteStore.read_only(site.store_file) as store:
            state = federation_state(site, store)
        assert state["differential_privacy"] == {**settings, "epsilon": spent}

    # What the server received from each site is masked: nothing of the site's update in it.
    received = [json.loads(line) for line in (Path(result["run_dir"]) / "results" / "received.jsonl").open()]
    masked = _masked_vectors(received, link_nodes=result)
    assert len(masked) == 3
    for head, _ in plaintext.values():
        truth = head.weight.ravel()
        # Masked values are uniform, so their correlation with any fixed vector is about N(0, 1/n):
        # the bound is 6 standard deviations (a false alarm about once in 5e8 comparisons) ...
        bound = 6 / np.sqrt(truth.size)
        # ... and the attack has the power to cross it: the same reading of an unmasked upload does.
        unmasked = _naive_dequantise(_quantise(truth))
        assert bound < 0.7 < np.corrcoef(unmasked, truth)[0, 1]
        for vector in masked:
            decoded = _naive_dequantise(vector)
            assert abs(np.corrcoef(decoded[: truth.size], truth)[0, 1]) < bound
            assert np.max(np.abs(decoded[: truth.size] - truth)) > 1.0

    # No text of any site appears in anything the server received or stores.
    server_bytes = b"".join(p.read_bytes() for p in folder.it.rglob("*") if p.is_file())
    for text in texts:
        assert text.encode() not in server_bytes
        lot = text.split("lot ")[1].split()[0]
        assert lot.startswith("qz") and lot.encode() not in server_bytes

    # Every reply the server received is in its site's ledger, with the hash of exactly what arrived.
    names = node_names(link.server)
    ledgered = {}
    for site in sites:
        with SiteStore.read_only(site.store_file) as store:
            ledgered[site.root.name] = [e.fields["content_sha256"] for e in store.egress(limit=1000)]
    for reply in received:
        assert received_sha256(reply) in ledgered[names[reply["node"]]], reply["node"]
    # site-d's refusals reached the server as a code and its fixed reason: no word of why.
    refused = [r for r in received if names[r["node"]] == "site-d" and r["error"]]
    assert refused and {r["error_reply"]["code"] for r in refused} == {ERROR_ROUND_REFUSED}
    assert {r["error_reply"]["reason"] for r in refused} == {ERROR_REASONS[ERROR_ROUND_REFUSED]}

    # Every byte a SuperNode sent is the ledger's payloads plus the control traffic its site reports
    # (what its SuperNode counted per round, less the ledger's payload for the round).
    report = {}
    for site, proxy in zip(sites[:3], proxies, strict=True):
        with SiteStore.read_only(site.store_file) as store:
            payload = sum(e.fields["payload_bytes"] for e in store.egress(limit=1000))
            traffic = control_traffic(site.root, store.egress_payload, last=1000)
        assert traffic is not None
        control = sum(entry["control"] for entry in traffic["rounds"])
        unexplained = proxy.counts.upstream - payload - control
        report[site.root.name] = {"upstream": proxy.counts.upstream, "payload": payload, "control": control,
                                  "unexplained": unexplained}  # fmt: skip
        assert payload > 0 and control > 0
        assert abs(unexplained) < UNEXPLAINED_SHARE * payload, report
    print(json.dumps({"control_traffic": report, "minutes": round(minutes, 2)}))


def _clip(head: Any, initial: Any, norm: float) -> np.ndarray:
    """The site's weight update after Flower's clipping (one L2 norm over all its tensors)."""
    update = [head.weight - initial.weight, head.bias - initial.bias]
    total = float(np.sqrt(sum(float(np.sum(u.astype(np.float64) ** 2)) for u in update)))
    return update[0] * min(1.0, norm / total)


def _masked_vectors(received: list[dict[str, Any]], link_nodes: dict[str, Any]) -> list[np.ndarray]:
    from flwr.common import bytes_to_ndarray

    vectors = []
    for reply in received:
        masked = reply["content"].get(MASKED_RECORD)  # uint32 arrays "0", "1", ... as the site sent them
        if masked is not None:
            blobs = [base64.b64decode(masked[key]["b64"]) for key in sorted(masked, key=int)]
            arrays = [bytes_to_ndarray(blob) for blob in blobs]
            vectors.append(np.concatenate([a.ravel() for a in arrays[1:]]))  # [0] carries the weight factor
    return vectors


def _quantise(values: np.ndarray) -> np.ndarray:
    """What a site would upload without its masks: Flower's SecAgg+ quantisation of its values."""
    from flwr.common.secure_aggregation.quantization import quantize

    return quantize([values.astype(np.float64)], clipping_range=8.0, target_range=2**22)[0]


def _naive_dequantise(vector: np.ndarray) -> np.ndarray:
    """The server's best guess without the masks: read the masked integers as if unmasked."""
    return vector.astype(np.float64) / 2**22 * 16 - 8
