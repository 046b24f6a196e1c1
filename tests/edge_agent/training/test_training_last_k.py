"""last-k site training end to end: a tiny sentence-transformers model, a real store, the real re-export."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edge_agent.agent import Agent
from edge_agent.site import SiteFolder
from edge_agent.training import train_candidate
from edge_agent.training.errors import (
    SiteWeightsMissingError,
    SourceMismatchError,
    SourceModelMissingError,
    UnsupportedSourceError,
)
from edge_agent.training.source import WEIGHTS_SUFFIX
from genba import keys
from genba.bundle import verify_directory
from genba.errors import ConfigError, GenbaError, ProviderUnavailableError


def last_k(site: SiteFolder, out: Path, **options: Any) -> dict[str, Any]:
    return train_candidate(site.root, mode="last-k", out=out, seed=0, provider="cpu", **options)


def test_last_k_fine_tunes_the_top_block_and_re_exports_a_site_signed_candidate(
    st_site: Callable[..., SiteFolder], sentence_dir: Path, tmp_path: Path, sentence_site: Any) -> None:
    site = st_site()
    parent_dir = sentence_site.production_dir(site)
    parent = verify_directory(parent_dir, None).manifest.to_json()  # as written
    result = last_k(site, tmp_path / "candidate")

    site_key = keys.load_public_key(site.site_key_file.with_name("site-sign.pem.pub"))
    candidate = verify_directory(tmp_path / "candidate", [site_key])
    manifest = candidate.manifest.to_json()
    assert manifest["model"] == {**manifest["model"], "name": "tiny-st", "version": 1, "revision": 1}
    assert manifest["lineage"]["parent"] == result["parent"] and result["parent"]["version"] == 1
    source = manifest["lineage"]["source"]
    assert (source["kind"], source["mode"], source["site"], source["labels"]) == (
        "site-training",
        "last-k",
        "site-a",
        18,
    )
    assert source["exported_from"]["library"] == "sentence_transformers"
    # Re-exported with the parent's precision and through the export's gates against torch.
    assert manifest["precision"]["variant"] == parent["precision"]["variant"] == "fp32"
    chosen = manifest["validation"]["candidates"][0]
    assert chosen["passed"] and chosen["gates"]["mean_cosine"]["passed"]
    assert (tmp_path / "candidate" / "backbone.onnx").read_bytes() != (
        parent_dir / "backbone.onnx"
    ).read_bytes()

    report = manifest["validation"]["site_training"]
    tuned = report["last_k"]
    assert (tuned["blocks_trained"], tuned["blocks_total"]) == (1, 2)
    assert tuned["train_size"] + tuned["validation_size"] == 18 and tuned["validation_size"] > 0
    assert 1 <= tuned["best_epoch"] == tuned["refit_epochs"] <= len(tuned["epochs"]) <= 4
    assert report["source"] == {
        "path": str(sentence_dir),
        "site_weights": False,
        "mean_cosine": pytest.approx(1.0, abs=1e-4),
    }

    # The site keeps exactly the trained block, keyed by the new backbone's hash, private to it.
    backbone_sha = manifest["files"]["backbone.onnx"]["sha256"]
    weights = site.training_dir / "weights" / f"{backbone_sha}{WEIGHTS_SUFFIX}"
    from safetensors.torch import load_file

    names = set(load_file(str(weights)))
    assert names and all(".encoder.layer.1." in name for name in names)
    assert weights.stat().st_mode & 0o077 == 0
    assert sentence_site.leftovers(site) == []

    # What serves is what was trained: the candidate's embedding is the source plus those weights.
    texts = ["scratch on the rim", "good clip part ok", "dent near the line"]
    served = sentence_site.embeddings(tmp_path / "candidate", texts)
    np.testing.assert_allclose(
        served,
        sentence_site.torch_embeddings(sentence_dir, weights, tmp_path / "candidate", texts),
        atol=1e-4,
    )
    assert not np.allclose(served, sentence_site.embeddings(parent_dir, texts), atol=1e-3)

    with Agent.open(site) as agent:
        installed = agent.install(tmp_path / "candidate", actor="supervisor")
        assert installed["slot"] == "candidate" and installed["installed"]["version_label"] == "1.1"
        assert agent.status()["candidate"]["stage"] == "shadow"


def test_a_second_round_starts_from_the_sites_own_weights_and_refuses_when_they_are_gone(
    st_site: Callable[..., SiteFolder], tmp_path: Path, sentence_site: Any) -> None:
    site = st_site()
    last_k(site, tmp_path / "first")
    with Agent.open(site, serving=False) as agent:
        agent.install(tmp_path / "first", actor="supervisor")
        agent.promote(actor="supervisor", to_stage="production")
    second = last_k(site, tmp_path / "second")
    assert second["version_label"] == "1.2" and second["parent"]["revision"] == 1
    assert second["report"]["source"]["site_weights"] is True
    assert second["report"]["source"]["mean_cosine"] >= 0.9999

    for kept in (site.training_dir / "weights").glob(f"*{WEIGHTS_SUFFIX}"):
        kept.unlink()
    with pytest.raises(SiteWeightsMissingError) as caught:
        last_k(site, tmp_path / "third")
    message = str(caught.value)
    assert "v1.1 was fine-tuned at this site" in message and "head mode" in message and "\n" not in message
    assert not (tmp_path / "third").exists() and sentence_site.leftovers(site) == []


def test_a_source_that_is_not_the_production_backbone_is_refused_and_nothing_is_written(
    st_site: Callable[..., SiteFolder],
    tmp_path: Path,
    tiny_encoder: Path,
    tiny_model_builders: Any,
    agent_harness: Any, sentence_site: Any) -> None:
    other = tiny_model_builders.tiny_sentence_encoder(tmp_path / "other-st", seed=1)
    cases: list[tuple[dict[str, Any], type[GenbaError], str]] = [
        ({"source_model": str(other)}, SourceMismatchError, "does not compute the production backbone"),
        ({"source_model": str(tmp_path / "nowhere")}, SourceModelMissingError, "set [training] source_model"),
        ({"source_model": str(tiny_encoder)}, UnsupportedSourceError, "only sentence-transformers"),
        ({"source_model": ""}, SourceMismatchError, "does not compute"),  # the packaged MiniLM is not it
    ]
    site = st_site()
    for training, error, words in cases:
        agent_harness.write_settings(site, {"training": training})
        with pytest.raises(error) as caught:
            last_k(site, tmp_path / "candidate")
        message = str(caught.value)
        assert words in message
        assert "\n" not in message and caught.value.exit_code == 2
        assert not (tmp_path / "candidate").exists() and sentence_site.leftovers(site) == []
        assert not list(site.training_dir.glob("weights/*"))


def test_gpu_training_without_cuda_is_refused(st_site: Callable[..., SiteFolder], tmp_path: Path) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    site = st_site()
    with pytest.raises(ProviderUnavailableError):
        train_candidate(site.root, mode="last-k", out=tmp_path / "candidate", provider="gpu")
    assert not (tmp_path / "candidate").exists()


def test_training_settings_are_checked_with_the_rest_of_agent_toml() -> None:
    from edge_agent.config import config_from_mapping

    with pytest.raises(ConfigError) as caught:
        config_from_mapping({"training": {"last_k": 0, "learning_rate": 2.0, "validation_fraction": 1.0}})
    problems = caught.value.problems
    assert "training.last_k must be >= 1" in problems
    assert "training.learning_rate must be between 0 and 1" in problems
    assert "training.validation_fraction must be >= 0 and < 1" in problems
    with pytest.raises(ConfigError, match="unknown setting training.k"):
        config_from_mapping({"training": {"k": 2}})
