"""The model slots: install, promote, discard, roll back: every change of them.

Each change is decided first, committed to the store in one transaction with its
audit entry, and only then swapped in memory. A crash before the commit changes
nothing; after it, the restarted agent loads what the store says. A model that
cannot be verified or loaded never reaches a slot, and production keeps serving.
"""

from __future__ import annotations

import logging
import shutil
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from edge_agent.library import BundleIdentity, LoadedModel, ModelLibrary
from edge_agent.rollout import CANDIDATE_STAGES, check_target, next_stage
from edge_agent.store import KEEP, ModelRow, SiteStore, Transition
from genba.bundle import Manifest, VerifiedBundle
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
    from edge_agent.rollout import GateReport

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Active:
    """The models in the slots, swapped as one reference so a batch never sees half a switch."""

    production: LoadedModel | None = None
    candidate: LoadedModel | None = None
    stage: str | None = None
    since: float = 0.0


class Slots:
    """The production and candidate slots: what is loaded in them, and every change to them.

    It reads and writes the store, loads through the library, asks ``gate_report`` whether the
    candidate may advance and calls ``on_change`` after every swap (the agent wakes its
    gatekeeper); it knows nothing else of the agent.
    """

    def __init__(
        self,
        store: SiteStore,
        library: ModelLibrary,
        *,
        gate_report: Callable[[], GateReport | None],
        on_change: Callable[[], None],
    ) -> None:
        self.store, self.library = store, library
        self._gate_report, self._on_change = gate_report, on_change
        self.active = Active()
        self.lock = threading.RLock()  # one change at a time
        self.load_problems: list[str] = []
        self.held_back: set[tuple[int, str, bool]] = set()  # (model, stage, judged) recorded as held

    def load(self) -> None:
        """At start: load what the store says is in the slots, verifying each copy again."""
        slots = self.store.slots()
        production = self._load_or_report(slots.production.model_id) if slots.production else None
        candidate = self._load_or_report(slots.candidate.model_id) if slots.candidate else None
        self.active = Active(
            production=production,
            candidate=candidate,
            stage=slots.candidate.stage if slots.candidate and candidate else None,
            since=slots.candidate.since if slots.candidate else 0.0,
        )

    def _load_or_report(self, model_id: int) -> LoadedModel | None:
        row = self.store.get_model(model_id)
        try:
            return self.library.load(row.id, Path(row.path))
        except ProviderUnavailableError:
            raise  # the provider policy cannot be met ('gpu' without CUDA): refuse to start, no fallback
        except GenbaError as error:
            problem = f"{row.label} was refused at load: {error}"
            self.load_problems.append(problem)
            self.store.append_audit("load_refused", "system", {"model_id": row.id, "reason": str(error)})
            log.error(problem)
            return None

    def install(self, source: Path, *, actor: str, rollback: bool = False) -> dict[str, Any]:
        """Verify, copy in and load a bundle: the candidate in shadow (or production on a new site).

        Every refusal happens before anything is written; the copy is loaded before the
        store records it, so a bundle ONNX Runtime cannot open leaves nothing behind.
        """
        with self.lock:
            copy, identity = self.library.copy_in(
                source, accept=lambda offered: self._refuse_unwanted(offered, rollback or offered.rollback)
            )
            rollback = rollback or identity.rollback
            known = self.store.find_model(identity.name, identity.version)
            loaded = self._open_new_copy(copy, keep=known is not None)
            row = known or self._record_new_copy(copy, identity, actor)
            loaded.model_id = row.id
            if self.store.slots().production is None or self.active.production is None:
                self._install_as_production(loaded, actor)
                return {"installed": loaded.describe(), "slot": "production"}
            self._install_as_candidate(loaded, actor, rollback)
            return {"installed": loaded.describe(), "slot": "candidate"}

    def _record_new_copy(self, copy: VerifiedBundle, identity: BundleIdentity, actor: str) -> ModelRow:
        """The store's row for a copy just made; a store that cannot take it (a full disk) leaves
        no copy behind either, so the models folder holds only models the store knows."""
        try:
            return self.store.add_model(
                name=identity.name,
                version=identity.version,
                manifest_sha256=identity.manifest_sha256,
                path=copy.path.name,  # relative to the models folder: the site folder may move
                signer_key_id=identity.signer_key_id,
                lineage=identity.manifest.lineage.to_json(),
                manifest=identity.manifest.to_json(),
                installed_by=actor,
            )
        except BaseException:
            shutil.rmtree(copy.path, ignore_errors=True)
            raise

    def _open_new_copy(self, copy: VerifiedBundle, keep: bool) -> LoadedModel:
        try:
            return self.library.open(0, copy)
        except RuntimeLoadError as error:
            if not keep:
                shutil.rmtree(copy.path, ignore_errors=True)
            raise BundleFormatError(f"the bundle's graphs cannot be loaded: {error}") from error
        except BundleError:  # a malformed variants table, say: nothing of it stays behind
            if not keep:
                shutil.rmtree(copy.path, ignore_errors=True)
            raise

    def _install_as_production(self, loaded: LoadedModel, actor: str) -> None:
        """The first model at a site, or one replacing a production copy that failed to load."""
        reason = (
            "first model at this site"
            if self.store.slots().production is None
            else ("the production model could not be loaded")
        )
        transition = Transition(
            event="install", actor=actor, model_id=loaded.model_id, from_stage=None, to_stage="production",
            outcome="install", production=loaded.model_id, production_change="promote",
            details={"model": loaded.identity.label, "reason": reason},
        )  # fmt: skip
        self._apply(transition, loaded)

    def _install_as_candidate(self, loaded: LoadedModel, actor: str, rollback: bool) -> None:
        replaced = self.active.candidate.identity.label if self.active.candidate else None
        transition = Transition(
            event="replace_candidate" if replaced else "install", actor=actor, model_id=loaded.model_id,
            from_stage=None, to_stage="shadow", outcome="replace" if replaced else "install",
            candidate=(loaded.model_id, "shadow"),
            details={"model": loaded.identity.label, "replaced": replaced, "rollback": rollback},
        )  # fmt: skip
        self._apply(transition, loaded)

    def _refuse_unwanted(self, identity: BundleIdentity, rollback: bool) -> None:
        existing = self.store.find_model(identity.name, identity.version)
        if existing is not None and existing.manifest_sha256 != identity.manifest_sha256:
            raise InstallRefusedError(
                f"a different bundle named {identity.label} is already installed; "
                "a new bundle needs a new version (IT: a new release; a site: a new training job)"
            )
        slots = self.store.slots()
        for slot, name in ((slots.production, "production"), (slots.candidate, "the candidate")):
            if (
                slot is not None
                and self.store.get_model(slot.model_id).manifest_sha256 == identity.manifest_sha256
            ):
                raise InstallRefusedError(f"{identity.label} is already {name}")
        if slots.production is None:
            return
        production = self.store.get_model(slots.production.model_id)  # the store's, even if it failed to load
        _refuse_other_kind(identity, production.manifest)
        if production.name == identity.name and not rollback and identity.version < production.version:
            raise InstallRefusedError(
                f"{identity.label} is older than production v{production.version}; "
                "going back is a rollback: use 'genba agent rollback' or install with --rollback"
            )

    def promote(self, *, actor: str, to_stage: str | None = None, gated: bool = False) -> dict[str, Any]:
        """Move the candidate to its next stage (or ``to_stage``); to production is the atomic switch."""
        with self.lock:
            active = self.active
            if active.candidate is None or active.stage not in CANDIDATE_STAGES:
                raise RolloutError("there is no candidate to promote; install a bundle first")
            target = to_stage or next_stage(active.stage)
            check_target(active.stage, target)
            report = self._gate_report()
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
                self._apply(
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
                self._apply(
                    Transition(
                        event="advance", outcome="advance", candidate=(candidate.model_id, target), **common
                    ),
                )
            return {"promoted": True, "model": candidate.identity.label, "stage": target, "gates": gates}

    def discard(self, *, actor: str, reason: str | None = None) -> dict[str, Any]:
        """Empty the candidate slot: the candidate never serves again unless it is installed anew.

        Also the way out for a candidate whose copy failed to load at start (the store's slot holds
        it although nothing runs). Production is untouched; the decision and its reason are audited.
        """
        with self.lock:
            slot = self.store.slots().candidate
            if slot is None:
                raise RolloutError("there is no candidate to discard")
            row = self.store.get_model(slot.model_id)
            self._apply(
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

    def advance_if_gates_pass(self) -> None:
        """Advance the candidate when its gates pass; record once per stage when they hold it back."""
        report = self._gate_report()
        if report is None or not report.ready:
            return
        if report.passed:
            result = self.promote(actor="gates", gated=True)
            if result["promoted"]:
                log.info("gates passed: %s moved to %s", result["model"], result["stage"])
            return
        # Once more when the hold first rests on held-out labels: that decision is the evidence, and
        # it counts the candidate as judged on the held-out set (store.holdout_reuse_limit).
        judged = any(gate.name == "accuracy" and gate.evidence is not None for gate in report.gates)
        key = (report.model_id, report.stage, judged)
        if key not in self.held_back:
            self.held_back.add(key)
            next_one = next_stage(report.stage)
            self.store.record_decision(
                report.model_id, report.stage, next_one, "gates", "hold", report.to_json()
            )
            failed = ", ".join(g.name for g in report.gates if not g.passed)
            log.warning("gates hold model %s in %s: %s", report.model_id, report.stage, failed)

    def rollback(self, *, actor: str, version: ModelVersion | None = None) -> dict[str, Any]:
        """Put the previous production model (or an installed ``version``) back into production now."""
        with self.lock:
            current = self.active.production
            row = self._rollback_row(version)
            if current is not None and row.id == current.model_id:
                raise RolloutError(f"{row.label} is already production")
            candidate = self.active.candidate
            if candidate is not None and row.id == candidate.model_id:
                raise RolloutError(
                    f"{row.label} is the candidate; promote it with 'genba agent promote' instead"
                )
            loaded = self.library.load(row.id, Path(row.path))
            self._apply(
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
            return {
                "rolled_back_to": loaded.describe(),
                "replaced": current.identity.label if current else None,
            }

    def _rollback_row(self, version: ModelVersion | None) -> ModelRow:
        if version is None:
            target = self.store.rollback_target()
            if target is None:
                raise RolloutError("there is no previous production model to roll back to")
            return self.store.get_model(target)
        name = self.active.production.identity.name if self.active.production else None
        row = self.store.find_model(name, version) or self.store.find_model(None, version)
        if row is None:
            raise UnknownItemError(f"no installed model has version {version}; see 'genba agent status'")
        return row

    def _apply(self, transition: Transition, loaded: LoadedModel | None = None) -> None:
        """Commit the transition, then swap the in-memory slots in one reference assignment.

        The new slots follow from the transition itself; ``loaded`` is the model it brings
        in (an install or a rollback), the others are already in a slot.
        """
        self.store.apply_transition(transition)
        before = self.active
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
        slot = self.store.slots().candidate
        self.active = Active(production, candidate, stage, since=slot.since if slot else 0.0)
        self._on_change()


def _refuse_other_kind(identity: BundleIdentity, production: Mapping[str, Any]) -> None:
    """A candidate answers the same inputs as production, so it must take the same kind and task."""
    ours = (identity.manifest.task, identity.manifest.input.kind)
    stored = Manifest.from_record(production)  # the store's copy: None for a row from before it kept one
    theirs = (stored.task, stored.input.kind) if stored else (None, None)
    if ours != theirs:
        raise InstallRefusedError(
            f"{identity.label} is a {ours[0]} model for {ours[1]} input, but this site's production is "
            f"a {theirs[0]} model for {theirs[1]} input; it cannot be compared or swapped in"
        )
