"""Site training end to end: a real site store, the tiny BERT bundle on ONNX Runtime, torch fitting."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Sequence
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from edge_agent.agent import Agent
from edge_agent.answers import Item
from edge_agent.site import SiteFolder
from edge_agent.store import SiteStore
from edge_agent.training import train_candidate
from edge_agent.training.errors import (
    NoProductionModelError,
    NoTrainingLabelsError,
    SingleClassError,
    TrainingModeError,
    UnknownLabelsError,
)
from genba import env, keys
from genba.bundle import verify_directory
from genba.errors import GenbaError, StoreError

PLACES = ("housing", "bracket", "rim", "flange", "gasket", "clip")
PHRASES = {"scratch": "scratch on the {}", "dent": "dent near the {}", "ok": "good {} part ok"}

Row = tuple[str, str, str]  # text, label, split


def rows(labels: Sequence[str], split: str, places: Sequence[str] = PLACES) -> list[Row]:
    return [(PHRASES[label].format(place), label, split) for label in labels for place in places]


TRAIN = rows(("ok", "scratch", "dent"), "train")  # 18 labels, 6 per class
HOLDOUT = rows(("ok", "scratch", "dent"), "holdout", ("screw", "line"))


@pytest.fixture
def build_site(
    make_site: Callable[..., SiteFolder], bundle_versions: dict[int, Path]
) -> Callable[..., SiteFolder]:
    """A site with bundle v1 in production and the given texts served and labelled (no agent process)."""

    def build(labelled: Sequence[Row] = (*TRAIN, *HOLDOUT), name: str = "site-a") -> SiteFolder:
        site = make_site(name)
        with Agent.open(site) as agent:
            agent.install(bundle_versions[1], actor="supervisor")
            if labelled:
                label_texts(agent, labelled)
        return site

    return build


def label_texts(agent: Agent, labelled: Sequence[Row]) -> list[int]:
    items = [Item(kind="text", value=text, raw=text.encode()) for text, _, _ in labelled]
    answers = agent.predict(items)
    for answer, (_, label, split) in zip(answers, labelled, strict=True):
        agent.store.add_label(answer.input_id, label, actor="operator", split=split)
    return [answer.input_id for answer in answers]


@pytest.fixture
def signing_key(other_keypair: tuple[Path, Path]) -> Path:
    return other_keypair[0]


def train(site: SiteFolder, out: Path, key: Path, seed: int = 0) -> dict[str, Any]:
    return train_candidate(site.root, mode="head", out=out, signing_key=key, seed=seed, provider="cpu")


def production_copy(site: SiteFolder) -> Path:
    with SiteStore.read_only(site.store_file) as store:
        slots = store.slots()
        assert slots.production is not None
        return site.models_dir / store.get_model(slots.production.model_id).path


def test_training_writes_a_signed_head_swap_of_production(
    build_site: Callable[..., SiteFolder], signing_key: Path, other_keypair: tuple[Path, Path], tmp_path: Path
) -> None:
    site = build_site()
    parent_dir = production_copy(site)
    parent = verify_directory(parent_dir, None)
    result = train(site, tmp_path / "candidate", signing_key)

    candidate = verify_directory(tmp_path / "candidate", [keys.load_public_key(other_keypair[1])])
    assert candidate.signer_key_id == keys.key_id(keys.load_public_key(other_keypair[1]))
    manifest, parent_manifest = candidate.manifest.to_json(), parent.manifest.to_json()  # as written
    assert manifest["model"]["name"] == parent_manifest["model"]["name"]
    # The site's first candidate from IT's release 1 is revision 1.1: IT's next release 2 stays free.
    assert (manifest["model"]["version"], manifest["model"]["revision"]) == (1, 1)
    assert "revision" not in parent_manifest["model"] and result["version_label"] == "1.1"
    lineage = manifest["lineage"]
    assert lineage["parent"] == {
        "name": parent_manifest["model"]["name"],
        "version": 1,
        "manifest_sha256": _sha256(parent_dir / "manifest.json"),
    }
    assert lineage["source"] == {
        "kind": "site-training",
        "site": "site-a",
        "mode": "head",
        "labels": len(TRAIN),
        "seed": 0,
    }
    assert (lineage["federated_run"], lineage["round"], lineage["rollback"]) == (None, None, False)
    assert result["parent"] == lineage["parent"]
    assert result["manifest_sha256"] == _sha256(tmp_path / "candidate" / "manifest.json")

    # Only the head changed: backbone, preprocessing and reference statistics are the parent's.
    written = tmp_path / "candidate"
    assert (written / "backbone.onnx").read_bytes() == (parent_dir / "backbone.onnx").read_bytes()
    assert (written / "head.onnx").read_bytes() != (parent_dir / "head.onnx").read_bytes()
    for name, entry in parent_manifest["files"].items():
        if name != "head.onnx":
            assert manifest["files"][name] == entry
    assert set(manifest["files"]) == set(parent_manifest["files"])
    assert manifest["reference_stats"] == parent_manifest["reference_stats"]
    assert manifest["graphs"] == parent_manifest["graphs"]

    report = manifest["validation"]["site_training"]
    assert report["labels"] == len(TRAIN) and report["class_counts"] == {"ok": 6, "scratch": 6, "dent": 6}
    head = report["head"]
    assert head["validation_size"] == len(TRAIN) and head["folds"] == 5  # every label scored once
    assert 0.0 <= head["validation_accuracy"] <= 1.0 and head["chosen"]["l2"] in head["config"]["l2_grid"]
    assert report["head_check_max_abs_diff"] < 1e-3
    assert result["report"]["embedded_new"] == len(TRAIN)


def test_the_sites_own_key_signs_a_candidate_the_agent_installs_in_shadow(
    build_site: Callable[..., SiteFolder], tmp_path: Path
) -> None:
    site = build_site()
    result = train_candidate(site.root, mode="head", out=tmp_path / "candidate", provider="cpu")
    assert result["signer_key_id"] == keys.key_id(site.site_public_key())
    with Agent.open(site) as agent:
        installed = agent.install(tmp_path / "candidate", actor="supervisor")
        assert installed["slot"] == "candidate"
        candidate = agent.store.slots().candidate
        assert candidate is not None and candidate.stage == "shadow"
        answers = agent.predict([Item(kind="text", value="dent near the rim", raw=b"dent near the rim")])
        assert answers[0].production.label in ("ok", "scratch", "dent")


def test_held_out_labels_are_never_read(
    build_site: Callable[..., SiteFolder], signing_key: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = build_site(HOLDOUT)
    with pytest.raises(NoTrainingLabelsError) as caught:
        train(site, tmp_path / "candidate", signing_key)
    assert str(caught.value) == "no training labels yet: label some items from the queue first"

    # With training labels too: only the "train" split is asked for; held-out inputs are not embedded.
    with Agent.open(site) as agent:
        train_ids = label_texts(agent, TRAIN)
    asked: list[str] = []
    original = SiteStore.labelled_inputs

    def spy(self: SiteStore, split: str, limit: int = 10000) -> Any:
        asked.append(split)
        return original(self, split, limit)

    monkeypatch.setattr(SiteStore, "labelled_inputs", spy)
    result = train(site, tmp_path / "candidate", signing_key)
    assert asked == ["train"]
    assert result["report"]["labels"] == len(TRAIN)
    with SiteStore.read_only(site.store_file) as store:
        assert store.embedding_count() == len(TRAIN)
        holdout_ids = [row.input_id for row in store.labelled_inputs("holdout")]
        cached = set(_embedding_input_ids(site))
    assert cached == set(train_ids) and not cached & set(holdout_ids)


def test_the_same_seed_gives_the_same_head(
    build_site: Callable[..., SiteFolder], signing_key: Path, tmp_path: Path
) -> None:
    site = build_site()
    first = train(site, tmp_path / "first", signing_key, seed=3)
    second = train(site, tmp_path / "second", signing_key, seed=3)
    assert (tmp_path / "first" / "head.onnx").read_bytes() == (tmp_path / "second" / "head.onnx").read_bytes()
    assert first["report"]["head"]["grid"] == second["report"]["head"]["grid"]
    assert first["version_label"] == second["version_label"] == "1.1"  # neither was installed


def test_a_second_run_embeds_only_new_inputs(
    build_site: Callable[..., SiteFolder], signing_key: Path, tmp_path: Path
) -> None:
    site = build_site()
    first = train(site, tmp_path / "first", signing_key)
    assert (first["report"]["embedded_new"], first["report"]["embedded_cached"]) == (len(TRAIN), 0)
    second = train(site, tmp_path / "second", signing_key)
    assert (second["report"]["embedded_new"], second["report"]["embedded_cached"]) == (0, len(TRAIN))
    with Agent.open(site) as agent:  # training reads and caches while the agent serves and writes (WAL)
        new = [("scratch on the bolt", "scratch", "train"), ("dent near the seam", "dent", "train")]
        label_texts(agent, new)
        third = train(site, tmp_path / "third", signing_key)
        label_texts(agent, [("oil on the clip", "ok", "train")])
    assert (third["report"]["embedded_new"], third["report"]["embedded_cached"]) == (2, len(TRAIN))
    assert third["report"]["labels"] == len(TRAIN) + 2


@pytest.mark.parametrize(
    ("labelled", "error", "message"),
    [
        ([], NoTrainingLabelsError, "no training labels yet: label some items from the queue first"),
        (rows(("dent",), "train"), SingleClassError, "all 6 training labels are 'dent', a single class"),
    ],
)
def test_labels_that_cannot_train_a_head_fail_with_one_line_and_write_nothing(
    build_site: Callable[..., SiteFolder],
    signing_key: Path,
    tmp_path: Path,
    labelled: list[Row],
    error: type[GenbaError],
    message: str,
) -> None:
    site = build_site([*labelled, *HOLDOUT])
    with pytest.raises(error) as caught:
        train(site, tmp_path / "candidate", signing_key)
    _assert_one_line(caught.value, message)
    _assert_nothing_written(site, tmp_path / "candidate")


def test_labels_the_model_does_not_know_are_named(
    build_site: Callable[..., SiteFolder], signing_key: Path, tmp_path: Path
) -> None:
    site = build_site()
    with SiteStore(site.store_file) as store:
        trained = [row.input_id for row in store.labelled_inputs("train")][:2]
        held_out = store.labelled_inputs("holdout")[0].input_id
        store.add_label(trained[0], "rust", actor="operator", split="train")
        store.add_label(trained[1], "crack", actor="operator", split="train")
        store.add_label(held_out, "porosity", actor="operator", split="holdout")  # not read: not named
    with pytest.raises(UnknownLabelsError) as caught:
        train(site, tmp_path / "candidate", signing_key)
    _assert_one_line(caught.value, "training labels 'crack', 'rust' are not among the model's labels")
    assert "porosity" not in str(caught.value)
    _assert_nothing_written(site, tmp_path / "candidate")


def test_a_store_from_a_newer_genba_is_refused_unchanged(
    build_site: Callable[..., SiteFolder], signing_key: Path, tmp_path: Path
) -> None:
    site = build_site()
    with closing(sqlite3.connect(site.store_file, isolation_level=None)) as conn:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        conn.execute(f"PRAGMA user_version = {version + 1}")
    before = site.store_file.read_bytes()
    with pytest.raises(StoreError, match="newer than this Genba") as caught:
        train(site, tmp_path / "candidate", signing_key)
    _assert_one_line(caught.value, "store schema")
    assert not (tmp_path / "candidate").exists()
    assert site.store_file.read_bytes() == before


def test_a_site_without_production_or_with_a_bad_mode_says_what_to_do(
    make_site: Callable[..., SiteFolder], signing_key: Path, tmp_path: Path
) -> None:
    bare = make_site("bare")
    with Agent.open(bare):
        pass  # creates and migrates the store, installs nothing
    with pytest.raises(NoProductionModelError) as caught:
        train(bare, tmp_path / "candidate", signing_key)
    _assert_one_line(caught.value, "no production model is installed at this site")
    with pytest.raises(NoProductionModelError):
        train_candidate(bare.root, mode="last-k", out=tmp_path / "candidate", signing_key=signing_key)
    with pytest.raises(TrainingModeError, match="must be one of head, last-k, contrastive, auto, not 'tail'"):
        train_candidate(bare.root, mode="tail", out=tmp_path / "candidate", signing_key=signing_key)
    assert not (tmp_path / "candidate").exists()


def test_the_module_entry_prints_one_json_line_or_one_error_line(
    build_site: Callable[..., SiteFolder], signing_key: Path, tmp_path: Path
) -> None:
    site = build_site()
    command = [sys.executable, "-m", "edge_agent.training", "--data", str(site.root), "--mode", "head"]
    command += ["--signing-key", str(signing_key), "--provider", "cpu", "--seed", "1"]
    done = subprocess.run(
        [*command, "--out", str(tmp_path / "candidate")],
        capture_output=True,
        text=True,
        env=env.child_environment(),
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 1
    result = json.loads(lines[0])
    assert result["version_label"] == "1.1" and result["bundle"] == str(tmp_path / "candidate")
    assert result["report"]["seed"] == 1

    failed = subprocess.run(
        [*command, "--out", str(tmp_path / "candidate")],  # exists now
        capture_output=True,
        text=True,
        env=env.child_environment(),
        timeout=300,
    )
    assert failed.returncode == 2 and failed.stdout == ""
    assert failed.stderr.count("\n") == 1
    assert failed.stderr.startswith("python -m edge_agent.training: error: ")
    assert "already exists" in failed.stderr


def _assert_one_line(error: BaseException, starts: str) -> None:
    text = str(error)
    assert "\n" not in text
    assert text.startswith(starts), text


def _assert_nothing_written(site: SiteFolder, out: Path) -> None:
    assert not out.exists()
    assert not list(out.parent.glob(f".{out.name}.tmp-*"))
    with SiteStore.read_only(site.store_file) as store:
        assert store.embedding_count() == 0


def _embedding_input_ids(site: SiteFolder) -> list[int]:
    with closing(sqlite3.connect(site.store_file)) as conn:
        return [row[0] for row in conn.execute("SELECT input_id FROM embeddings")]


def _sha256(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_two_candidates_from_one_parent_take_two_versions_and_the_second_supersedes_the_first(
    build_site: Callable[..., SiteFolder], bundle_versions: dict[int, Path], tmp_path: Path
) -> None:
    """Versions never collide: the site's revisions 1.1, 1.2 and IT's release 2 all install."""
    from genba.errors import RolloutError

    site = build_site()

    def site_candidate(out: str) -> dict[str, Any]:
        return train_candidate(site.root, mode="head", out=tmp_path / out, seed=0, provider="cpu")

    with Agent.open(site, serving=False) as agent:
        first = site_candidate("first")
        agent.install(Path(first["bundle"]), actor="supervisor")
        second = site_candidate("second")  # the same parent, production v1, while 1.1 is in shadow
        agent.install(Path(second["bundle"]), actor="supervisor")
        assert (first["version_label"], second["version_label"]) == ("1.1", "1.2")
        assert first["parent"] == second["parent"] and second["parent"]["version"] == 1
        assert agent.describe_active()["candidate"]["version_label"] == "1.2"
        superseded = agent.store.audit(limit=1)[0].fields
        assert superseded["event"] == "replace_candidate"
        assert superseded["details"]["replaced"].endswith("v1.1")

        agent.install(bundle_versions[2], actor="supervisor")  # IT's next release: its number is free
        assert agent.describe_active()["candidate"]["version_label"] == "2"

        discarded = agent.discard(actor="supervisor", reason="IT asked to wait for release 3")
        assert discarded == {"discarded": "tiny-bert v2", "stage": "shadow", "reason": discarded["reason"]}
        assert agent.active.candidate is None and agent.store.slots().candidate is None
        assert agent.describe_active()["production"]["version_label"] == "1"
        entry = agent.store.audit(limit=1)[0].fields
        assert entry["event"] == "discard_candidate" and entry["details"]["outcome"] == "reject"
        assert entry["details"]["reason"] == "IT asked to wait for release 3"
        with pytest.raises(RolloutError, match="no candidate to discard"):
            agent.discard(actor="supervisor")

        agent.install(Path(second["bundle"]), actor="supervisor")  # back as candidate, then production
        agent.promote(actor="supervisor", to_stage="production")
        third = site_candidate("third")  # from the site's own 1.2: the release's next free revision
        assert third["version_label"] == "1.3" and third["parent"]["revision"] == 2
