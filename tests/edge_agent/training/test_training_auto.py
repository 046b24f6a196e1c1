"""--mode auto: each mode tried on labels it never trained on; the winner trains, or nothing does."""

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


def test_a_head_that_beats_production_on_the_validation_labels_is_chosen_and_says_why() -> None:
    vectors, targets, centres = _clusters(10)
    wrong = HeadWeights(np.roll(centres, 1, axis=0), np.zeros(3, dtype=np.float32))  # every answer wrong
    choice = choose_mode(AutoInputs(targets=targets, parent=wrong, vectors=vectors), TrainingConfig())
    report = choice.report
    assert choice.mode == "head" and report["chosen"] == "head"
    assert report["validation_size"] == 6 and report["production_right"] == 0
    assert report["modes"]["head"]["right"] == 6
    assert "only head trains this model" in report["modes"]["last-k"]["skipped"]
    # 6 of 6 discordant pairs to head: p = 1/64, below 0.1 (one mode tried, no correction)
    evidence = report["evidence"]
    assert (evidence["mode_only"], evidence["production_only"], evidence["level"]) == (6, 0, 0.1)
    assert evidence["p_value"] == round(1 / 64, 6) and evidence["better"] is True
    assert report["why"] == (
        "head answered 6 of 6 validation labels right, production 0: 6 to 0 where only one was right "
        "(p = 0.0156 <= 0.1)"
    )


def test_a_mode_only_a_little_ahead_on_few_labels_is_declined_as_luck() -> None:
    """Production calls every class-2 report something else. On 6 validation labels head wins
    2 to 0 where only one is right (p = 0.25): declined. With 30 labels a class the same flaw
    shows on 6 validation labels of class 2 (p = 1/64): head trains."""

    def production(centres: np.ndarray) -> HeadWeights:
        return HeadWeights(np.concatenate([centres[:2], -centres[2:]]), np.zeros(3, dtype=np.float32))

    vectors, targets, centres = _clusters(10)
    with pytest.raises(AutoDeclinedError) as caught:
        choose_mode(
            AutoInputs(targets=targets, parent=production(centres), vectors=vectors), TrainingConfig()
        )
    message = str(caught.value)
    assert "(4 right; best head, 6; where only one was right, head 2 and production 0, p = 0.25" in message
    assert "needs <= 0.1" in message and "\n" not in message and caught.value.exit_code == 2

    vectors, targets, centres = _clusters(30)
    choice = choose_mode(
        AutoInputs(targets=targets, parent=production(centres), vectors=vectors), TrainingConfig()
    )
    assert choice.mode == "head" and choice.report["evidence"]["mode_only"] == 6


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
    assert "6 validation labels do not show any mode better than production (6 right; best head, 6" in message
    assert "label more items" in message and "\n" not in message and caught.value.exit_code == 2


def test_too_few_labels_to_hold_out_train_nothing() -> None:
    vectors, targets, centres = _clusters(2)
    wrong = HeadWeights(np.roll(centres, 1, axis=0), np.zeros(3, dtype=np.float32))
    with pytest.raises(AutoDeclinedError) as caught:
        choose_mode(AutoInputs(targets=targets, parent=wrong, vectors=vectors), TrainingConfig())
    assert "6 labels leave none to judge a mode on" in str(caught.value)


def test_auto_tries_every_mode_on_the_site_and_its_winner_is_the_signed_candidate(
    st_site: Callable[..., SiteFolder], tmp_path: Path
) -> None:
    # Half the 18 labels judge the modes: 9 validation labels can show a mode better than the
    # random production head (a fifth, 3 labels, never could at the 0.1 level).
    site = st_site(**CONTRASTIVE, validation_fraction=0.5)
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
    assert manifest["lineage"]["source"]["labels"] == 18 == auto["validation_size"] + auto["train_size"]


@pytest.mark.parametrize("alpha", [0.0, 1.0, -0.1, 2.0])
def test_an_auto_level_outside_zero_to_one_is_refused_with_the_others(alpha: float) -> None:
    from edge_agent.config import config_from_mapping
    from genba.errors import ConfigError

    with pytest.raises(ConfigError) as caught:
        config_from_mapping({"training": {"auto_alpha": alpha, "last_k": 0}})
    assert "training.auto_alpha must be between 0 and 1" in caught.value.problems
    assert "training.last_k must be >= 1" in caught.value.problems
    assert config_from_mapping({"training": {"auto_alpha": 0.05}}).training.auto_alpha == 0.05
