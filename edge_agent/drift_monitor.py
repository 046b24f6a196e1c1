"""The agent's drift monitor: features recorded with every production answer, windows tested as they fill.

The answer path only computes a few numbers per answer and stores them (``record``). The
gatekeeper thread calls ``check_pending``: the production model's first ``reference_windows``
windows are compared with the export's statistics and together become its reference; each later
full window is compared with that reference, stratum by stratum (``edge_agent.drift``). A new
production model starts a new reference, and so does a supervisor acknowledging a shift
(``rebaseline``). A window found to drift raises an alarm only when no episode is open: an episode
stays open until ``clear_windows`` windows in a row show no drift (hysteresis), so a lasting shift
is one alarm, not one per window. Alarms, warnings and the first ``ok`` after either are written to
the audit log. On an alarm the labelling queue asks first for ``request_labels`` items of the
window that raised it, and with ``train_on_drift`` local training starts once those labels are in.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from edge_agent import drift
from edge_agent.config import DriftConfig
from edge_agent.library import LoadedModel
from genba.errors import GenbaError, NoModelError

if TYPE_CHECKING:
    from edge_agent.store import SiteStore

log = logging.getLogger(__name__)


class DriftMonitor:
    def __init__(self, config: DriftConfig) -> None:
        self.config = config
        self._lock = threading.Lock()  # one window test at a time (gatekeeper and API may both ask)
        # model id -> (the reference's last prediction, its features, its strata)
        self._references: dict[int, tuple[int, np.ndarray, list[str]]] = {}
        self._trained_for: set[int] = set()  # drift alarms that already started training

    # ------------------------------------------------------------ answer path

    def record(
        self,
        store: SiteStore,
        model_id: int,
        prediction_ids: Sequence[int],
        probabilities: np.ndarray | None,
        embedding: np.ndarray | None,
    ) -> None:
        if not self.config.enabled:
            return
        matrix = drift.features(probabilities, embedding, self.config.projections)
        if matrix is not None and len(prediction_ids):
            store.add_drift_features(model_id, prediction_ids, matrix)

    # ------------------------------------------------------------ gatekeeper

    def check_pending(self, store: SiteStore, production: LoadedModel | None) -> list[dict[str, Any]]:
        """Test every full window of the production model not tested yet; returns the new checks."""
        if not self.config.enabled or production is None:
            return []
        with self._lock:
            new = []
            while (check := self._next_window(store, production)) is not None:
                new.append(check)
                self._react(store, production, check)
            return new

    def _next_window(self, store: SiteStore, model: LoadedModel) -> dict[str, Any] | None:
        size = self.config.window_items
        reference = store.drift_reference(model.model_id)
        after = store.drift_last_checked(model.model_id)
        if store.drift_pending(model.model_id, after) < size:
            return None
        ids, window = store.drift_features(model.model_id, after, size)
        assert window is not None
        building = reference is None or reference["items"] < self.config.reference_windows * size
        if building:
            result = self._against_manifest(model, window)
        else:
            assert reference is not None
            matrix, strata = self._reference(store, model.model_id, reference)
            result = drift.compare_windows(
                matrix, window, _names(model, window.shape[1]),
                alpha=self.config.alpha, warning_alpha=self.config.warning_alpha,
                reference_strata=strata, window_strata=self._strata(store, ids),
            )  # fmt: skip
        check = {**result.to_json(), "first_prediction": ids[0], "last_prediction": ids[-1]}
        check["alarm"] = result.status == "drift" and self.episode(store, model.model_id) is None
        check["id"] = store.record_drift_window(model.model_id, check, joins_reference=building)
        return check

    def _strata(self, store: SiteStore, prediction_ids: Sequence[int]) -> list[str]:
        """Each answer's stratum: its input's tags named in ``strata``, joined ("" when untagged)."""
        keys = self.config.strata
        return ["/".join(str(g.get(k, "")) for k in keys) for g in store.drift_groups(prediction_ids)]

    def episode(self, store: SiteStore, model_id: int) -> dict[str, Any] | None:
        """The alarm whose episode is still open: a drift window among the last ``clear_windows``
        checks against the current reference. None when no episode is open."""
        reference = store.drift_reference(model_id)
        if reference is None:
            return None
        checks = store.drift_checks(model_id, limit=500)
        since = [c for c in checks if c["first_prediction"] > reference["last_prediction"]]
        if not any(c["status"] == "drift" for c in since[: self.config.clear_windows]):
            return None
        return next((c for c in since if c["alarm"]), None)

    def rebaseline(
        self, store: SiteStore, production: LoadedModel | None, *, actor: str, reason: str | None
    ) -> dict[str, Any]:
        """A supervisor's "this shift is the new normal": the next windows build a new reference."""
        if production is None:
            raise NoModelError("there is no production model whose drift reference could be renewed")
        with self._lock:
            details = {"model": production.identity.label, "reason": reason}
            store.rebaseline_drift(production.model_id, actor, details)
            self._references.pop(production.model_id, None)
        return self.status(store, production)

    def _against_manifest(self, model: LoadedModel, window: np.ndarray) -> drift.DriftCheck:
        stats = model.identity.manifest.reference_stats or {}
        result = None
        if model.model.is_classifier:
            result = drift.compare_with_manifest(window[:, 0], stats, warning_alpha=self.config.warning_alpha)
        # Without export statistics to compare with, the first window only becomes the reference.
        return result or drift.DriftCheck("ok", "manifest", "none", 0.0, 1.0, 0, int(window.shape[0]))

    def _reference(
        self, store: SiteStore, model_id: int, reference: dict[str, Any]
    ) -> tuple[np.ndarray, list[str]]:
        cached = self._references.get(model_id)
        if cached is None or cached[0] != reference["last_prediction"]:
            first, items = reference["first_prediction"], reference["items"]
            ids, matrix = store.drift_features(model_id, first - 1, items)
            assert matrix is not None
            cached = (reference["last_prediction"], matrix, self._strata(store, ids))
            self._references[model_id] = cached
        return cached[1], cached[2]

    def _react(self, store: SiteStore, model: LoadedModel, check: dict[str, Any]) -> None:
        previous = store.drift_checks(model.model_id, limit=2)
        before = previous[1]["status"] if len(previous) > 1 else "ok"
        details = {"model": model.identity.label, **_public(check)}
        if check["alarm"]:
            details["labels_requested"] = self.config.request_labels
            store.append_audit("drift_drift", "system", details)
        elif check["status"] != "drift" and (check["status"] != "ok" or before != "ok"):
            store.append_audit(f"drift_{check['status']}", "system", details)
        # a drift window that raised no alarm belongs to the open episode: its alarm said it all

    # ------------------------------------------------------------ after drift

    def focus(self, store: SiteStore, model_id: int | None) -> tuple[tuple[int, int], int] | None:
        """The drifted window the queue should ask about first and how many labels it still needs."""
        alarm = self.episode(store, model_id) if model_id is not None else None
        if alarm is None or self.config.request_labels == 0:
            return None
        window = (alarm["first_prediction"], alarm["last_prediction"])
        missing = self.config.request_labels - store.labelled_between(*window)
        return (window, missing) if missing > 0 else None

    def train_if_labelled(
        self, store: SiteStore, production: LoadedModel | None, start_training: Callable[[str], object]
    ) -> None:
        """With ``train_on_drift``: once the drifted window has its labels, start local training once.

        ``start_training(mode)`` starts a job (actor ``drift``) or raises a GenbaError saying why not.
        """
        if not self.config.train_on_drift or production is None:
            return
        alarm = self.episode(store, production.model_id)
        if alarm is None or alarm["id"] in self._trained_for:
            return
        if self.focus(store, production.model_id) is not None:
            return  # the requested labels are not all in yet
        self._trained_for.add(alarm["id"])
        try:
            start_training(self.config.train_mode)
        except GenbaError as error:
            store.append_audit("drift_training_not_started", "system", {"reason": str(error)})

    def status(self, store: SiteStore, model: LoadedModel | None) -> dict[str, Any]:
        """What the API serves: the latest check, the reference and the window filling now."""
        if model is None:
            return {"enabled": self.config.enabled, "status": None, "reason": "no production model"}
        latest = store.drift_checks(model.model_id, limit=1)
        reference = store.drift_reference(model.model_id)
        pending = store.drift_pending(model.model_id, store.drift_last_checked(model.model_id))
        focus = self.focus(store, model.model_id)
        alarm = self.episode(store, model.model_id)
        needed = self.config.reference_windows * self.config.window_items
        return {
            "enabled": self.config.enabled,
            "model": model.identity.label,
            "status": latest[0]["status"] if latest else None,
            "latest": _public(latest[0]) if latest else None,
            "episode_open": alarm is not None,
            "alarm": _public(alarm) if alarm else None,
            "reference": reference,
            "reference_complete": bool(reference and reference["items"] >= needed),
            "reference_items_needed": needed,
            "strata": list(self.config.strata),
            "window_items": self.config.window_items,
            "items_in_current_window": pending,
            "alpha": self.config.alpha,
            "warning_alpha": self.config.warning_alpha,
            "labels_requested": focus[1] if focus else 0,
            "reason": None
            if latest
            else f"{pending} of {self.config.window_items} answers in the first window",
        }


def _names(model: LoadedModel, width: int) -> list[str]:
    labels = list(model.model.labels) if model.model.is_classifier else []
    scores = 1 + len(labels) if labels else 0
    return drift.feature_names(labels, width - scores) if labels else drift.feature_names([], width)[1:]


def _public(check: dict[str, Any]) -> dict[str, Any]:
    keys = ("status", "reference", "feature", "statistic", "p_value", "tests", "items",
            "first_prediction", "last_prediction", "created_at", "alarm")  # fmt: skip
    return {key: check[key] for key in keys if key in check}
