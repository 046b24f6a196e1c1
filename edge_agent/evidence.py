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
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
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
    established_at: int | None = None  # the label (1-based, in order) at which it first did

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def paired_evidence(
    first_correct: Sequence[bool], second_correct: Sequence[bool], *, threshold_pts: float, alpha: float
) -> PairedEvidence:
    """Whether ``first`` is more accurate than ``second`` by more than ``threshold_pts`` (may be
    negative: a non-inferiority margin), from paired outcomes in the order the labels came."""
    if len(first_correct) != len(second_correct):
        raise ValueError("paired outcomes must have the same length")
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be between 0 and 1, not {alpha}")
    if not -100.0 < threshold_pts < 100.0:
        raise ValueError(f"the threshold must be between -100 and 100 points, not {threshold_pts}")
    x = np.asarray(first_correct, dtype=np.float64) - np.asarray(second_correct, dtype=np.float64)
    first_only, second_only = int(np.sum(x > 0)), int(np.sum(x < 0))
    if not x.size:
        return PairedEvidence(0, 0, 0, None, None, None, threshold_pts, alpha, False)
    barrier = math.log(1.0 / alpha)
    crossed = np.flatnonzero(_log_wealth(x, threshold_pts / 100.0) >= barrier)
    return PairedEvidence(
        labels=int(x.size),
        first_only=first_only,
        second_only=second_only,
        delta_pts=round(float(x.mean()) * 100.0, 2),
        lower_bound_pts=_lower_bound_pts(x, barrier, lambda w: float(w[-1])),
        best_lower_bound_pts=_lower_bound_pts(x, barrier, lambda w: float(w.max())),
        threshold_pts=threshold_pts,
        alpha=alpha,
        established=bool(crossed.size),
        established_at=int(crossed[0]) + 1 if crossed.size else None,
    )


def _log_wealth(x: np.ndarray, mu0: float) -> np.ndarray:
    """The stake mixture's log wealth after each label, betting against a mean difference ``mu0``."""
    stakes = np.asarray(STAKES) / (1.0 + mu0)
    log_wealth = np.cumsum(np.log1p(np.outer(x - mu0, stakes)), axis=0)  # labels x stakes
    top = log_wealth.max(axis=1)
    return np.asarray(top + np.log(np.mean(np.exp(log_wealth - top[:, None]), axis=1)))


def _lower_bound_pts(x: np.ndarray, barrier: float, summary: Callable[[np.ndarray], float]) -> float:
    """The largest ``mu0`` (points, to BOUND_RESOLUTION_PTS) whose wealth, summarised (now, or its
    highest), reached the barrier; -100 if none. The wealth decreases in mu0: bisection."""
    low, high = -1.0, 0.999
    if summary(_log_wealth(x, low + 1e-9)) < barrier:
        return -100.0
    while (high - low) * 100.0 > BOUND_RESOLUTION_PTS:
        middle = (low + high) / 2.0
        if summary(_log_wealth(x, middle)) >= barrier:
            low = middle
        else:
            high = middle
    return round(low * 100.0, 2)
