"""The gates' paired, anytime-valid evidence: it holds however often it is checked, and it has power."""

from __future__ import annotations

import numpy as np
import pytest

from edge_agent.evidence import paired_evidence

ALPHA = 0.05


def _pairs(
    rng: np.random.Generator, delta: float, discordant: float, n: int
) -> tuple[np.ndarray, np.ndarray]:
    """Paired outcomes whose true accuracy difference is ``delta`` with ``discordant`` pairs."""
    base = rng.random(n) < 0.8
    u = rng.random(n)
    first_only = u < (discordant + delta) / 2
    second_only = (u >= (discordant + delta) / 2) & (u < discordant)
    first = np.where(first_only, True, np.where(second_only, False, base))
    second = np.where(first_only, False, np.where(second_only, True, base))
    return first, second


def _today_rule_promotes(first: np.ndarray, second: np.ndarray, min_labels: int = 30) -> bool:
    """The gate before this change: ``delta >= 0`` over the labels so far, checked after every label."""
    diff = np.cumsum(first.astype(int) - second.astype(int))
    return bool(np.any(diff[min_labels - 1 :] >= 0))


def test_a_candidate_exactly_at_the_margin_is_promoted_at_most_alpha_of_the_time_however_often_checked() -> (
    None
):
    rng = np.random.default_rng(7)
    trials = 600
    promoted = sum(
        paired_evidence(*_pairs(rng, -0.02, 0.12, 400), threshold_pts=-2.0, alpha=ALPHA).established
        for _ in range(trials)
    )
    assert promoted / trials <= ALPHA + 3 * np.sqrt(ALPHA * (1 - ALPHA) / trials)


def test_a_lucky_moment_promotes_a_worse_candidate_under_todays_rule_and_not_under_the_evidence() -> None:
    rng = np.random.default_rng(11)
    trials = 300
    today = evidence = 0
    for _ in range(trials):
        first, second = _pairs(rng, -0.03, 0.12, 300)
        today += _today_rule_promotes(first, second)
        evidence += paired_evidence(first, second, threshold_pts=-2.0, alpha=ALPHA).established
    assert today / trials > 0.3  # the attack works on the old gate: it can fail
    assert evidence / trials <= 0.02


def test_a_clearly_better_candidate_is_shown_better_and_its_bound_sits_below_what_was_seen() -> None:
    rng = np.random.default_rng(3)
    shown = [
        paired_evidence(*_pairs(rng, 0.05, 0.08, 600), threshold_pts=0.0, alpha=ALPHA) for _ in range(50)
    ]
    assert sum(e.established for e in shown) >= 45
    for e in shown:
        assert (
            e.lower_bound_pts is not None and e.best_lower_bound_pts is not None and e.delta_pts is not None
        )
        assert e.lower_bound_pts <= e.best_lower_bound_pts and e.lower_bound_pts < e.delta_pts
        assert e.established == (e.best_lower_bound_pts >= e.threshold_pts)


def test_the_evidence_counts_the_discordant_pairs_and_grows_with_them() -> None:
    first = [True] * 40 + [False] * 5 + [True] * 55
    second = [False] * 40 + [True] * 5 + [True] * 55
    evidence = paired_evidence(first, second, threshold_pts=-2.0, alpha=ALPHA)
    assert (evidence.labels, evidence.first_only, evidence.second_only, evidence.delta_pts) == (
        100,
        40,
        5,
        35.0,
    )
    weaker = paired_evidence(first[:50], second[:50], threshold_pts=-2.0, alpha=ALPHA)
    stricter = paired_evidence(first, second, threshold_pts=-2.0, alpha=0.001)
    assert evidence.established and weaker.established
    assert stricter.lower_bound_pts is not None and evidence.lower_bound_pts is not None
    assert stricter.lower_bound_pts < evidence.lower_bound_pts


def test_no_pairs_and_ties_only_show_nothing() -> None:
    assert paired_evidence([], [], threshold_pts=-2.0, alpha=ALPHA).established is False
    ties = paired_evidence([True, False] * 200, [True, False] * 200, threshold_pts=-2.0, alpha=ALPHA)
    assert ties.first_only == ties.second_only == 0 and ties.delta_pts == 0.0
    assert ties.established  # 400 ties: shown less than 2 points behind
    assert not paired_evidence([True] * 400, [True] * 400, threshold_pts=0.0, alpha=ALPHA).established


@pytest.mark.parametrize(
    ("first", "second", "threshold", "alpha", "message"),
    [
        ([True], [True, False], 0.0, ALPHA, "same length"),
        ([True], [False], 0.0, 1.0, "alpha"),
        ([True], [False], -100.0, ALPHA, "threshold"),
    ],
)
def test_bad_arguments_are_refused(
    first: list[bool], second: list[bool], threshold: float, alpha: float, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        paired_evidence(first, second, threshold_pts=threshold, alpha=alpha)
