"""The privacy floor at the site: SecAgg+ never reveals a sum of fewer than the floor's sites.

The ServerApp halts a round below the floor before unmasking, but a site cannot take the
server's word for it: Flower's SecAgg+ unmasks with any ``threshold`` shares (2 in Genba's
rounds), so a server that skipped its own check, or said that sites had dropped, could unmask
the sum of two sites and, knowing one of them (a site it runs itself), read the other's update.
:func:`privacy_floor_mod` sits just outside Flower's ``secaggplus_mod`` and reads each SecAgg+
stage message before it does. It refuses, with a one-line :class:`BelowPrivacyFloorError`
audited in the site store as ``federated_round_refused``:

* ``setup``: fewer than the floor's sampled sites, fewer shares than that, or a reconstruction
  threshold below ``floor - 1`` (so that the other sites of a sum at the floor, less one, cannot
  rebuild this site's secrets from their own shares);
* ``share_keys``: public keys of fewer than the floor's sites (its secrets would be shared with
  fewer);
* ``collect_masked_vectors``: key shares from fewer than ``floor - 1`` other sites (its update
  would be masked with fewer);
* ``unmask``: fewer than the floor's sites named alive (the sites the server says sent masked
  updates, counted once each and only among those this site exchanged shares with), or one site
  named both alive and dropped (that asks for both of its secrets).

The floor is :data:`genba.protocol.MIN_SITES_PER_ROUND`, a constant of the installed code: no
run config, node config or environment variable changes it. A malformed stage message is left
to ``secaggplus_mod``, which refuses it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from flwr.app import Message
from flwr.common.secure_aggregation.secaggplus_constants import (
    RECORD_KEY_CONFIGS,
    RECORD_KEY_STATE,
    Key,
    Stage,
)

from genba.errors import GenbaError
from genba.protocol import MIN_SITES_PER_ROUND

log = logging.getLogger(__name__)
#: The fewest sites any sum SecAgg+ reveals may hold; fixed in the installed code.
PRIVACY_FLOOR = MIN_SITES_PER_ROUND
#: The audit event of a refused round (the same as a round refused for another model).
REFUSED_EVENT = "federated_round_refused"


class BelowPrivacyFloorError(GenbaError):
    """The server asked this site for a SecAgg+ step that could reveal a sum below the privacy floor."""


def privacy_floor_mod(msg: Message, context: Any, call_next: Callable[[Message, Any], Message]) -> Message:
    """Refuse (and audit) a SecAgg+ stage message below the floor; pass everything else on."""
    configs = _secagg_configs(msg)
    stage = configs.get(Key.STAGE) if configs is not None else None
    check = _CHECKS.get(stage) if isinstance(stage, str) else None
    problem = check(configs, msg, context) if check is not None and configs is not None else None
    if problem is None:
        return call_next(msg, context)
    refusal = BelowPrivacyFloorError(f"{problem}; IT must run rounds with at least {PRIVACY_FLOOR} sites")
    _audit_refusal(context, str(stage), str(msg.metadata.group_id or ""), str(refusal))
    raise refusal


def _secagg_configs(msg: Message) -> Mapping[str, Any] | None:
    if msg.metadata.message_type != "train" or not msg.has_content():
        return None
    return msg.content.config_records.get(RECORD_KEY_CONFIGS)


def setup_problem(configs: Mapping[str, Any], msg: Message, context: Any) -> str | None:
    """The round's size and reconstruction threshold, as the server announces them."""
    values: list[Any] = [configs.get(key) for key in (Key.SAMPLE_NUMBER, Key.SHARE_NUMBER, Key.THRESHOLD)]
    if not all(type(value) is int for value in values):
        return None  # malformed: secaggplus_mod refuses it
    sampled, shares, threshold = values
    if min(sampled, shares) < PRIVACY_FLOOR:
        return (
            f"this site refused a SecAgg+ round of {sampled} sampled sites sharing secrets {shares} ways: "
            f"below the privacy floor of {PRIVACY_FLOOR}"
        )
    if threshold < PRIVACY_FLOOR - 1:
        return (
            f"this site refused a SecAgg+ round whose reconstruction threshold is {threshold}: below "
            f"{PRIVACY_FLOOR - 1}, fewer sites than a sum at the privacy floor of {PRIVACY_FLOOR} could "
            "rebuild this site's secrets"
        )
    return None


def share_keys_problem(configs: Mapping[str, Any], msg: Message, context: Any) -> str | None:
    """The sites whose public keys the server forwards: this site shares its secrets with them."""
    sites = {key for key, value in configs.items() if key != Key.STAGE and isinstance(value, list)}
    if len(sites) < PRIVACY_FLOOR:
        return (
            f"this site refused to share its SecAgg+ keys among {len(sites)} sites: "
            f"below the privacy floor of {PRIVACY_FLOOR}"
        )
    return None


def collect_problem(configs: Mapping[str, Any], msg: Message, context: Any) -> str | None:
    """The other sites whose key shares arrived: this site masks its update with theirs."""
    sources = configs.get(Key.SOURCE_LIST)
    if not isinstance(sources, list):
        return None
    sites = len(set(sources) | {msg.metadata.dst_node_id})  # and this site
    if sites < PRIVACY_FLOOR:
        return (
            f"this site refused to send its masked update: only {sites} sites exchanged SecAgg+ keys "
            f"with it, below the privacy floor of {PRIVACY_FLOOR}"
        )
    return None


def unmask_problem(configs: Mapping[str, Any], msg: Message, context: Any) -> str | None:
    """The sites the server says are alive (their masked updates arrived) and dropped."""
    active, dead = configs.get(Key.ACTIVE_NODE_ID_LIST), configs.get(Key.DEAD_NODE_ID_LIST)
    if not isinstance(active, list) or not isinstance(dead, list):
        return None
    both = set(active) & set(dead)
    if both:
        return (
            f"this site refused to reveal SecAgg+ shares: the server names {len(both)} site(s) both alive "
            "and dropped, which would reveal both of their secrets"
        )
    alive = set(active) & _share_holders(context)
    if len(alive) < PRIVACY_FLOOR:
        return (
            f"this site refused to reveal SecAgg+ shares: the server says {len(alive)} sites sent masked "
            f"updates, below the privacy floor of {PRIVACY_FLOOR}; no share left this site"
        )
    return None


def _share_holders(context: Any) -> set[int]:
    """The sites (this one included) whose secret shares this site holds in this round."""
    state = context.state.config_records.get(RECORD_KEY_STATE) or {}
    holders = state.get("rd_seed_share_dict:K") or []
    return {int(node) for node in holders}


_CHECKS: dict[str, Callable[[Mapping[str, Any], Message, Any], str | None]] = {
    Stage.SETUP: setup_problem,
    Stage.SHARE_KEYS: share_keys_problem,
    Stage.COLLECT_MASKED_VECTORS: collect_problem,
    Stage.UNMASK: unmask_problem,
}


def _audit_refusal(context: Any, stage: str, round_: str, reason: str) -> None:
    """Record the refusal in the site store; the refusal stands even if it cannot be recorded."""
    from edge_agent.federation.node import site_data
    from edge_agent.site import SiteFolder
    from edge_agent.store import SiteStore

    details = {"step": f"secagg_{stage}", "reason": reason, "round": round_, "floor": PRIVACY_FLOOR}
    try:
        with SiteStore(SiteFolder(site_data(context)).store_file) as store:
            store.append_audit(REFUSED_EVENT, "federation", details)
    except (GenbaError, OSError, ValueError) as error:
        log.error(
            "could not audit a refused SecAgg+ %s (%s); refused all the same", stage, type(error).__name__
        )
