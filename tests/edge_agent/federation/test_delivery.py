"""A bundle delivered by the federation: reassembled, verified against IT's key, installed or refused."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from edge_agent.agent import Agent
from edge_agent.federation.delivery import receive_bundle
from edge_agent.site import SiteFolder
from edge_agent.store import SiteStore
from genba.bundle import verify_directory
from genba.protocol import RECEIPT_OUTCOMES, check_outgoing


@pytest.fixture
def kit(tmp_path: Path, enrolment: Any) -> Any:
    return enrolment.provision_with_sites(tmp_path, ["site-a"])[0]


@pytest.fixture
def site(tmp_path: Path, kit: Any, bert_bundle: Path, agent_harness: Any) -> SiteFolder:
    folder = SiteFolder(tmp_path / "site-a")  # enrolled and initialised from its kit by the kit fixture
    agent_harness.write_settings(folder, agent_harness.TEST_SETTINGS)
    v1 = agent_harness.reversion(bert_bundle, kit.signing_key, tmp_path / "v1", 1)
    with Agent.open(folder, serving=False) as agent:
        agent.install(v1, actor="supervisor")
    return folder


def offer(bundle: Path, send: list[str] | None = None) -> dict[str, dict[str, Any]]:
    """What the ServerApp sends: manifest, signature and (by default) only the head graph."""
    names = ["head.onnx"] if send is None else send
    content: dict[str, dict[str, Any]] = {
        "bundle": {
            "manifest": (bundle / "manifest.json").read_bytes(),
            "signature": (bundle / "manifest.sig").read_bytes(),
        }
    }
    if names:
        content["files"] = {"names": names, "contents": [(bundle / n).read_bytes() for n in names]}
    return content


def outcome(receipt: dict[str, Any]) -> str:
    assert check_outgoing({"bundle_receipt": receipt}) == "bundle_receipt"  # a receipt may leave
    return RECEIPT_OUTCOMES[receipt["outcome"]]


def global_head_swap(tmp_path: Path, kit: Any, version: int, bias: float, **lineage: Any) -> Path:
    """A head swap of the site's v1, signed by IT (what `genba server train` writes)."""
    from export.graphs import HeadWeights
    from export.head_swap import read_head, write_head_swap
    from genba import keys

    parent = verify_directory(tmp_path / "v1", None)
    head = read_head(parent)
    out = tmp_path / f"global-v{version}"
    write_head_swap(
        parent,
        HeadWeights(head.weight, head.bias + bias),
        out,
        keys.load_private_key(kit.signing_key),
        source={"kind": "federated", "run": "r1", "rounds": [1], "sites": ["site-a"]},
        report_key="federated_training",
        report={},
        version=version,
        lineage_fields=lineage,
    )
    return out


def candidate_version(site: SiteFolder) -> int | None:
    with SiteStore.read_only(site.store_file) as store:
        slots = store.slots()
        if slots.candidate is None:
            return None
        return next(r.version.release for r in store.list_models() if r.id == slots.candidate.model_id)


def events(site: SiteFolder) -> list[dict[str, Any]]:
    with SiteStore.read_only(site.store_file) as store:
        return [
            e.fields["details"]
            for e in store.audit(limit=100)
            if e.fields["event"] == "federated_bundle_received"
        ]


def test_a_global_head_swap_arrives_as_the_head_alone_and_becomes_the_candidate(
    tmp_path: Path, kit: Any, site: SiteFolder
) -> None:
    bundle = global_head_swap(tmp_path, kit, 2, 0.5)
    assert outcome(receive_bundle(site.root, offer(bundle))) == "installed"
    assert candidate_version(site) == 2
    assert outcome(receive_bundle(site.root, offer(bundle))) == "already-installed"
    assert not any((site.root / "federation" / "incoming").iterdir())  # nothing staged is left
    assert [e["outcome"] for e in events(site)] == ["already-installed", "installed"]


@pytest.mark.parametrize(
    "spoil, expected, reason",
    [
        ("foreign signature", "refused", "signature"),
        ("tampered head", "refused", "does not match its hash"),
        ("unlisted file", "refused", "does not list"),
        ("backbone not held", "missing-files", "ship the full bundle"),
        ("older, not a rollback", "refused", "older"),
        ("no manifest", "refused", "malformed"),
    ],
)
def test_a_bad_delivery_is_refused_with_its_reason_kept_at_the_site_and_nothing_installed(
    tmp_path: Path, kit: Any, site: SiteFolder, other_keypair: tuple[Path, Path], spoil: str, expected: str,
    reason: str,
) -> None:  # fmt: skip
    bundle = global_head_swap(tmp_path, kit, 2, 0.5)
    content = offer(bundle)
    if spoil == "foreign signature":
        from genba import keys

        content["bundle"]["signature"] = keys.sign(
            keys.load_private_key(other_keypair[0]), content["bundle"]["manifest"]
        )
    elif spoil == "tampered head":
        content["files"]["contents"][0] = content["files"]["contents"][0][:-1] + b"\0"
    elif spoil == "unlisted file":
        content["files"] = {
            "names": ["head.onnx", "extra.bin"],
            "contents": [content["files"]["contents"][0], b"x"],
        }
    elif spoil == "backbone not held":
        for installed in (site.models_dir).glob("*/backbone.onnx"):
            installed.write_bytes(b"not the backbone")  # the site's copy no longer matches
    elif spoil == "older, not a rollback":
        with Agent.open(site, serving=False) as agent:  # production moves on to v3
            agent.install(global_head_swap(tmp_path, kit, 3, 0.25), actor="supervisor")
            agent.promote(actor="supervisor", to_stage="production")
    elif spoil == "no manifest":
        del content["bundle"]["manifest"]
    before = candidate_version(site)
    assert outcome(receive_bundle(site.root, content)) == expected
    assert candidate_version(site) == before
    assert reason in events(site)[0]["reason"]
    assert not any((site.root / "federation" / "incoming").glob("*"))


def test_a_rollback_marked_in_the_signed_lineage_is_accepted_although_older(
    tmp_path: Path, kit: Any, site: SiteFolder
) -> None:
    with Agent.open(site, serving=False) as agent:
        agent.install(global_head_swap(tmp_path, kit, 3, 0.25), actor="supervisor")
        agent.promote(actor="supervisor", to_stage="production")
    rollback = global_head_swap(tmp_path, kit, 2, 0.0, rollback=True)
    assert outcome(receive_bundle(site.root, offer(rollback))) == "installed"
    assert candidate_version(site) == 2
