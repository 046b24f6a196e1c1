"""Differential privacy as IT and every site compute it: the sites' noise shares and the accountant.

Genba's DP is distributed. In a round of a differentially private run each site clips its update
(the change it made to the global tensors, one L2 norm over all of them) to ``C`` and adds Gaussian
noise of standard deviation ``z * C / sqrt(F)`` to it *before* SecAgg+ masks it, where ``z`` is the
run's noise multiplier and ``F`` the privacy floor (:data:`genba.protocol.MIN_SITES_PER_ROUND`, the
fewest sites a round is ever aggregated with). The server learns only the sum of ``k >= F`` noised
updates; its noise has standard deviation ``z * C * sqrt(k / F) >= z * C``, so nobody, the server
included, ever sees an un-noised sum. Every site weighs the same (the average moves by the sum over
``k``, a count the server knows anyway).

Neighbouring relation: *zero-out, per round*. Two federations are neighbours when, in one round,
one site's clipped update is replaced by zeros (as if that site had had no data); everything else,
including which sites took part, is the same. Participation is not what DP protects here: SecAgg+
shows the server which sites answered, so add/remove-one-site would promise nothing more. The sum's
sensitivity under zero-out is ``C``, so each round is a Gaussian mechanism of multiplier ``z`` (more
when more than ``F`` sites take part; counted as ``z``, conservatively). Replace-one (a site's update
swapped for any other of norm at most ``C``) moves the sum by ``2 C``: read the same run as a
mechanism of multiplier ``z / 2``.

What the guarantee does not survive, stated plainly:

* Sites that collude with the server can subtract their own noise: with ``c`` of them among ``k``,
  the honest noise left has multiplier ``z * sqrt((k - c) / F)`` (``z * sqrt(2/3)`` for one colluder
  in a round of three).
* A site that does not add its share (a modified site) weakens every round it takes part in the
  same way; Genba's own sites add it by construction (the ClientApp is pinned).
* A server that lies to SecAgg+ about who dropped out (Flower's SecAgg+ has no consistency check)
  can unmask two sums that differ by one site: that site's update with only its own share of noise
  (multiplier ``z / sqrt(F)``). Out of scope, as in ``docs/SECURITY.md``.
* Floating-point Gaussian sampling is not exactly Gaussian in its lowest bits (Mironov, 2012);
  SecAgg+'s quantisation to its grid drops those bits but is not a proof that nothing is left.

Accounting: a round is a full-participation Gaussian mechanism; opacus's RDP accountant (sample
rate 1) composes rounds and converts to (epsilon, delta). IT reports a run's epsilon; each site
composes every round it ever contributed to, across runs, into its lifetime epsilon at
:data:`SITE_DELTA` (RDP composes over any sequence of rounds). Imports no Flower and no server code:
the ServerApp and the site's ClientApp both use this module.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from genba.protocol import MIN_SITES_PER_ROUND

#: The delta a site's lifetime epsilon is stated at, whatever delta a run announces.
SITE_DELTA = 1e-5
#: SecAgg+'s clipping range as Genba runs it (Flower's default): quantised values lie in [-8, 8].
SECAGG_CLIPPING_RANGE = 8.0
#: Headroom kept for the noise inside SecAgg+'s range, in noise standard deviations: a coordinate
#: lands outside with probability 2e-9 (a site that draws one declines the round rather than clip).
RANGE_SIGMAS = 6.0
#: SecAgg+'s quantisation step may be at most this share of a site's noise std: stochastic rounding
#: then adds at most 0.25% to the noise variance.
MAX_STEP_OVER_NOISE = 0.1


def site_noise_std(noise_multiplier: float, clipping_norm: float, floor: int = MIN_SITES_PER_ROUND) -> float:
    """The standard deviation of the noise one site adds to its clipped update."""
    return noise_multiplier * clipping_norm / math.sqrt(floor)


def aggregate_noise_std(
    noise_multiplier: float, clipping_norm: float, sites: int, floor: int = MIN_SITES_PER_ROUND
) -> float:
    """The noise std on the average of ``sites`` noised updates (every site weighs the same)."""
    return site_noise_std(noise_multiplier, clipping_norm, floor) * math.sqrt(sites) / sites


def epsilon(noise_multiplier: float, rounds: int, delta: float) -> float:
    """The epsilon of ``rounds`` full-participation Gaussian rounds at ``delta`` (RDP accounting)."""
    return epsilon_of_rounds([noise_multiplier] * max(rounds, 0), delta)


def epsilon_of_rounds(noise_multipliers: Sequence[float], delta: float) -> float:
    """The epsilon of one Gaussian round per noise multiplier given, composed, at ``delta``."""
    if not noise_multipliers:
        return 0.0
    from opacus.accountants import RDPAccountant

    accountant = RDPAccountant()
    for noise_multiplier in noise_multipliers:
        accountant.step(noise_multiplier=float(noise_multiplier), sample_rate=1.0)
    return float(accountant.get_epsilon(delta))


def range_problem(
    largest: float, noise_std: float, clipping_norm: float, *, clipping_range: float, scale: float = 1.0
) -> str | None:
    """Why noised values could leave SecAgg+'s range, or None.

    ``largest``: the largest absolute value of the global tensors; a clipped update moves any one
    of them by at most ``clipping_norm``; ``scale``: what SecAgg+ multiplies values by before it
    quantises them (the site's weight over ``max_weight``).
    """
    reach = (largest + clipping_norm + RANGE_SIGMAS * noise_std) * scale
    if reach <= clipping_range:
        return None
    return (
        f"noise of std {noise_std:.3g} on values up to {largest:.3g} (clipped to {clipping_norm:.3g}) could "
        f"leave SecAgg+'s range of +/-{clipping_range:g}: lower --dp-noise or --dp-clip"
    )


def quantisation_problem(
    noise_std: float, *, clipping_range: float, quantization_range: int, scale: float = 1.0
) -> str | None:
    """Why SecAgg+'s quantisation is too coarse for this noise, or None."""
    step = 2 * clipping_range / quantization_range / scale
    if step <= MAX_STEP_OVER_NOISE * noise_std:
        return None
    return (
        f"SecAgg+'s quantisation step ({step:.3g}) is coarse next to the noise's std ({noise_std:.3g}): "
        "raise --dp-noise or --dp-clip"
    )
