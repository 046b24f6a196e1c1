"""Install, promote, roll back: every change of the model slots.

Each change is decided first, committed to the store in one transaction with its
audit entry, and only then swapped in memory. A crash before the commit changes
nothing; after it, the restarted agent loads what the store says. A model that
cannot be verified or loaded never reaches a slot, and production keeps serving.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from edge_agent.library import BundleIdentity, LoadedModel
from edge_agent.rollout import CANDIDATE_STAGES, check_target, next_stage
from edge_agent.store import KEEP, ModelRow, Transition
from genba.bundle import VerifiedBundle
from genba.errors import (
    BundleError,
    BundleFormatError,
    GenbaError,
    InstallRefusedError,
    ProviderUnavailableError,
    RolloutError,
    RuntimeLoadError,
    UnknownItemError,
)
from genba.versions import ModelVersion

if TYPE_CHECKING:
    from edge_agent.agent import Agent

log = logging.getLogger(__name__)


def load_slots(agent: Agent) -> None:
    """At start: load what the store says is in the slots, verifying each copy again."""
    from edge_agent.agent import Active

    slots = agent.store.slots()
    production = _load_or_report(agent, slots.production.model_id) if slots.production else None
    candidate = _load_or_report(agent, slots.candidate.model_id) if slots.candidate else None
    agent.active = Active(
        production=production,
        candidate=candidate,
        stage=slots.candidate.stage if slots.candidate and candidate else None,
        since=slots.candidate.since if slots.candidate else 0.0,
    )


def _load_or_report(agent: Agent, model_id: int) -> LoadedModel | None:
    row = agent.store.get_model(model_id)
    try:
        return agent.library.load(row.id, Path(row.path))
    except ProviderUnavailableError:
        raise  # the provider policy cannot be met ('gpu' without CUDA): refuse to start, no fallback
    except GenbaError as error:
        problem = f"{row.label} was refused at load: {error}"
        agent.load_problems.append(problem)
        agent.store.append_audit("load_refused", "system", {"model_id": row.id, "reason": str(error)})
        log.error(problem)
        return None


def install(agent: Agent, source: Path, *, actor: str, rollback: bool = False) -> dict[str, Any]:
    """Verify, copy in and load a bundle; it becomes the candidate in shadow (or production on a new site).

    Every refusal happens before anything is written; the copy is loaded before the
    store records it, so a bundle ONNX Runtime cannot open leaves nothing behind.
    """
    with agent.switch_lock:
        copy, identity = agent.library.copy_in(
            source, accept=lambda offered: _refuse_unwanted(agent, offered, rollback or offered.rollback)
        )
        rollback = rollback or identity.rollback
        known = agent.store.find_model(identity.name, identity.version)
        loaded = _open_new_copy(agent, copy, keep=known is not None)
        row = known or agent.store.add_model(
            name=identity.name,
            version=identity.version,
            manifest_sha256=identity.manifest_sha256,
            path=copy.path.name,  # relative to the models folder: the site folder may move
            signer_key_id=identity.signer_key_id,
            lineage=identity.manifest.get("lineage") or {},
            manifest=identity.manifest,
            installed_by=actor,
        )
        loaded.model_id = row.id
        if agent.store.slots().production is None or agent.active.production is None:
            _install_as_production(agent, loaded, actor)
            return {"installed": loaded.describe(), "slot": "production"}
        _install_as_candidate(agent, loaded, actor, rollback)
        return {"installed": loaded.describe(), "slot": "candidate"}


def _open_new_copy(agent: Agent, copy: VerifiedBundle, keep: bool) -> LoadedModel:
    try:
        return agent.library.open(0, copy)
    except RuntimeLoadError as error:
        if not keep:
            shutil.rmtree(copy.path, ignore_errors=True)
        raise BundleFormatError(f"the bundle's graphs cannot be loaded: {error}") from error
    except BundleError:  # a malformed variants table, say: nothing of it stays behind
        if not keep:
            shutil.rmtree(copy.path, ignore_errors=True)
        raise


def _install_as_production(agent: Agent, loaded: LoadedModel, actor: str) -> None:
    """The first model at a site, or one replacing a production copy that failed to load."""
    reason = (
        "first model at this site"
        if agent.store.slots().production is None
        else ("the production model could not be loaded")
    )
    transition = Transition(
        event="install", actor=actor, model_id=loaded.model_id, from_stage=None, to_stage="production",
        outcome="install", production=loaded.model_id, production_change="promote",
        details={"model": loaded.identity.label, "reason": reason},
    )  # fmt: skip
    _apply(agent, transition, loaded)


def _install_as_candidate(agent: Agent, loaded: LoadedModel, actor: str, rollback: bool) -> None:
    replaced = agent.active.candidate.identity.label if agent.active.candidate else None
    transition = Transition(
        event="replace_candidate" if replaced else "install", actor=actor, model_id=loaded.model_id,
        from_stage=None, to_stage="shadow", outcome="replace" if replaced else "install",
        candidate=(loaded.model_id, "shadow"),
        details={"model": loaded.identity.label, "replaced": replaced, "rollback": rollback},
    )  # fmt: skip
    _apply(agent, transition, loaded)


def _refuse_unwanted(agent: Agent, identity: BundleIdentity, rollback: bool) -> None:
    existing = agent.store.find_model(identity.name, identity.version)
    if existing is not None and existing.manifest_sha256 != identity.manifest_sha256:
        raise InstallRefusedError(
            f"a different bundle named {identity.label} is already installed; "
            "a new bundle needs a new version (IT: a new release; a site: a new training job)"
        )
    slots = agent.store.slots()
    for slot, name in ((slots.production, "production"), (slots.candidate, "the candidate")):
        if (
            slot is not None
            and agent.store.get_model(slot.model_id).manifest_sha256 == identity.manifest_sha256
        ):
            raise InstallRefusedError(f"{identity.label} is already {name}")
    if slots.production is None:
        return
    production = agent.store.get_model(slots.production.model_id)  # the store's, even if it failed to load
    _refuse_other_kind(identity, production.manifest)
    if production.name == identity.name and not rollback and identity.version < production.version:
        raise InstallRefusedError(
            f"{identity.label} is older than production v{production.version}; "
            "going back is a rollback: use 'genba agent rollback' or install with --rollback"
        )


def _refuse_other_kind(identity: BundleIdentity, production: dict[str, Any]) -> None:
    """A candidate answers the same inputs as production, so it must take the same kind and task."""
    ours = (identity.manifest.get("task"), (identity.manifest.get("input") or {}).get("kind"))
    theirs = (production.get("task"), (production.get("input") or {}).get("kind"))
    if ours != theirs:
        raise InstallRefusedError(
            f"{identity.label} is a {ours[0]} model for {ours[1]} input, but this site's production is "
            f"a {theirs[0]} model for {theirs[1]} input; it cannot be compared or swapped in"
        )


def promote(agent: Agent, *, actor: str, to_stage: str | None = None, gated: bool = False) -> dict[str, Any]:
    """Move the candidate to its next stage (or ``to_stage``); to production is the atomic switch."""
    with agent.switch_lock:
        active = agent.active
        if active.candidate is None or active.stage not in CANDIDATE_STAGES:
            raise RolloutError("there is no candidate to promote; install a bundle first")
        target = to_stage or next_stage(active.stage)
        check_target(active.stage, target)
        report = agent.gate_report()
        if gated and (report is None or not (report.ready and report.passed)):
            return {"promoted": False, "gates": report.to_json() if report else None}
        gates = report.to_json() if report else None
        candidate = active.candidate
        common: dict[str, Any] = {
            "actor": actor,
            "model_id": candidate.model_id,
            "from_stage": active.stage,
            "to_stage": target,
            "gates": gates,
            "details": {"model": candidate.identity.label, "by_gates": gated},
        }
        if target == "production":
            previous = active.production.identity.label if active.production else None
            common["details"]["replaced"] = previous
            _apply(
                agent,
                Transition(
                    event="promote",
                    outcome="advance",
                    production=candidate.model_id,
                    # IT's rollback bundle withdraws the version it replaces: never a rollback target
                    production_change="rollback" if candidate.identity.rollback else "promote",
                    candidate=None,
                    **common,
                ),
            )
        else:
            _apply(
                agent,
                Transition(
                    event="advance", outcome="advance", candidate=(candidate.model_id, target), **common
                ),
            )
        return {"promoted": True, "model": candidate.identity.label, "stage": target, "gates": gates}


def discard(agent: Agent, *, actor: str, reason: str | None = None) -> dict[str, Any]:
    """Empty the candidate slot: the candidate never serves again unless it is installed anew.

    Also the way out for a candidate whose copy failed to load at start (the store's slot holds
    it although nothing runs). Production is untouched; the decision and its reason are audited.
    """
    with agent.switch_lock:
        slot = agent.store.slots().candidate
        if slot is None:
            raise RolloutError("there is no candidate to discard")
        row = agent.store.get_model(slot.model_id)
        _apply(
            agent,
            Transition(
                event="discard_candidate",
                actor=actor,
                model_id=row.id,
                from_stage=slot.stage,
                to_stage=None,
                outcome="reject",
                candidate=None,
                details={"model": row.label, "reason": reason},
            ),  # fmt: skip
        )
        return {"discarded": row.label, "stage": slot.stage, "reason": reason}


def advance_if_gates_pass(agent: Agent) -> None:
    """Advance the candidate when its gates pass; record once per stage when they hold it back."""
    report = agent.gate_report()
    if report is None or not report.ready:
        return
    if report.passed:
        result = promote(agent, actor="gates", gated=True)
        if result["promoted"]:
            log.info("gates passed: %s moved to %s", result["model"], result["stage"])
        return
    # Once more when the hold first rests on held-out labels: that decision is the evidence, and
    # it counts the candidate as judged on the held-out set (store.holdout_reuse_limit).
    judged = any(gate.name == "accuracy" and gate.evidence is not None for gate in report.gates)
    key = (report.model_id, report.stage, judged)
    if key not in agent.held_back:
        agent.held_back.add(key)
        next_one = next_stage(report.stage)
        agent.store.record_decision(
            report.model_id, report.stage, next_one, "gates", "hold", report.to_json()
        )
        failed = ", ".join(g.name for g in report.gates if not g.passed)
        log.warning("gates hold model %s in %s: %s", report.model_id, report.stage, failed)


def rollback(agent: Agent, *, actor: str, version: ModelVersion | None = None) -> dict[str, Any]:
    """Put the previous production model (or an installed ``version``) back into production now."""
    with agent.switch_lock:
        current = agent.active.production
        row = _rollback_row(agent, version)
        if current is not None and row.id == current.model_id:
            raise RolloutError(f"{row.label} is already production")
        candidate = agent.active.candidate
        if candidate is not None and row.id == candidate.model_id:
            raise RolloutError(f"{row.label} is the candidate; promote it with 'genba agent promote' instead")
        loaded = agent.library.load(row.id, Path(row.path))
        _apply(
            agent,
            Transition(
                event="rollback",
                actor=actor,
                model_id=row.id,
                from_stage="production",
                to_stage="production",
                outcome="rollback",
                production=row.id,
                production_change="rollback",
                details={
                    "model": loaded.identity.label,
                    "replaced": current.identity.label if current else None,
                },
            ),
            loaded,
        )
        return {"rolled_back_to": loaded.describe(), "replaced": current.identity.label if current else None}


def _rollback_row(agent: Agent, version: ModelVersion | None) -> ModelRow:
    if version is None:
        target = agent.store.rollback_target()
        if target is None:
            raise RolloutError("there is no previous production model to roll back to")
        return agent.store.get_model(target)
    name = agent.active.production.identity.name if agent.active.production else None
    row = agent.store.find_model(name, version) or agent.store.find_model(None, version)
    if row is None:
        raise UnknownItemError(f"no installed model has version {version}; see 'genba agent status'")
    return row


def _apply(agent: Agent, transition: Transition, loaded: LoadedModel | None = None) -> None:
    """Commit the transition, then swap the in-memory slots in one reference assignment.

    The new slots follow from the transition itself; ``loaded`` is the model it brings
    in (an install or a rollback), the others are already in a slot.
    """
    from edge_agent.agent import Active

    agent.store.apply_transition(transition)
    before = agent.active
    models = {m.model_id: m for m in (before.production, before.candidate, loaded) if m is not None}
    production = (
        before.production if transition.production is KEEP else models[cast(int, transition.production)]
    )
    if transition.candidate is KEEP:
        candidate, stage = before.candidate, before.stage
    elif transition.candidate is None:
        candidate, stage = None, None
    else:
        model_id, stage = cast(tuple[int, str], transition.candidate)
        candidate = models[model_id]
    slot = agent.store.slots().candidate
    agent.active = Active(production, candidate, stage, since=slot.since if slot else 0.0)
    agent.wake()
