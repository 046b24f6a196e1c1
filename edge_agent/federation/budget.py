"""A site's lifetime ε budget: what it allows and what is spent, read without Flower or torch.

Every DP round a site contributes to is a hash-chained audit entry (``dp_round_spent``) with the
lifetime ε after it; :mod:`edge_agent.federation.dp` declines a round that would pass the budget
(``[federation] epsilon_budget`` in ``agent.toml``). Status, the API and the GUI read it here.
"""

from __future__ import annotations

from typing import Any

from edge_agent.site import SiteFolder
from edge_agent.store import SiteStore
from genba.errors import GenbaError
from genba.privacy import SITE_DELTA

SPENT_EVENT = "dp_round_spent"
REFUSED_EVENT = "federated_round_refused"
REFUSED_STEP = "privacy"
_EVERY = 1 << 62  # "no limit" when reading the audit log


class PrivacyDeclinedError(GenbaError):
    """This site declined a differentially private round: its settings, its budget or SecAgg+'s range."""


def epsilon_budget(site: SiteFolder) -> float:
    """``[federation] epsilon_budget`` from the site's ``agent.toml``, read afresh."""
    from edge_agent.config import load_agent_config
    from genba.errors import ConfigError

    try:
        return float(load_agent_config(site.config_file).federation.epsilon_budget)
    except ConfigError as error:
        raise PrivacyDeclinedError(f"this site's ε budget is unknown: {error}") from error


def privacy_budget(site: SiteFolder, store: SiteStore) -> dict[str, Any]:
    """Where the site's lifetime budget stands, for ``genba agent status``, the API and the GUI."""
    spent = store.audit(limit=_EVERY, event=SPENT_EVENT)
    try:
        budget: float | None = epsilon_budget(site)
        problem = None
    except PrivacyDeclinedError as error:
        budget, problem = None, str(error)
    used = float(spent[0].fields["details"]["epsilon_spent"]) if spent else 0.0
    declined = next(
        (
            e
            for e in store.audit(limit=200, event=REFUSED_EVENT)
            if e.fields["details"].get("step") == REFUSED_STEP
        ),
        None,
    )
    return {
        "epsilon_budget": budget,
        "epsilon_spent": used,
        "epsilon_left": None if budget is None else max(budget - used, 0.0),
        "delta": SITE_DELTA,
        "rounds": len(spent),
        "runs": len({e.fields["details"].get("run") for e in spent}),
        "last_declined": None
        if declined is None
        else {"at": declined.created_at, "reason": declined.fields["details"]["reason"]},
        "problem": problem,
    }
