"""contrastive site training end to end: SetFit pairs on a tiny sentence model, the real re-export."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edge_agent.agent import Agent
from edge_agent.site import SiteFolder
from edge_agent.training import train_candidate
from edge_agent.training.contrastive import contrastive_pairs
from edge_agent.training.errors import SingleClassError, TooFewPairsError
from edge_agent.training.source import WEIGHTS_SUFFIX
from genba import keys
from genba.bundle import verify_directory
from genba.errors import ConfigError

#: Fast enough for a test on the tiny model; the defaults are SetFit's (2e-5, 20 passes).
CONTRASTIVE = {"contrastive_learning_rate": 1e-3, "contrastive_iterations": 10, "contrastive_max_pairs": 400}


def contrastive(site: SiteFolder, out: Path, **options: Any) -> dict[str, Any]:
    return train_candidate(site.root, mode="contrastive", out=out, seed=0, provider="cpu", **options)


def class_separation(vectors: np.ndarray, labels: list[str]) -> float:
    """Mean cosine within a class minus mean cosine across classes (higher: classes apart)."""
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    cosines = unit @ unit.T
    same = np.equal.outer(np.array(labels), np.array(labels))
    off_diagonal = ~np.eye(len(labels), dtype=bool)
    return float(cosines[same & off_diagonal].mean() - cosines[~same].mean())


def test_pairs_follow_setfit_one_positive_and_one_negative_per_text_and_pass() -> None:
    labels = np.array([0, 0, 0, 1, 1, 2])  # class 2 has one text: it has no positive partner
    pairs = contrastive_pairs(labels, iterations=4, max_pairs=10_000, seed=1)
    assert len(pairs) == 4 * (6 + 5)
    first, second, target = pairs.T
    assert np.all(first != second)
    assert np.all((labels[first] == labels[second]) == (target == 1))
    assert sorted(np.bincount(first[target == 0], minlength=6)) == [4] * 6  # one negative per text and pass
    capped = contrastive_pairs(labels, iterations=4, max_pairs=7, seed=1)
    assert len(capped) == 7 and {tuple(row) for row in capped} <= {tuple(row) for row in pairs}
    np.testing.assert_array_equal(pairs, contrastive_pairs(labels, iterations=4, max_pairs=10_000, seed=1))


def test_contrastive_teaches_the_encoder_the_classes_and_re_exports_a_site_signed_candidate(
    st_site: Callable[..., SiteFolder], sentence_dir: Path, sentence_site: Any, tmp_path: Path
) -> None:
    site = st_site(**CONTRASTIVE)
    parent_dir = sentence_site.production_dir(site)
    result = contrastive(site, tmp_path / "candidate")

    site_key = keys.load_public_key(site.site_key_file.with_name("site-sign.pem.pub"))
    manifest = verify_directory(tmp_path / "candidate", [site_key]).manifest.to_json()
    source = manifest["lineage"]["source"]
    assert (source["kind"], source["mode"], source["labels"]) == ("site-training", "contrastive", 18)
    assert result["version_label"] == "1.1" and result["parent"]["version"] == 1
    assert manifest["precision"]["variant"] == "fp32"
    assert manifest["validation"]["candidates"][0]["passed"]

    tuned = manifest["validation"]["site_training"]["contrastive"]
    assert tuned["pairs"] == 10 * 18 * 2 and tuned["positive_pairs"] == 10 * 18  # under the 400 cap
    assert tuned["pair_loss_last_tenth"] < tuned["pair_loss_first_tenth"]
    assert tuned["head"]["examples"] == 18 and tuned["blocks_trained"] == 1

    # What serves is what was trained: the source model plus the weights the site kept.
    backbone_sha = manifest["files"]["backbone.onnx"]["sha256"]
    weights = site.training_dir / "weights" / f"{backbone_sha}{WEIGHTS_SUFFIX}"
    assert weights.is_file() and weights.stat().st_mode & 0o077 == 0 and sentence_site.leftovers(site) == []
    texts = [text for text, _, _ in sentence_site.TRAIN]
    labels = [label for _, label, _ in sentence_site.TRAIN]
    served = sentence_site.embeddings(tmp_path / "candidate", texts)
    np.testing.assert_allclose(
        served,
        sentence_site.torch_embeddings(sentence_dir, weights, tmp_path / "candidate", texts),
        atol=1e-4,
    )
    # ... and it learned the site's classes: its embeddings set them further apart than the parent's.
    before = class_separation(sentence_site.embeddings(parent_dir, texts), labels)
    after = class_separation(served, labels)
    assert after > before + 0.1, (before, after)

    with Agent.open(site) as agent:
        installed = agent.install(tmp_path / "candidate", actor="supervisor")
        assert installed["slot"] == "candidate" and agent.status()["candidate"]["stage"] == "shadow"


def test_too_few_labels_per_class_or_one_class_is_refused_in_one_line_and_nothing_is_written(
    make_site: Callable[..., SiteFolder],
    sentence_bundle: Path,
    sentence_dir: Path,
    agent_harness: Any,
    sentence_site: Any,
    tmp_path: Path,
) -> None:
    cases = [
        # one label in each class: no two texts of a class to pair
        ([(f"scratch on the {p}", "scratch", "train") for p in ("rim",)]
         + [(f"dent near the {p}", "dent", "train") for p in ("rim",)]
         + [(f"good {p} part ok", "ok", "train") for p in ("rim",)], TooFewPairsError, "2 or more classes"),
        # two classes, only one of them with two labels
        ([("scratch on the rim", "scratch", "train"), ("scratch on the clip", "scratch", "train"),
          ("dent near the rim", "dent", "train")], TooFewPairsError, "(1 class have that many)"),
        ([("scratch on the rim", "scratch", "train"), ("scratch on the clip", "scratch", "train")],
         SingleClassError, "a single class"),
    ]  # fmt: skip
    for index, (labelled, error, words) in enumerate(cases):
        site = make_site(f"site-{'abc'[index]}")
        agent_harness.write_settings(site, {"training": {"source_model": str(sentence_dir), **CONTRASTIVE}})
        with Agent.open(site) as agent:
            agent.install(sentence_bundle, actor="supervisor")
            sentence_site.label_texts(agent, labelled)
        with pytest.raises(error) as caught:
            contrastive(site, tmp_path / f"candidate-{index}")
        message = str(caught.value)
        assert words in message and "\n" not in message and caught.value.exit_code == 2
        assert not (tmp_path / f"candidate-{index}").exists() and sentence_site.leftovers(site) == []
        assert not list(site.training_dir.glob("weights/*"))


def test_contrastive_settings_are_checked_with_the_rest_of_agent_toml() -> None:
    from edge_agent.config import config_from_mapping

    with pytest.raises(ConfigError) as caught:
        config_from_mapping(
            {
                "training": {"contrastive_iterations": 0, "contrastive_learning_rate": 0.0},
                "drift": {"train_mode": "x"},
            }
        )
    problems = caught.value.problems
    assert "training.contrastive_iterations and contrastive_max_pairs must be >= 1" in problems
    assert "training.contrastive_learning_rate must be between 0 and 1" in problems
    assert "drift.train_mode must be one of head, last-k, contrastive, auto" in problems
    assert config_from_mapping({"drift": {"train_mode": "contrastive"}}).drift.train_mode == "contrastive"
