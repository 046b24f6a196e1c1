"""--unlabelled: the site's unlabelled reports adapt the encoder (adapt) or add sure answers (pseudo),
are recorded in the lineage, and never reach anything that leaves the site."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edge_agent.agent import Agent
from edge_agent.answers import Item
from edge_agent.config import StoreConfig
from edge_agent.federation.client_app import BACKBONE_PIN, SiteClient
from edge_agent.site import SiteFolder
from edge_agent.split import SplitRule
from edge_agent.store import SiteStore
from edge_agent.training import train_candidate
from edge_agent.training.errors import UnlabelledOptionError
from export.head_swap import backbone_sha256, read_head
from genba.bundle import verify_directory
from genba.runtime.config import RuntimeConfig
from genba.runtime.model import BundleModel

#: Reports served and never labelled; each carries a token found nowhere else.
UNLABELLED = [f"{('scratch', 'dent')[i % 2]} seen on lot zq{i:03d}vk" for i in range(40)]


def _serve_unlabelled(site: SiteFolder) -> list[str]:
    """Serve the unlabelled reports; those the site's content split puts in training (what adapt reads)."""
    with Agent.open(site) as agent:
        agent.predict([Item(kind="text", value=t, raw=t.encode()) for t in UNLABELLED])
    rule = SplitRule("site-a", StoreConfig().holdout_fraction)
    return [t for t in UNLABELLED if rule.split_for("text", t.encode()) == "train"]


def _everything_written(site: SiteFolder, bundle: Path) -> bytes:
    """Every byte of the candidate and of the site's egress ledger and training folder."""
    files = [p for p in bundle.rglob("*") if p.is_file()]
    files += [p for p in site.training_dir.rglob("*") if p.is_file()] if site.training_dir.exists() else []
    with SiteStore.read_only(site.store_file) as store:
        ledger = repr([entry.fields for entry in store.egress(limit=10_000)]).encode()
    return b"".join(p.read_bytes() for p in files) + ledger


def _global_head(production_dir: Path) -> tuple[list[np.ndarray], dict[str, Any]]:
    """A federated round's global head and fit config: production's own head, pinned to its backbone."""
    production = verify_directory(production_dir, None)
    head = read_head(production)
    return [head.weight, head.bias], {BACKBONE_PIN: backbone_sha256(production.manifest)}


def test_adapt_learns_from_the_training_split_of_unlabelled_reports_and_records_it(
    st_site: Callable[..., SiteFolder], tmp_path: Path, sentence_site: Any
) -> None:
    site = st_site()
    expected = _serve_unlabelled(site)
    assert 0 < len(expected) < len(UNLABELLED)  # the held-out share of contents is left out
    result = train_candidate(
        site.root, mode="last-k", out=tmp_path / "candidate", seed=0, provider="cpu", unlabelled="adapt"
    )
    manifest = verify_directory(tmp_path / "candidate", None).manifest.to_json()
    lineage = manifest["lineage"]["source"]["unlabelled"]
    assert lineage["method"] == "adapt" and lineage["texts"] == len(expected)
    assert lineage["characters"] == sum(len(t) for t in expected) and lineage["seconds"] > 0
    adapted = result["report"]["unlabelled"]
    assert adapted["batches"] >= 1 and adapted["loss_first"] is not None

    # Nothing of the unlabelled reports is in the candidate, the training folder or the egress ledger.
    written = _everything_written(site, tmp_path / "candidate")
    for text in UNLABELLED:
        assert text.split("lot ")[1].encode() not in written

    # Nor in what the site's ClientApp would hand SecAgg+ to mask in a federated round, nor in its
    # evaluation reply: the update is fitted on the labels alone and weighs exactly them.
    round_head = _global_head(sentence_site.production_dir(site))
    fitted, weight, fit_metrics = SiteClient(site.root).fit(*round_head)
    evaluated = SiteClient(site.root).evaluate(*round_head)
    assert weight == sum(1 for _, _, split in sentence_site.TRAIN if split == "train")
    payload = (
        b"".join(np.ascontiguousarray(a).tobytes() for a in fitted) + repr((fit_metrics, evaluated)).encode()
    )
    for text in UNLABELLED:
        assert text.split("lot ")[1].encode() not in payload


def test_pseudo_adds_productions_sure_answers_to_head_mode(
    st_site: Callable[..., SiteFolder], tmp_path: Path, agent_harness: Any, sentence_site: Any
) -> None:
    site = st_site()
    expected = _serve_unlabelled(site)
    agent_harness.write_settings(site, {"training": {"pseudo_threshold": 0.4}})
    result = train_candidate(site.root, mode="head", out=tmp_path / "candidate", seed=0, unlabelled="pseudo")
    used = result["report"]["unlabelled"]
    # As many pseudo-labels as production answers at least 0.4 sure, counted here independently.
    parent = verify_directory(sentence_site.production_dir(site), None)
    model = BundleModel(parent, RuntimeConfig(provider="cpu"))
    probabilities, _, _ = model.predict_arrays(expected)
    assert probabilities is not None
    assert used["pseudo_labels"] == int((np.max(probabilities, axis=1) >= 0.4).sum())
    assert used["texts"] == len(expected) and used["threshold"] == 0.4
    lineage = verify_directory(tmp_path / "candidate", None).manifest.lineage.source or {}
    assert lineage["unlabelled"]["method"] == "pseudo"
    assert lineage["unlabelled"]["pseudo_labels"] == used["pseudo_labels"]


def test_unlabelled_options_that_cannot_apply_are_refused_in_one_line_and_nothing_is_written(
    st_site: Callable[..., SiteFolder], tmp_path: Path
) -> None:
    site = st_site()
    cases = [
        ("head", "adapt", "adapts the encoder, which head mode keeps"),
        ("last-k", "pseudo", "adds labels to head mode"),
        ("contrastive", "adapt", "no unlabelled reports in the training split yet"),  # none served yet
        ("head", "everything", "--unlabelled must be one of off, adapt, pseudo"),
    ]
    for mode, unlabelled, words in cases:
        out = tmp_path / f"{mode}-{unlabelled}"
        with pytest.raises(UnlabelledOptionError) as caught:
            train_candidate(site.root, mode=mode, out=out, seed=0, provider="cpu", unlabelled=unlabelled)
        assert words in str(caught.value) and "\n" not in str(caught.value)
        assert caught.value.exit_code == 2 and not out.exists()
        assert not list(site.training_dir.glob("weights/*"))


def test_auto_adapts_the_encoder_once_for_all_its_folds_and_the_winner_records_it(
    st_site: Callable[..., SiteFolder], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from edge_agent.training import adapt

    site = st_site(
        auto_folds=3,
        auto_modes=["last-k", "contrastive"],
        contrastive_learning_rate=1e-3,
        contrastive_iterations=5,
        contrastive_max_pairs=200,
    )
    expected = _serve_unlabelled(site)
    adapted: list[int] = []
    real = adapt.adapt_encoder

    def counted(source: Any, encode: Any, texts: Any, config: Any, **kwargs: Any) -> dict[str, Any]:
        adapted.append(len(texts))
        return real(source, encode, texts, config, **kwargs)

    monkeypatch.setattr(adapt, "adapt_encoder", counted)
    result = train_candidate(
        site.root, mode="auto", out=tmp_path / "candidate", seed=0, provider="cpu", unlabelled="adapt"
    )
    auto = result["report"]["auto"]
    assert auto["folds"] == 3 and auto["chosen"] in ("last-k", "contrastive")
    # once for the six folds' trials of both modes (each starts from a copy), once more for the winner
    assert adapted == [len(expected), len(expected)]
    lineage = verify_directory(tmp_path / "candidate", None).manifest.to_json()["lineage"]["source"]
    assert lineage["mode"] == auto["chosen"] and lineage["unlabelled"]["texts"] == len(expected)
    written = _everything_written(site, tmp_path / "candidate")
    assert not any(text.split("lot ")[1].encode() in written for text in UNLABELLED)
