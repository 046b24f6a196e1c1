"""--mode auto: each mode cross-validated on labels it never saw; the winner trains, or nothing does."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edge_agent.config import TrainingConfig
from edge_agent.site import SiteFolder
from edge_agent.training import train_candidate
from edge_agent.training.auto import AutoInputs, choose_mode
from edge_agent.training.errors import AutoDeclinedError
from export.graphs import HeadWeights
from genba import keys
from genba.bundle import verify_directory

CONTRASTIVE = {"contrastive_learning_rate": 1e-3, "contrastive_iterations": 5, "contrastive_max_pairs": 200}


def _clusters(per_class: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Three well-separated classes in 8 dimensions: (vectors, targets, class centres)."""
    rng = np.random.default_rng(seed)
    centres = np.eye(3, 8, dtype=np.float32) * 4
    targets = np.repeat(np.arange(3), per_class)
    vectors = centres[targets] + rng.normal(0, 0.3, (len(targets), 8)).astype(np.float32)
    return vectors, targets, centres


def test_a_head_that_beats_production_on_labels_it_never_saw_is_chosen_and_says_why() -> None:
    vectors, targets, centres = _clusters(10)
    wrong = HeadWeights(np.roll(centres, 1, axis=0), np.zeros(3, dtype=np.float32))  # every answer wrong
    choice = choose_mode(AutoInputs(targets=targets, parent=wrong, vectors=vectors), TrainingConfig())
    report = choice.report
    assert choice.mode == "head" and report["chosen"] == "head"
    # 5 folds of 30 labels: every label answered once, by a head fitted on the other 24
    assert (report["folds"], report["scored"], report["production_right"]) == (5, 30, 0)
    assert report["modes"]["head"]["right"] == 30
    assert "only head trains this model" in report["modes"]["last-k"]["skipped"]
    assert report["modes"]["contrastive"] == {"skipped": "not in [training] auto_modes"}
    # 30 of 30 discordant pairs to head; one mode tried, no correction
    evidence = report["evidence"]
    assert (evidence["mode_only"], evidence["production_only"], evidence["level"]) == (30, 0, 0.1)
    assert evidence["better"] is True
    assert report["why"] == (
        "head answered 30 of 30 labels right in 5-fold cross-validation, production 0: 30 to 0 where "
        "only one was right (p = 9.31e-10 <= 0.1)"
    )


def test_a_mode_only_a_little_ahead_on_few_labels_is_declined_as_luck() -> None:
    """Production calls every class-2 report something else. With 3 labels a class head fixes the
    3 class-2 labels, 3 to 0 where only one is right (p = 0.125): declined. With 10 labels a class
    the same flaw shows on 10 labels (p = 1/1024): head trains."""

    def production(centres: np.ndarray) -> HeadWeights:
        return HeadWeights(np.concatenate([centres[:2], -centres[2:]]), np.zeros(3, dtype=np.float32))

    vectors, targets, centres = _clusters(3)
    with pytest.raises(AutoDeclinedError) as caught:
        choose_mode(
            AutoInputs(targets=targets, parent=production(centres), vectors=vectors), TrainingConfig()
        )
    message = str(caught.value)
    assert message.startswith("--mode auto trained nothing: 9 labels in 3-fold cross-validation do not")
    assert "(6 right; best head, 9; where only one was right, head 3 and production 0, p = 0.125" in message
    assert "needs <= 0.1" in message and "\n" not in message and caught.value.exit_code == 2

    vectors, targets, centres = _clusters(10)
    choice = choose_mode(
        AutoInputs(targets=targets, parent=production(centres), vectors=vectors), TrainingConfig()
    )
    assert choice.mode == "head" and choice.report["evidence"]["mode_only"] == 10


def test_the_evidence_counts_every_label_not_a_fifth_of_them() -> None:
    """The flaw above, 10 labels a class: one validation split of a fifth holds 2 class-2 labels
    (p = 0.25, never enough); cross-validation answers all 10 of them."""
    from edge_agent.training.head import stratified_split

    vectors, targets, centres = _clusters(10)
    _, held_out = stratified_split(targets, TrainingConfig().validation_fraction, seed=0)
    assert int(np.sum(targets[held_out] == 2)) == 2
    parent = HeadWeights(np.concatenate([centres[:2], -centres[2:]]), np.zeros(3, dtype=np.float32))
    report = choose_mode(AutoInputs(targets=targets, parent=parent, vectors=vectors), TrainingConfig()).report
    assert report["scored"] == 30 and report["evidence"]["mode_only"] == 10


def test_the_level_is_shared_among_the_modes_tried() -> None:
    from edge_agent.training.auto import paired_evidence

    mode = np.array([True] * 5 + [False] * 5)
    production = np.zeros(10, dtype=bool)
    # 5 to 0: p = 1/32 = 0.031; enough for one mode at 0.1, not for the best of three at 0.05
    assert paired_evidence(mode, production, 0.1, tried=1)["better"] is True
    assert paired_evidence(mode, production, 0.05, tried=3)["better"] is False
    assert paired_evidence(mode, production, 0.05, tried=3)["level"] == round(0.05 / 3, 6)
    # ties and losses are never better, whatever the level
    assert paired_evidence(production, mode, 0.99, tried=1)["better"] is False
    assert paired_evidence(mode, mode, 0.99, tried=1)["better"] is False


def test_no_mode_better_than_production_trains_nothing_in_one_line() -> None:
    vectors, targets, centres = _clusters(10)
    perfect = HeadWeights(centres.copy(), np.zeros(3, dtype=np.float32))
    with pytest.raises(AutoDeclinedError) as caught:
        choose_mode(AutoInputs(targets=targets, parent=perfect, vectors=vectors), TrainingConfig())
    message = str(caught.value)
    assert "30 labels in 5-fold cross-validation do not show any mode better than production " in message
    assert "(30 right; best head, 30" in message
    assert "label more items" in message and "\n" not in message and caught.value.exit_code == 2


def test_one_label_a_class_leaves_none_to_judge_on_and_trains_nothing() -> None:
    vectors, targets, centres = _clusters(1)
    wrong = HeadWeights(np.roll(centres, 1, axis=0), np.zeros(3, dtype=np.float32))
    with pytest.raises(AutoDeclinedError) as caught:
        choose_mode(AutoInputs(targets=targets, parent=wrong, vectors=vectors), TrainingConfig())
    assert "3 labels leave none to judge a mode on" in str(caught.value)
    # two a class are enough for two folds: the labels are judged (here, too few to tell)
    vectors, targets, centres = _clusters(2)
    wrong = HeadWeights(np.roll(centres, 1, axis=0), np.zeros(3, dtype=np.float32))
    with pytest.raises(AutoDeclinedError) as caught:
        choose_mode(AutoInputs(targets=targets, parent=wrong, vectors=vectors), TrainingConfig())
    assert "6 labels in 2-fold cross-validation do not show any mode better" in str(caught.value)


def test_auto_tries_every_mode_on_the_site_and_its_winner_is_the_signed_candidate(
    st_site: Callable[..., SiteFolder], tmp_path: Path
) -> None:
    # Every mode, 3 folds of the 18 labels: each label judges the modes once.
    site = st_site(**CONTRASTIVE, auto_folds=3, auto_modes=["head", "last-k", "contrastive"])
    result = train_candidate(site.root, mode="auto", out=tmp_path / "candidate", seed=0, provider="cpu")

    site_key = keys.load_public_key(site.site_key_file.with_name("site-sign.pem.pub"))
    manifest = verify_directory(tmp_path / "candidate", [site_key]).manifest.to_json()
    report = manifest["validation"]["site_training"]
    auto: dict[str, Any] = report["auto"]
    scores = {mode: trial["right"] for mode, trial in auto["modes"].items()}
    assert set(scores) == {"head", "last-k", "contrastive"}  # the text model allows all three
    chosen = auto["chosen"]
    assert scores[chosen] == max(scores.values()) and scores[chosen] > auto["production_right"]
    evidence = auto["evidence"]
    assert evidence["better"] and evidence["p_value"] <= evidence["level"] == round(0.1 / 3, 6)
    order = ["head", "last-k", "contrastive"]
    assert all(scores[m] < scores[chosen] for m in order[: order.index(chosen)])  # ties: the quicker
    # The candidate is the winner's, trained on every label: its lineage names that mode, not "auto".
    assert manifest["lineage"]["source"]["mode"] == chosen == report["mode"] == result["report"]["mode"]
    assert manifest["lineage"]["source"]["labels"] == 18 == auto["scored"] and auto["folds"] == 3


@pytest.mark.parametrize("alpha", [0.0, 1.0, -0.1, 2.0])
def test_an_auto_level_outside_zero_to_one_is_refused_with_the_others(alpha: float) -> None:
    from edge_agent.config import config_from_mapping
    from genba.errors import ConfigError

    with pytest.raises(ConfigError) as caught:
        config_from_mapping({"training": {"auto_alpha": alpha, "last_k": 0}})
    assert "training.auto_alpha must be between 0 and 1" in caught.value.problems
    assert "training.last_k must be >= 1" in caught.value.problems
    assert config_from_mapping({"training": {"auto_alpha": 0.05}}).training.auto_alpha == 0.05


@pytest.mark.parametrize(
    ("settings", "problem"),
    [
        ({"auto_folds": 1}, "training.auto_folds must be >= 2"),
        ({"auto_modes": []}, "training.auto_modes must list one or more of head, last-k, contrastive"),
        (
            {"auto_modes": ["head", "pseudo"]},
            "training.auto_modes must list one or more of head, last-k, contrastive",
        ),
    ],
)
def test_auto_folds_and_modes_are_checked(settings: dict[str, Any], problem: str) -> None:
    from edge_agent.config import config_from_mapping
    from genba.errors import ConfigError

    with pytest.raises(ConfigError) as caught:
        config_from_mapping({"training": settings})
    assert caught.value.problems == [problem]


def test_auto_tries_head_and_last_k_unless_told_and_the_level_follows_the_modes_tried() -> None:
    from edge_agent.config import config_from_mapping

    training = config_from_mapping({}).training
    assert (training.auto_modes, training.auto_folds) == (("head", "last-k"), 5)
    told = config_from_mapping({"training": {"auto_modes": ["head"]}}).training
    vectors, targets, centres = _clusters(10)
    wrong = HeadWeights(np.roll(centres, 1, axis=0), np.zeros(3, dtype=np.float32))
    report = choose_mode(AutoInputs(targets=targets, parent=wrong, vectors=vectors), told).report
    assert report["modes"]["last-k"] == {"skipped": "not in [training] auto_modes"}


def test_auto_modes_that_cannot_train_this_model_are_declined_in_one_line() -> None:
    """An image site (head only) told to try only last-k: nothing to compare, a clear refusal."""
    vectors, targets, centres = _clusters(10)
    wrong = HeadWeights(np.roll(centres, 1, axis=0), np.zeros(3, dtype=np.float32))
    with pytest.raises(AutoDeclinedError) as caught:
        choose_mode(
            AutoInputs(targets=targets, parent=wrong, vectors=vectors), TrainingConfig(auto_modes=("last-k",))
        )
    message = str(caught.value)
    assert message.startswith("--mode auto trained nothing: no mode it may try can train this model (")
    assert "head: not in [training] auto_modes; last-k: only head trains this model" in message
    assert "add head to [training] auto_modes" in message and "\n" not in message
    assert caught.value.exit_code == 2
