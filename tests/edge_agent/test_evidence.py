"""The gates' paired, anytime-valid evidence: it holds however often it is checked, and it has power."""

from __future__ import annotations

import numpy as np
import pytest

from edge_agent.evidence import paired_evidence, sampled_evidence

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


# --- sampled evidence: every input both answered, labels only where drawn among disagreements -----


def _sampled(
    rng: np.random.Generator, delta: float, discordant: float, n: int, share: float
) -> list[int | None]:
    """Outcomes of ``n`` inputs in order: drawn disagreements carry theirs, all else None."""
    first, second = _pairs(rng, delta, discordant, n)
    x = first.astype(int) - second.astype(int)
    drawn = (x != 0) & (rng.random(n) < share)
    return [int(v) if d else None for v, d in zip(x, drawn, strict=True)]


@pytest.mark.parametrize("share", [0.25, 1.0])
def test_sampled_evidence_at_the_margin_is_established_at_most_alpha_of_the_time(share: float) -> None:
    rng = np.random.default_rng(19)
    trials = 400
    promoted = sum(
        sampled_evidence(_sampled(rng, -0.01, 0.1, 3000, share), share=share, threshold_pts=-1.0, alpha=ALPHA)
        .established
        for _ in range(trials)
    )
    assert promoted / trials <= ALPHA + 3 * np.sqrt(ALPHA * (1 - ALPHA) / trials)


def test_sampled_evidence_shows_a_better_candidate_from_few_labels_where_the_audit_sample_cannot() -> None:
    rng = np.random.default_rng(23)
    shown = [
        sampled_evidence(_sampled(rng, 0.03, 0.08, 4000, 0.5), share=0.5, threshold_pts=-1.0, alpha=ALPHA)
        for _ in range(40)
    ]
    assert sum(e.established for e in shown) >= 36
    assert all(e.labels < 250 for e in shown)  # ~0.5 x 8% x 4000 drawn labels, against 4000 inputs
    assert all(e.items == 4000 and e.sample_share == 0.5 for e in shown)
    # The same number of labels drawn at random (an audit sample) shows nothing like it.
    audit = [
        paired_evidence(*_pairs(rng, 0.03, 0.08, 160), threshold_pts=-1.0, alpha=ALPHA) for _ in range(40)
    ]
    assert sum(e.established for e in audit) < 20


def test_sampled_evidence_weights_each_label_by_the_inverse_of_its_draw_chance() -> None:
    # 100 inputs, 2 drawn disagreements both won by the candidate, drawn at 0.5: +4 points.
    outcomes: list[int | None] = [None] * 100
    outcomes[10] = outcomes[60] = 1
    evidence = sampled_evidence(outcomes, share=0.5, threshold_pts=0.0, alpha=ALPHA)
    assert (evidence.labels, evidence.first_only, evidence.second_only, evidence.items) == (2, 2, 0, 100)
    assert evidence.delta_pts == pytest.approx(4.0)
    # With every disagreement drawn it is the paired test itself.
    first = np.random.default_rng(5).random(300) < 0.8
    second = np.random.default_rng(6).random(300) < 0.75
    full = paired_evidence(first, second, threshold_pts=-1.0, alpha=ALPHA)
    x = first.astype(int) - second.astype(int)
    drawn = sampled_evidence([int(v) if v else None for v in x], share=1.0, threshold_pts=-1.0, alpha=ALPHA)
    assert (drawn.delta_pts, drawn.lower_bound_pts, drawn.established) == (
        full.delta_pts, full.lower_bound_pts, full.established
    )


@pytest.mark.parametrize(
    ("outcomes", "share", "message"),
    [([1, None], 0.0, "sample share"), ([1, None], 1.5, "sample share"), ([2, None], 0.5, "-1, 0 or 1")],
)
def test_sampled_evidence_refuses_what_it_cannot_weigh(
    outcomes: list[int | None], share: float, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        sampled_evidence(outcomes, share=share, threshold_pts=0.0, alpha=ALPHA)
