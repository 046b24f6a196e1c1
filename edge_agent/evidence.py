"""Evidence that one model is more accurate than another by a margin, valid however often it is checked.

The gates compare candidate and production on the same labelled inputs (paired): on input *i*,
``x_i = [candidate right] - [production right]``, in {-1, 0, 1}, and the accuracy difference is
the mean of ``x``. The gates are evaluated every few seconds while labels arrive, and a candidate
advances the first time they pass, so a fixed-sample test (or a plain confidence interval) would
be checked over and over until chance passed it. Instead the evidence is a test martingale
(betting; Waudby-Smith & Ramdas, "Estimating means of bounded random variables by betting",
JRSS-B 2024; Ville's inequality): against the hypothesis "the mean difference is at most
``mu0``", a bettor who stakes a fraction ``c`` of their wealth on each label's ``x_i - mu0``,

    K_t(mu0) = prod_{i <= t} (1 + c (x_i - mu0) / (1 + mu0)),

has wealth whose expectation never grows while the hypothesis holds, so the chance that it *ever*
reaches ``1 / alpha`` is at most ``alpha``, however many labels come and however often it is
looked at. A fixed mixture over a few stakes (:data:`STAKES`, equal weights; scipy and
statsmodels have no always-valid sequential test for paired proportions) keeps the bet good
for small and large differences alike. Each factor is positive (``x_i >= -1``) and decreases
as ``mu0`` grows, so the set of rejected ``mu0`` is an interval below a *lower confidence bound*
``L_t``: "the candidate is at least L_t points more accurate", with confidence ``1 - alpha`` at
every moment at once, so the highest bound so far is valid too, and the test is passed for good
once it exceeded the threshold. Both bounds are reported in every decision with the evidence:
labels, discordant pairs, observed difference.

Only inputs the two models answer *differently* can have ``x_i != 0``; where they agree,
``x_i = 0`` whatever the label. So the gates need labels only where the models disagree: the agent
draws each held-out input both answered differently with a known chance ``q``
(``gates.disagreement_share``) and asks for its label, and every input both answered contributes
``x~_i = x_i / q`` if drawn and labelled, ``0`` otherwise. ``E[x~_i] = E[x_i]``, whatever the
traffic (inverse-probability weighting with a probability set by design, not estimated), so the
same martingale runs on ``x~`` in ``[-1/q, 1/q]`` (:func:`sampled_evidence`, with the stakes
divided by ``1/q + mu0``), every input in the order it was served. Agreements, which are most of
the traffic, cost no label and still count.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np

#: The stakes the mixture bets with: fractions of wealth (divided by 1 + mu0) per label.
STAKES = (0.3, 0.55, 0.8)
#: Resolution of the reported lower bound, in points.
BOUND_RESOLUTION_PTS = 0.05


@dataclass(frozen=True)
class PairedEvidence:
    """What labelled inputs say about ``first`` against ``second`` (candidate against production)."""

    labels: int  # inputs both models answered and an operator labelled
    first_only: int  # the first model right, the second wrong
    second_only: int  # the second right, the first wrong
    delta_pts: float | None  # observed accuracy difference, first minus second, in points
    lower_bound_pts: float | None  # anytime-valid (1 - alpha) lower bound on it, from all labels now
    best_lower_bound_pts: float | None  # the highest that bound has been over the sequence
    threshold_pts: float  # the difference the test must show to be exceeded
    alpha: float
    established: bool  # the bound exceeded the threshold at some point of the sequence (valid)
    established_at: int | None = None  # the label (sampled: the input), 1-based, at which it first did
    # Sampled evidence (sampled_evidence): inputs in the sequence, and the chance a disagreement was drawn
    items: int | None = None
    sample_share: float | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def paired_evidence(
    first_correct: Sequence[bool], second_correct: Sequence[bool], *, threshold_pts: float, alpha: float
) -> PairedEvidence:
    """Whether ``first`` is more accurate than ``second`` by more than ``threshold_pts`` (may be
    negative: a non-inferiority margin), from paired outcomes in the order the labels came."""
    if len(first_correct) != len(second_correct):
        raise ValueError("paired outcomes must have the same length")
    _check(threshold_pts, alpha)
    x = np.asarray(first_correct, dtype=np.float64) - np.asarray(second_correct, dtype=np.float64)
    return _evidence(x, int(np.sum(x > 0)), int(np.sum(x < 0)), int(x.size), 1.0, threshold_pts, alpha)


def sampled_evidence(
    outcomes: Sequence[int | None], *, share: float, threshold_pts: float, alpha: float
) -> PairedEvidence:
    """The same test on every input both models answered, in the order they were served, where only
    a random share of the disagreements was labelled: ``outcomes[i]`` is ``[first right] - [second
    right]`` (-1, 0 or 1) for an input drawn and labelled, None for one not drawn (an agreement, or a
    disagreement the draw passed over). Each drawn outcome weighs ``1 / share``: unbiased for the
    accuracy difference over all the inputs."""
    if not 0.0 < share <= 1.0:
        raise ValueError(f"the sample share must be above 0 and at most 1, not {share}")
    _check(threshold_pts, alpha)
    drawn = np.asarray([o for o in outcomes if o is not None], dtype=np.float64)
    if np.any(np.abs(drawn) > 1):
        raise ValueError("a paired outcome is -1, 0 or 1")
    x = np.asarray([0.0 if o is None else o / share for o in outcomes], dtype=np.float64)
    evidence = _evidence(
        x, int(np.sum(drawn > 0)), int(np.sum(drawn < 0)), int(drawn.size), 1.0 / share, threshold_pts, alpha
    )
    return replace(evidence, items=int(x.size), sample_share=share)


def _check(threshold_pts: float, alpha: float) -> None:
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be between 0 and 1, not {alpha}")
    if not -100.0 < threshold_pts < 100.0:
        raise ValueError(f"the threshold must be between -100 and 100 points, not {threshold_pts}")


def _evidence(
    x: np.ndarray, first_only: int, second_only: int, labels: int, scale: float, threshold_pts: float,
    alpha: float,
) -> PairedEvidence:  # fmt: skip
    """The test on ``x`` in ``[-scale, scale]`` (``labels`` of them labelled) against ``threshold_pts``."""
    if not x.size:
        return PairedEvidence(labels, first_only, second_only, None, None, None, threshold_pts, alpha, False)
    barrier = math.log(1.0 / alpha)
    crossed = np.flatnonzero(_log_wealth(x, threshold_pts / 100.0, scale) >= barrier)
    return PairedEvidence(
        labels=labels,
        first_only=first_only,
        second_only=second_only,
        delta_pts=round(float(x.mean()) * 100.0, 2),
        lower_bound_pts=_lower_bound_pts(x, barrier, scale, lambda w: float(w[-1])),
        best_lower_bound_pts=_lower_bound_pts(x, barrier, scale, lambda w: float(w.max())),
        threshold_pts=threshold_pts,
        alpha=alpha,
        established=bool(crossed.size),
        established_at=int(crossed[0]) + 1 if crossed.size else None,
    )


def _log_wealth(x: np.ndarray, mu0: float, scale: float = 1.0) -> np.ndarray:
    """The stake mixture's log wealth after each outcome (in ``[-scale, scale]``), betting against a
    mean difference ``mu0``."""
    stakes = np.asarray(STAKES) / (scale + mu0)
    log_wealth = np.cumsum(np.log1p(np.outer(x - mu0, stakes)), axis=0)  # labels x stakes
    top = log_wealth.max(axis=1)
    return np.asarray(top + np.log(np.mean(np.exp(log_wealth - top[:, None]), axis=1)))


def _lower_bound_pts(
    x: np.ndarray, barrier: float, scale: float, summary: Callable[[np.ndarray], float]
) -> float:
    """The largest ``mu0`` (points, to BOUND_RESOLUTION_PTS) whose wealth, summarised (now, or its
    highest), reached the barrier; -100 if none (a difference is never below -100 points). The
    wealth decreases in mu0: bisection."""
    low, high = -1.0, 0.999
    if summary(_log_wealth(x, low + 1e-9, scale)) < barrier:
        return -100.0
    while (high - low) * 100.0 > BOUND_RESOLUTION_PTS:
        middle = (low + high) / 2.0
        if summary(_log_wealth(x, middle, scale)) >= barrier:
            low = middle
        else:
            high = middle
    return round(low * 100.0, 2)
