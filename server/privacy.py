"""Site-level differential privacy for a federated run: the settings and the RDP accountant.

Each site clips its update (the change it made to the global head) to ``clipping_norm`` in L2
before SecAgg+ masks it; the server adds Gaussian noise of standard deviation
``noise_multiplier * clipping_norm / min_sites`` to the unmasked average. Noise on the sum is
compatible with SecAgg+ because the server only ever sees the sum. Under DP every site weighs
the same (one site moves the average by at most ``clipping_norm / sites``), and since a round is
aggregated only with at least ``min_sites`` sites, the noise is never smaller than the
guarantee assumes. Every site takes part in every round (no sampling), so the run composes
``rounds`` Gaussian mechanisms; opacus's RDP accountant turns that into (epsilon, delta).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from genba.errors import UsageError


@dataclass(frozen=True)
class PrivacyConfig:
    noise_multiplier: float
    clipping_norm: float
    delta: float = 1e-5

    def __post_init__(self) -> None:
        if not self.noise_multiplier > 0:
            raise UsageError("--dp-noise must be greater than 0 (the noise multiplier, e.g. 1.0)")
        if not self.clipping_norm > 0:
            raise UsageError(
                "--dp-clip must be greater than 0 (the L2 norm each site's update is clipped to)"
            )
        if not 0 < self.delta < 1:
            raise UsageError("--dp-delta must be between 0 and 1 (e.g. 1e-5)")

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def epsilon(noise_multiplier: float, rounds: int, delta: float) -> float:
    """The epsilon of ``rounds`` full-participation Gaussian rounds at ``delta`` (RDP accounting)."""
    if rounds <= 0:
        return 0.0
    from opacus.accountants import RDPAccountant

    accountant = RDPAccountant()
    for _ in range(rounds):
        accountant.step(noise_multiplier=noise_multiplier, sample_rate=1.0)
    return float(accountant.get_epsilon(delta))
