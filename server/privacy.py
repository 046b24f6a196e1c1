"""Differential privacy for a federated run, as IT sets it: the settings and the run's epsilon.

The noise is distributed (:mod:`genba.privacy` has the whole argument). Each site clips its update
to ``clipping_norm`` (L2), adds Gaussian noise of std ``noise_multiplier * clipping_norm / sqrt(F)``
to it (``F``: the privacy floor, 3) and only then lets SecAgg+ mask it, so the server never sees an
un-noised sum: any round it can unmask has at least ``F`` sites, whose shares add up to at least
``noise_multiplier * clipping_norm`` on the sum. The server adds no noise of its own.

Neighbouring relation: zero-out per round (one site's clipped update in one round replaced by
zeros; which sites took part is public under SecAgg+ anyway). The sum's sensitivity is
``clipping_norm``, so a round is a Gaussian mechanism of multiplier ``noise_multiplier``; for
replace-one (sensitivity ``2 * clipping_norm``) read it as ``noise_multiplier / 2``. Sites that
collude with the server remove their own shares and weaken the guarantee (multiplier
``z * sqrt((k - c) / F)`` with ``c`` colluders among ``k`` sites). Every site takes part in every
round (no sampling), so a run composes its aggregated rounds; opacus's RDP accountant turns that into
(epsilon, delta). Each site also accounts for itself, against its own lifetime budget.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from genba.errors import UsageError
from genba.privacy import SECAGG_CLIPPING_RANGE, epsilon, range_problem, site_noise_std

__all__ = ["PrivacyConfig", "epsilon"]


@dataclass(frozen=True)
class PrivacyConfig:
    noise_multiplier: float
    clipping_norm: float
    delta: float = 1e-5

    def __post_init__(self) -> None:
        if not (math.isfinite(self.noise_multiplier) and self.noise_multiplier > 0):
            raise UsageError("--dp-noise must be greater than 0 (the noise multiplier, e.g. 1.0)")
        if not (math.isfinite(self.clipping_norm) and self.clipping_norm > 0):
            raise UsageError(
                "--dp-clip must be greater than 0 (the L2 norm each site's update is clipped to)"
            )
        if not 0 < self.delta < 1:
            raise UsageError("--dp-delta must be between 0 and 1 (e.g. 1e-5)")
        # The global tensors' own size is checked by every site; noise and clipping alone must fit.
        problem = range_problem(
            0.0, self.site_noise_std, self.clipping_norm, clipping_range=SECAGG_CLIPPING_RANGE
        )
        if problem:
            raise UsageError(
                f"--dp-noise {self.noise_multiplier:g} with --dp-clip {self.clipping_norm:g}: {problem}"
            )

    @property
    def site_noise_std(self) -> float:
        """The noise std each site adds to its clipped update."""
        return site_noise_std(self.noise_multiplier, self.clipping_norm)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)
