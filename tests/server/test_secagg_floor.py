"""The privacy floor where it counts: before anything is unmasked, at the server and at every site.

Flower's SecAgg+ unmasks a sum as soon as ``threshold`` (here 2) shares of each secret arrive, so
a server that knows one site of a 2-site sum reads the other's update. Genba's ServerApp halts
such a round before unmasking, and each site's ClientApp refuses to take part in, or reveal
shares for, a round below the floor (``edge_agent.federation.floor``).

The federation: a real SuperLink (behind its front, TLS, node auth) and 4 real SuperNodes. Sites
a and b have labels; c and d have the model but no labels, so they share their SecAgg+ keys and
then refuse to train: every round has 4 sampled sites and 2 masked updates. Site b is a sybil: a
site IT registered and controls, whose SecAgg+ secrets the adversary holds. Three runs:

1. Genba's own app: the ServerApp halts after the masked updates, before asking for any share.
2. A curious server (Genba's ServerApp less its floor check, in a test FAB the sites approved)
   asks a and b to unmask with 2 of 4 sites alive; they refuse and audit it. The attack below,
   with everything the server received and everything the sybil knows, cannot read a's update.
3. The same curious server, the sites running the floorless test build of the ClientApp
   (tests/server/floorless_app.py): the same attack code reads a's update, so the test can fail.
"""

from __future__ import annotations

import base64
import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from flwr.app import ConfigRecord, Context, Message, Metadata, RecordDict
from flwr.common.secure_aggregation.secaggplus_constants import (
    RECORD_KEY_CONFIGS,
    RECORD_KEY_STATE,
    Key,
)

from edge_agent.federation.floor import PRIVACY_FLOOR, BelowPrivacyFloorError, privacy_floor_mod
from edge_agent.site import SiteFolder
from edge_agent.store import SiteStore
from genba.masking import MASKED_RECORD

HERE = Path(__file__).parent
SITE, OTHERS = 11, (12, 13, 14)


# --- The mod on crafted stage messages --------------------------------------------------------


def _message(content: RecordDict, message_type: str = "train") -> Message:
    """A message as a SuperNode hands it to the ClientApp (from the server, to this site, round 7)."""
    metadata = Metadata(run_id=1, message_id="m1", src_node_id=1, dst_node_id=SITE, reply_to_message_id="",
                        group_id="7", created_at=0.0, ttl=600.0, message_type=message_type)  # fmt: skip
    return Message(content, metadata=metadata)


def _stage(stage: str, fields: dict[str, Any], message_type: str = "train") -> Message:
    return _message(
        RecordDict({RECORD_KEY_CONFIGS: ConfigRecord({Key.STAGE: stage, **fields})}), message_type
    )


def _context(data: Path, holders: tuple[int, ...] = (SITE, *OTHERS)) -> Context:
    """A site's context after it exchanged key shares with ``holders``, with configs that would lower
    the floor if anything read them."""
    state = ConfigRecord(
        {"rd_seed_share_dict:K": list(holders), "rd_seed_share_dict:V": [b"s" * 20] * len(holders)}
    )
    lower = {"privacy-floor": 1, "min-sites": 2}
    return Context(
        run_id=1,
        node_id=SITE,
        node_config={"data": str(data), **lower},
        state=RecordDict({RECORD_KEY_STATE: state}),
        run_config=lower,
    )


def _refusals(data: Path) -> list[dict[str, Any]]:
    if not SiteFolder(data).store_file.exists():
        return []
    with SiteStore.read_only(SiteFolder(data).store_file) as store:
        entries = store.audit(limit=100)
    return [e.fields["details"] for e in entries if e.fields["event"] == "federated_round_refused"]


SETUP = {Key.SAMPLE_NUMBER: 3, Key.SHARE_NUMBER: 3, Key.THRESHOLD: 2, Key.CLIPPING_RANGE: 8.0,
         Key.TARGET_RANGE: 2**22, Key.MOD_RANGE: 2**32, Key.MAX_WEIGHT: 1000.0}  # fmt: skip
KEYS = [b"k" * 8, b"q" * 8]
BELOW = [
    ("setup", {**SETUP, Key.SAMPLE_NUMBER: 2}, "round of 2 sampled sites"),
    ("setup", {**SETUP, Key.SHARE_NUMBER: 2}, "sharing secrets 2 ways"),
    ("setup", {**SETUP, Key.SAMPLE_NUMBER: 4, Key.SHARE_NUMBER: 4, Key.THRESHOLD: 1}, "threshold is 1"),
    ("share_keys", {str(node): KEYS for node in (SITE, 12)}, "keys among 2 sites"),
    ("collect_masked_vectors", {Key.CIPHERTEXT_LIST: [b"c"], Key.SOURCE_LIST: [12]}, "only 2 sites"),
    ("collect_masked_vectors", {Key.CIPHERTEXT_LIST: [b"c"] * 3, Key.SOURCE_LIST: [12, 12, SITE]},
     "only 2 sites"),
    ("unmask", {Key.ACTIVE_NODE_ID_LIST: [SITE, 12], Key.DEAD_NODE_ID_LIST: [13, 14]}, "says 2 sites sent"),
    # the same site twice and a site this one never exchanged shares with count once and not at all
    ("unmask", {Key.ACTIVE_NODE_ID_LIST: [SITE, 12, 12, 99], Key.DEAD_NODE_ID_LIST: []}, "says 2 sites sent"),
    ("unmask", {Key.ACTIVE_NODE_ID_LIST: [SITE, 12, 13], Key.DEAD_NODE_ID_LIST: [13]},
     "both alive and dropped"),
]  # fmt: skip
AT_THE_FLOOR = [
    ("setup", SETUP),
    ("share_keys", {str(node): KEYS for node in (SITE, 12, 13)}),
    ("collect_masked_vectors", {Key.CIPHERTEXT_LIST: [b"c"] * 2, Key.SOURCE_LIST: [12, 13]}),
    ("unmask", {Key.ACTIVE_NODE_ID_LIST: [SITE, 12, 13], Key.DEAD_NODE_ID_LIST: [14]}),
]


@pytest.mark.parametrize(("stage", "fields", "says"), BELOW)
def test_a_site_refuses_a_secagg_stage_below_the_floor_whatever_the_configs_say_and_audits_it(
    tmp_path: Path, stage: str, fields: dict[str, Any], says: str
) -> None:
    passed: list[Message] = []
    with pytest.raises(BelowPrivacyFloorError, match=says) as refused:
        privacy_floor_mod(_stage(stage, fields), _context(tmp_path), lambda m, c: passed.append(m))
    assert not passed  # Flower's secaggplus_mod never saw it: no key, share or update was made
    assert f"privacy floor of {PRIVACY_FLOOR}" in str(refused.value) or "both alive" in str(refused.value)
    assert "\n" not in str(refused.value)
    assert _refusals(tmp_path) == [
        {"step": f"secagg_{stage}", "reason": str(refused.value), "round": "7", "floor": PRIVACY_FLOOR}
    ]


@pytest.mark.parametrize(("stage", "fields"), AT_THE_FLOOR)
def test_a_secagg_stage_at_the_floor_and_every_other_message_pass_through_untouched(
    tmp_path: Path, stage: str, fields: dict[str, Any]
) -> None:
    passed: list[Message] = []
    others = [
        _stage(stage, fields, message_type="evaluate"),
        _message(RecordDict()),  # a training message outside SecAgg+: refused further in
        _message(RecordDict({"bundle": ConfigRecord({"manifest": b"{}"})}), message_type="query.bundle"),
    ]
    for message in (_stage(stage, fields), *others):
        assert privacy_floor_mod(message, _context(tmp_path), lambda m, c: passed.append(m) or m) is message
    assert len(passed) == 4 and not _refusals(tmp_path)


def test_the_installed_clientapp_refuses_below_the_floor_sends_no_key_and_the_floor_mod_wraps_secagg(
    tmp_path: Path,
) -> None:
    from edge_agent.federation import client_app as installed
    from genba.protocol import ERROR_ROUND_REFUSED

    floorless = _load("floorless_app.py", "genba_tests_floorless_app")
    mods = installed.app._mods
    assert mods.index(privacy_floor_mod) + 1 == mods.index(installed.secure_aggregation_mod)
    assert [mod for mod in mods if mod is not privacy_floor_mod] == floorless.MODS

    refused = installed.app(_stage("setup", {**SETUP, Key.SAMPLE_NUMBER: 2}), _context(tmp_path))
    assert refused.has_error() and refused.error.code == ERROR_ROUND_REFUSED
    assert "round of 2 sampled sites" in _refusals(tmp_path)[0]["reason"]
    answered = installed.app(_stage("setup", SETUP), _context(tmp_path))  # at the floor: its public keys
    assert set(answered.content[RECORD_KEY_CONFIGS]) == {Key.PUBLIC_KEY_1, Key.PUBLIC_KEY_2}
    with SiteStore.read_only(SiteFolder(tmp_path).store_file) as store:
        assert [e.fields["kind"] for e in store.egress(limit=10)].count("secagg_public_keys") == 1


def _load(name: str, module: str) -> Any:
    import importlib.util

    spec = importlib.util.spec_from_file_location(module, HERE / name)
    assert spec is not None and spec.loader is not None
    loaded = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(loaded)
    return loaded


# --- A real federation: Genba's server, a curious one, and sites with and without the floor ----

NAMES = ("site-a", "site-b", "site-c", "site-d")
PHRASES = {"scratch": "scratch on the {}", "dent": "dent near the {}", "ok": "good {} part ok"}
PLACES = ("housing", "bracket", "rim", "flange", "gasket", "clip", "screw", "line")
#: Only a and b label reports (each mostly one class); c and d have the model and no labels.
MIXES = {"site-a": {"scratch": 8, "dent": 4, "ok": 4}, "site-b": {"scratch": 4, "dent": 4, "ok": 8}}
VICTIM, SYBIL = "site-a", "site-b"
#: SecAgg+'s quantisation step with Flower's defaults (clipping range 8, 2**22 levels).
STEP, LEVELS, MAX_WEIGHT = 16 / 2**22, 2**22, 1000.0


@dataclass
class Heard:
    """What the server received in a run (``received.jsonl``), by node id."""

    public_keys: dict[int, bytes]  # pk1, from each site's setup reply
    shared_to: dict[int, list[int]]  # who each site sent encrypted key shares to
    masked: dict[int, list[np.ndarray]]  # each site's masked update
    revealed: list[tuple[list[int], list[bytes]]]  # each unmask reply: node ids and their shares
    replies: dict[int, list[str]]  # what each site answered, in order


@dataclass
class Run:
    result: dict[str, Any]
    heard: Heard
    #: The sybil's SecAgg+ state after the round: its secrets and the key shares it decrypted.
    sybil: dict[str, Any] | None
    #: After the run (and the runs before it): each site's ledger kinds and its unmask refusals.
    ledgers: dict[str, list[str]]
    unmask_refusals: dict[str, list[dict[str, Any]]]


@dataclass
class Federation:
    nodes: dict[str, int]
    #: Each labelled site's update as it computes it (head tensors, training examples): the secret.
    truth: dict[str, tuple[list[np.ndarray], int]]
    runs: dict[str, Run]


@pytest.fixture(scope="module")
def federation(
    tmp_path_factory: pytest.TempPathFactory, bert_bundle: Path, agent_harness: Any, enrolment: Any
) -> Federation:
    from edge_agent.federation.site_trainer import SiteTrainer
    from edge_agent.federation.supernode import JoinConfig, SuperNode
    from export.head_swap import read_head
    from genba.bundle import verify_directory
    from genba.federation import FAB_DIR
    from genba.tools import free_loopback_port
    from server.runs import node_names
    from server.superlink import ServerConfig, ServerFolder, SuperLink

    root = tmp_path_factory.mktemp("secagg-floor")
    folder, sites = enrolment.provision_with_sites(root, NAMES, port=free_loopback_port())
    v1 = agent_harness.reversion(bert_bundle, folder.signing_key, root / "v1", 1)
    fabs = {
        "genba": FAB_DIR,
        "floored": _probe_fab(root, floorless=False),
        "floorless": _probe_fab(root, floorless=True),
    }
    for name, site in sites.items():
        agent_harness.write_settings(site, agent_harness.TEST_SETTINGS)
        _prepare(site, v1, MIXES.get(name), approve=[fabs["floored"], fabs["floorless"]])
    (sites[SYBIL].root / "sybil").mkdir()
    initial = read_head(verify_directory(v1, None))
    truth = {}
    for name in MIXES:
        trainer = SiteTrainer.open(sites[name].root)
        head = trainer.fit([initial.weight, initial.bias])
        truth[name] = ([head.weight, head.bias], trainer.train_examples)

    with SuperLink(ServerConfig(kit=folder.root)) as link:
        link.sync_sites()
        supernodes = [SuperNode(JoinConfig(data=site.root)).start() for site in sites.values()]
        try:
            runs = {label: _run(folder.root, v1, fab, sites) for label, fab in fabs.items()}
        finally:
            for supernode in supernodes:
                supernode.stop()
        nodes = {name: int(node) for node, name in node_names(ServerFolder(folder)).items()}
    return Federation(nodes=nodes, truth=truth, runs=runs)


def _prepare(site: SiteFolder, bundle: Path, mix: dict[str, int] | None, approve: list[Path]) -> None:
    """The model installed, the mix labelled (if any), and the test FABs approved as IT asked."""
    from edge_agent.agent import Agent
    from edge_agent.answers import Item
    from genba.federation import genba_fab_hash

    with Agent.open(site) as agent:
        agent.install(bundle, actor="supervisor")
        rows = [
            (PHRASES[label].format(place), label, "train" if i < count - 2 else "holdout")
            for label, count in (mix or {}).items()
            for i, place in enumerate(PLACES[:count])
        ]
        answers = (
            agent.predict([Item(kind="text", value=t, raw=t.encode()) for t, _, _ in rows]) if rows else []
        )
        for answer, (_, label, split) in zip(answers, rows, strict=True):
            agent.store.add_label(answer.input_id, label, actor="operator", split=split)
    approved = site.root / "federation" / "approved-fabs"
    approved.parent.mkdir(parents=True, exist_ok=True)
    approved.write_text(
        "".join(f"{genba_fab_hash(fab)}  # {fab.name}\n" for fab in approve), encoding="ascii"
    )


def _probe_fab(root: Path, *, floorless: bool) -> Path:
    """Genba's FAB with a curious ServerApp and a ClientApp that keeps the sybil's state (secagg_probe.py);
    the ClientApp inside is the installed one, or the floorless test build."""
    from genba.federation import FAB_DIR

    package = "genba_floorless_probe" if floorless else "genba_floor_probe"
    fab = root / package
    code = fab / package
    code.mkdir(parents=True)
    pyproject = (FAB_DIR / "pyproject.toml").read_text(encoding="utf-8")
    for old, new in (('name = "genba-federation"', f'name = "{package.replace("_", "-")}"'),
                     ("genba_federation.", f"{package}.")):  # fmt: skip
        assert old in pyproject
        pyproject = pyproject.replace(old, new)
    (fab / "pyproject.toml").write_text(pyproject, encoding="utf-8")
    (code / "__init__.py").write_text('"""A test FAB probing the privacy floor."""\n', encoding="utf-8")
    shutil.copy(HERE / "secagg_probe.py", code / "secagg_probe.py")
    (code / "server.py").write_text(
        "from .secagg_probe import curious_server_app\n\napp = curious_server_app()\n"
    )
    if floorless:
        shutil.copy(HERE / "floorless_app.py", code / "floorless_app.py")
    inner = "from .floorless_app import app as inner" if floorless else (
        "from edge_agent.federation.client_app import app as inner"
    )  # fmt: skip
    (code / "client.py").write_text(
        f"{inner}\n\nfrom .secagg_probe import observed\n\napp = observed(inner)\n"
    )
    return fab


def _run(kit: Path, bundle: Path, fab: Path, sites: dict[str, SiteFolder]) -> Run:
    from server.federated_run import TrainConfig, train_federated

    kept = sites[SYBIL].root / "sybil" / "round-1.json"
    kept.unlink(missing_ok=True)
    config = TrainConfig(
        kit=kit,
        bundle=bundle,
        rounds=1,
        secagg_timeout_s=60.0,
        deliver=False,
        keep_received=True,
        fab_dir=fab,
    )
    result = train_federated(config)
    heard = _heard(Path(result["run_dir"]) / "results" / "received.jsonl")
    sybil = _unplain(json.loads(kept.read_text(encoding="utf-8"))) if kept.exists() else None
    ledgers, refusals = {}, {}
    for name, site in sites.items():
        with SiteStore.read_only(site.store_file) as store:
            ledgers[name] = [e.fields["kind"] for e in store.egress(limit=10_000)]
        refusals[name] = [r for r in _refusals(site.root) if r["step"] == "secagg_unmask"]
    return Run(result=result, heard=heard, sybil=sybil, ledgers=ledgers, unmask_refusals=refusals)


def _heard(path: Path) -> Heard:
    from flwr.common import bytes_to_ndarray

    heard = Heard(public_keys={}, shared_to={}, masked={}, revealed=[], replies={})
    for line in path.read_text(encoding="utf-8").splitlines():
        reply = _unplain(json.loads(line))
        node, fields = int(reply["node"]), reply["content"].get(RECORD_KEY_CONFIGS, {})
        masked = reply["content"].get(MASKED_RECORD)  # the site's uint32 arrays "0", "1", ...
        kind = "error" if reply["error"] else "evaluation"
        if Key.PUBLIC_KEY_1 in fields:
            heard.public_keys[node], kind = fields[Key.PUBLIC_KEY_1], "public keys"
        elif Key.DESTINATION_LIST in fields:
            heard.shared_to[node], kind = list(fields[Key.DESTINATION_LIST]), "key shares"
        elif masked is not None:
            ordered = sorted(masked, key=int)
            heard.masked[node] = [bytes_to_ndarray(masked[key]).astype(np.int64) for key in ordered]
            kind = "masked update"
        elif Key.NODE_ID_LIST in fields:
            heard.revealed.append((list(fields[Key.NODE_ID_LIST]), list(fields[Key.SHARE_LIST])))
            kind = "unmask shares"
        heard.replies.setdefault(node, []).append(kind)
    return heard


def _unplain(value: Any) -> Any:
    if isinstance(value, dict):
        return (
            base64.b64decode(value["b64"])
            if set(value) == {"b64"}
            else {k: _unplain(v) for k, v in value.items()}
        )
    if isinstance(value, list):
        return [_unplain(item) for item in value]
    return value


# --- The attack -------------------------------------------------------------------------------


def recover_update(heard: Heard, sybil: dict[str, Any], victim: int) -> tuple[list[np.ndarray], int] | None:
    """The adversary's reading of ``victim``'s update, or None when it lacks a secret it needs.

    The adversary is the server together with the sybil site. It holds everything the server
    received (every site's public keys, the encrypted key shares it forwarded, every masked update
    and every unmask reply) and everything the sybil holds: its own secret key, and its share of
    every other site's mask seed and secret key (the key shares addressed to it, decrypted). It
    told the sites that the sites whose masked updates arrived were alive and the others dropped,
    so an unmask reply carries shares of the alive sites' mask seeds and the dropped sites' keys.

    The victim's masked update is its quantised update plus a mask from its own seed and, per
    site it exchanged keys with, a pairwise mask from their shared key. With ``threshold`` shares
    of the victim's seed and, per partner, the partner's secret key (the sybil's own, or rebuilt
    from ``threshold`` shares of a dropped site's), every mask comes off: Flower's own primitives
    and the masks Genba's sites draw (:mod:`genba.masking`), as the server's ``unmask_stage`` uses
    them, applied to one site's update instead of the sum.
    """
    from flwr.common.secure_aggregation.crypto.shamir import combine_shares
    from flwr.common.secure_aggregation.crypto.symmetric_encryption import generate_shared_key
    from flwr.common.secure_aggregation.ndarrays_arithmetic import (
        factor_extract,
        get_parameters_shape,
        parameters_addition,
        parameters_mod,
        parameters_subtraction,
    )
    from flwr.common.secure_aggregation.quantization import dequantize
    from flwr.supercore.primitives.asymmetric import bytes_to_private_key, bytes_to_public_key

    from genba.masking import mask_arrays as pseudo_rand_gen  # the masks Genba's sites draw

    alive, threshold, modulus = set(heard.masked), int(sybil["threshold"]), int(sybil["mod_range"])

    def secret(node: int, kind: str) -> bytes | None:
        held = dict(zip(sybil[f"{kind}_share_dict:K"], sybil[f"{kind}_share_dict:V"], strict=True))
        shares = {held[node][:4]: held[node]} if node in held else {}  # keyed by share index
        if (node in alive) == (kind == "rd_seed"):
            shares.update((share[:4], share) for nids, revealed in heard.revealed
                          for nid, share in zip(nids, revealed, strict=True) if nid == node)  # fmt: skip
        return combine_shares(list(shares.values())) if len(shares) >= threshold else None

    seed = secret(victim, "rd_seed")
    partners = [node for node, destinations in heard.shared_to.items() if victim in destinations]
    keys = {node: sybil["sk1"] if node == sybil["nid"] else secret(node, "sk1") for node in partners}
    if seed is None or None in keys.values():
        return None
    vector = heard.masked[victim]
    shape = get_parameters_shape(vector)
    vector = parameters_subtraction(vector, pseudo_rand_gen(seed, modulus, shape))
    for node, key in keys.items():
        assert key is not None
        shared = generate_shared_key(
            bytes_to_private_key(key), bytes_to_public_key(heard.public_keys[victim])
        )
        mask = pseudo_rand_gen(shared, modulus, shape)  # the victim added it if its id is the larger
        vector = parameters_subtraction(vector, mask) if victim > node else parameters_addition(vector, mask)
    factor, quantised = factor_extract(parameters_mod(vector, modulus))
    return [value * (LEVELS / factor) for value in dequantize(quantised, 8.0, LEVELS)], int(factor)


# --- What the runs show -----------------------------------------------------------------------


def test_genbas_server_halts_a_round_below_the_floor_before_asking_any_site_for_a_share(
    federation: Federation,
) -> None:
    run, nodes = federation.runs["genba"], federation.nodes
    fit = run.result["fit_by_round"]["1"]
    assert run.result["rounds_aggregated"] == [] and fit["aggregated"] is False and fit["halted"] is True
    assert fit["halted_reason"] == (
        "below the privacy floor: 2 of 4 sampled sites sent masked updates, at least 3 are needed; "
        "nothing was unmasked"
    )
    assert fit["sampled"] == list(NAMES) and fit["dropped"] == ["site-c", "site-d"]
    assert set(run.heard.masked) == {nodes["site-a"], nodes["site-b"]}
    # No unmask request went out: a and b answered the three stages before it, then evaluated.
    for name in MIXES:
        assert run.heard.replies[nodes[name]] == ["public keys", "key shares", "masked update", "evaluation"]
        assert run.unmask_refusals[name] == [] and "secagg_unmask_shares" not in run.ledgers[name]
    assert run.heard.revealed == []


def test_sites_refuse_to_unmask_two_of_four_for_a_curious_server_which_aggregates_nothing(
    federation: Federation,
) -> None:
    run, nodes = federation.runs["floored"], federation.nodes
    fit = run.result["fit_by_round"]["1"]
    assert run.result["rounds_aggregated"] == [] and fit["aggregated"] is False and fit["halted"] is True
    assert set(run.heard.masked) == {nodes["site-a"], nodes["site-b"]}
    assert run.heard.revealed == []  # not one share reached the server
    for name in MIXES:  # asked to unmask, each refused (an error with a fixed reason) and audited why
        assert run.heard.replies[nodes[name]] == [
            "public keys", "key shares", "masked update", "error", "evaluation",
        ]  # fmt: skip
        [refusal] = run.unmask_refusals[name]
        assert (
            "refused to reveal SecAgg+ shares: the server says 2 sites sent masked updates, below the "
            "privacy floor of 3" in refusal["reason"]
        )
        assert "secagg_unmask_shares" not in run.ledgers[name]
    for name in ("site-c", "site-d"):  # they had refused to train; nobody asked them to unmask
        assert run.unmask_refusals[name] == [] and run.heard.replies[nodes[name]][:3] == [
            "public keys", "key shares", "error",
        ]  # fmt: skip


def test_the_attack_reads_a_sites_update_from_two_sites_only_when_the_sites_lack_the_floor(
    federation: Federation,
) -> None:
    victim = federation.nodes[VICTIM]
    floored, floorless = federation.runs["floored"], federation.runs["floorless"]
    assert floored.sybil is not None and floorless.sybil is not None
    assert floored.sybil["nid"] == floorless.sybil["nid"] == federation.nodes[SYBIL]

    # The sites refused: the adversary holds one share (the sybil's) of the victim's seed, not two.
    assert recover_update(floored.heard, floored.sybil, victim) is None

    # Without the floor, a and b revealed their shares, and the same attack reads a's update.
    assert [len(floorless.unmask_refusals[name]) for name in MIXES] == [1, 1]  # from the floored run only
    assert [floorless.ledgers[name].count("secagg_unmask_shares") for name in NAMES] == [1, 1, 0, 0]
    assert floorless.result["rounds_aggregated"] == []  # the server unmasked a + b; its strategy kept nothing
    recovered = recover_update(floorless.heard, floorless.sybil, victim)
    assert recovered is not None
    tensors, factor = recovered
    truth, examples = federation.truth[VICTIM]
    assert factor == round(examples / MAX_WEIGHT * LEVELS)  # its example count, too
    tolerance = STEP * LEVELS / factor + 1e-5  # one quantisation step of the example-weighted update
    errors = [float(np.max(np.abs(got - want))) for got, want in zip(tensors, truth, strict=True)]
    assert max(errors) <= tolerance, (errors, tolerance)
    other, _ = federation.truth[SYBIL]  # it is a's update, not b's
    assert (
        max(float(np.max(np.abs(got - want))) for got, want in zip(tensors, other, strict=True))
        > 10 * tolerance
    )
