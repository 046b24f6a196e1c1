"""Distributed differential privacy at the site: its share of the noise, and its lifetime ε budget.

In a round of a differentially private run (the server's fit config carries ``dp-noise``),
:func:`distributed_noise_mod` sits between ``secure_aggregation_mod`` and ``dp_clipping_mod`` in the
ClientApp: it receives the site's update after Flower's ``fixedclipping_mod`` clipped it, adds this
site's share of the Gaussian noise (std ``z * C / sqrt(F)``, see :mod:`genba.privacy`) and hands
the noised update to SecAgg+, which masks it. Before the site trains at all it checks:

* the settings the server announced: finite and positive, and the norm Flower clips to is the one
  the noise is calibrated to. The floor ``F`` is the site's own
  (:data:`genba.protocol.MIN_SITES_PER_ROUND`), never a count the server sends, so no server can
  talk a site into less noise than the floor calibration needs;
* SecAgg+'s grid, from the setup this site took part in: the noised values must stay inside its
  clipping range (with 6 σ of headroom) and its quantisation step must be fine next to the noise;
* its lifetime budget: every round the site contributes to is recorded in its hash-chained audit
  log (``dp_round_spent``: run, round, noise multiplier, the lifetime ε after it), and a round that
  would take the lifetime ε (every recorded round plus this one, RDP-composed at δ = 1e-5) past
  ``[federation] epsilon_budget`` in ``agent.toml`` is declined.

A declined round is audited (``federated_round_refused``, step ``privacy``, one line the operator
can read) and raises :class:`PrivacyDeclinedError` before anything is masked: the server gets a
refusal and nothing else. A round is counted as spent as soon as its noised update is handed to
SecAgg+, whether or not the server later unmasks it.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np

from edge_agent.federation.budget import (
    _EVERY,
    REFUSED_EVENT,
    REFUSED_STEP,
    SPENT_EVENT,
    PrivacyDeclinedError,
    epsilon_budget,
)
from edge_agent.site import SiteFolder
from edge_agent.store import SiteStore
from genba.privacy import SITE_DELTA, quantisation_problem, range_problem, site_noise_std

#: What the server announces a DP round with (``server.server_app._privacy_fit_config``), and the
#: key Flower's ``fixedclipping_mod`` clips to.
NOISE_KEY, CLIP_KEY, DELTA_KEY, FLOWER_CLIP_KEY = "dp-noise", "dp-clip", "dp-delta", "clipping_norm"
#: Where Flower's ``secaggplus_mod`` keeps this site's SecAgg+ state between stages.
SECAGG_STATE = "secaggplus_state"
SECAGG_CONFIGS = "secaggplus_configs"


@dataclass(frozen=True)
class RoundPrivacy:
    """A DP round's settings as the server announced them, checked by the site."""

    noise_multiplier: float
    clipping_norm: float
    delta: float

    @classmethod
    def announced(cls, config: Mapping[str, Any]) -> RoundPrivacy:
        for key in (NOISE_KEY, CLIP_KEY, DELTA_KEY):
            value = config.get(key)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < math.inf:
                raise PrivacyDeclinedError(
                    f"the server announced {key} = {value!r}; this site needs a number > 0"
                )
        if float(config[DELTA_KEY]) >= 1:
            raise PrivacyDeclinedError(
                f"the server announced {DELTA_KEY} = {config[DELTA_KEY]!r}; it must be < 1"
            )
        if config.get(FLOWER_CLIP_KEY) != config[CLIP_KEY]:
            raise PrivacyDeclinedError(
                f"the server asks to clip to {config.get(FLOWER_CLIP_KEY)!r} but calibrates the noise to "
                f"{config[CLIP_KEY]!r}; this site clips to the norm its noise is calibrated to"
            )
        return cls(float(config[NOISE_KEY]), float(config[CLIP_KEY]), float(config[DELTA_KEY]))

    @property
    def noise_std(self) -> float:
        """This site's share: calibrated to the site's own privacy floor."""
        return site_noise_std(self.noise_multiplier, self.clipping_norm)


@dataclass(frozen=True)
class SecAggGrid:
    """What SecAgg+ does to this site's values: clips them to ``clipping_range`` after multiplying
    them by ``scale`` (the site's weight, 1, over ``max_weight``, as SecAgg+ rounds it), then quantises
    them to ``quantization_range`` steps."""

    clipping_range: float
    quantization_range: int
    scale: float

    @classmethod
    def of(cls, context: Any) -> SecAggGrid:
        state = context.state.config_records.get(SECAGG_STATE) or {}
        try:
            clipping_range, levels = float(state["clipping_range"]), int(state["target_range"])
            ratio = 1.0 / float(state["max_weight"])
        except (KeyError, TypeError, ValueError, ZeroDivisionError) as exc:
            raise PrivacyDeclinedError(
                "no SecAgg+ setup for this round; a DP update is sent only masked"
            ) from exc
        scale = round(ratio * levels) / levels
        if not (clipping_range > 0 and levels > 0 and 0 < scale <= 1):
            raise PrivacyDeclinedError(
                f"SecAgg+'s settings (clipping range {clipping_range:g}, {levels} levels, weight scale "
                f"{scale:g}) cannot carry a DP update"
            )
        return cls(clipping_range, levels, scale)

    def check(self, privacy: RoundPrivacy, largest: float) -> None:
        """Refuses settings whose noised values could leave the range or that quantise too coarsely."""
        std, limit, scale = privacy.noise_std, self.clipping_range, self.scale
        problem = range_problem(
            largest, std, privacy.clipping_norm, clipping_range=limit, scale=scale
        ) or quantisation_problem(
            std, clipping_range=limit, quantization_range=self.quantization_range, scale=scale
        )
        if problem:
            raise PrivacyDeclinedError(problem)

    def holds(self, arrays: list[np.ndarray]) -> bool:
        return _largest(arrays) * self.scale <= self.clipping_range


def distributed_noise_mod(msg: Any, context: Any, call_next: Any) -> Any:
    """In a DP round: check, let the site train and clip, add this site's noise, record the spend."""
    config = _fit_config(msg)
    if NOISE_KEY not in config:
        return call_next(msg, context)
    from flwr.common import ndarrays_to_parameters, parameters_to_ndarrays
    from flwr.compat.common import recorddict_compat as compat

    from edge_agent.federation.node import site_data

    site = SiteFolder(site_data(context))
    with declines_audited(site):
        privacy = RoundPrivacy.announced(config)
        grid = SecAggGrid.of(context) if SECAGG_CONFIGS in msg.content.config_records else None
        if grid is not None:
            fit_ins = compat.recorddict_to_fitins(msg.content, keep_input=True)
            grid.check(privacy, _largest(parameters_to_ndarrays(fit_ins.parameters)))
        budget = epsilon_budget(site)
        with SiteStore(site.store_file) as store:
            lifetime = lifetime_after(store, privacy, budget)
        reply = call_next(msg, context)
        if reply.has_error():
            return reply
        fit_res = compat.recorddict_to_fitres(reply.content, keep_input=True)
        noised = add_noise(
            parameters_to_ndarrays(fit_res.parameters), privacy.noise_std, np.random.default_rng()
        )
        if grid is not None and not grid.holds(noised):  # about 2e-9 per value: decline rather than clip
            raise PrivacyDeclinedError("the noise drawn would leave SecAgg+'s range; this round is not sent")
        with SiteStore(site.store_file) as store:
            store.append_audit(SPENT_EVENT, "federation", _spent(msg, privacy, lifetime, budget))
    fit_res.parameters = ndarrays_to_parameters(noised)
    fit_res.num_examples = 1  # under DP every site weighs the same: its influence is its clipped update
    reply.content = compat.fitres_to_recorddict(fit_res, keep_input=True)
    return reply


def add_noise(arrays: list[np.ndarray], std: float, rng: np.random.Generator) -> list[np.ndarray]:
    """Each tensor plus independent Gaussian noise of ``std`` (drawn in float64, kept in its dtype)."""
    return [(a.astype(np.float64) + rng.normal(0.0, std, size=a.shape)).astype(a.dtype) for a in arrays]


def lifetime_after(store: SiteStore, privacy: RoundPrivacy, budget: float) -> float:
    """The site's lifetime ε once this round is spent; declines when that is past ``budget``."""
    from genba.privacy import epsilon_of_rounds

    spent = store.audit(limit=_EVERY, event=SPENT_EVENT)
    multipliers = [float(e.fields["details"]["noise_multiplier"]) for e in reversed(spent)]
    after = epsilon_of_rounds([*multipliers, privacy.noise_multiplier], SITE_DELTA)
    if after > budget:
        before = float(spent[0].fields["details"]["epsilon_spent"]) if spent else 0.0
        raise PrivacyDeclinedError(
            f"this round would bring the site's lifetime ε to {after:.3g} (δ = {SITE_DELTA:g}), past "
            f"its budget of {budget:g} ([federation] epsilon_budget in agent.toml); spent so far {before:.3g}"
        )
    return after


@contextmanager
def declines_audited(site: SiteFolder) -> Iterator[None]:
    try:
        yield
    except PrivacyDeclinedError as error:
        with SiteStore(site.store_file) as store:
            store.append_audit(REFUSED_EVENT, "federation", {"step": REFUSED_STEP, "reason": str(error)})
        raise


def _spent(msg: Any, privacy: RoundPrivacy, lifetime: float, budget: float) -> dict[str, Any]:
    group = str(msg.metadata.group_id or "")
    return {
        "run": int(msg.metadata.run_id),
        "round": int(group) if group.isdigit() else None,
        "noise_multiplier": privacy.noise_multiplier,
        "clipping_norm": privacy.clipping_norm,
        "noise_std": privacy.noise_std,
        "delta": SITE_DELTA,
        "epsilon_spent": lifetime,
        "epsilon_budget": budget,
    }


def _largest(arrays: list[np.ndarray]) -> float:
    return max((float(np.max(np.abs(a))) for a in arrays if a.size), default=0.0)


def _fit_config(msg: Any) -> Mapping[str, Any]:
    if msg.metadata.message_type != "train" or not msg.has_content():
        return {}
    return msg.content.config_records.get("fitins.config") or {}
