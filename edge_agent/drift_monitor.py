"""The agent's drift monitor: features recorded with every production answer, windows tested as they fill.

The answer path only computes a few numbers per answer and stores them (``record``). The
gatekeeper thread calls ``check_pending``: the production model's first ``window_items`` answers are
compared with the export's statistics and become its reference; each later full window is compared
with that reference (``edge_agent.drift``). A check that is not ``ok``, or the first ``ok`` after
one that was not, is written to the audit log. On ``drift`` the labelling queue asks first for
``request_labels`` items of the drifted window, and with ``train_on_drift`` local training starts
once those labels are in.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from edge_agent import drift
from edge_agent.config import DriftConfig
from edge_agent.library import LoadedModel
from genba.errors import GenbaError

if TYPE_CHECKING:
    from edge_agent.agent import Agent
    from edge_agent.store import SiteStore

log = logging.getLogger(__name__)


class DriftMonitor:
    def __init__(self, config: DriftConfig) -> None:
        self.config = config
        self._lock = threading.Lock()  # one window test at a time (gatekeeper and API may both ask)
        self._references: dict[int, np.ndarray] = {}
        self._trained_for: set[int] = set()  # drift checks that already started training

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

    def check_pending(self, agent: Agent) -> list[dict[str, Any]]:
        """Test every full window of the production model not tested yet; returns the new checks."""
        production = agent.active.production
        if not self.config.enabled or production is None:
            return []
        with self._lock:
            new = []
            while (check := self._next_window(agent.store, production)) is not None:
                new.append(check)
                self._react(agent, production, check)
            return new

    def _next_window(self, store: SiteStore, model: LoadedModel) -> dict[str, Any] | None:
        size = self.config.window_items
        reference = store.drift_reference(model.model_id)
        after = store.drift_last_checked(model.model_id)
        if store.drift_pending(model.model_id, after) < size:
            return None
        ids, window = store.drift_features(model.model_id, after, size)
        assert window is not None
        names = _names(model, window.shape[1])
        if reference is None:
            result = self._against_manifest(model, window)
        else:
            result = drift.compare_windows(
                self._reference(store, model.model_id, reference), window, names,
                alpha=self.config.alpha, warning_alpha=self.config.warning_alpha,
            )  # fmt: skip
        check = {**result.to_json(), "first_prediction": ids[0], "last_prediction": ids[-1]}
        check["id"] = store.record_drift_window(model.model_id, check, becomes_reference=reference is None)
        return check

    def _against_manifest(self, model: LoadedModel, window: np.ndarray) -> drift.DriftCheck:
        stats = model.identity.manifest.get("reference_stats") or {}
        result = None
        if model.model.is_classifier:
            result = drift.compare_with_manifest(window[:, 0], stats, warning_alpha=self.config.warning_alpha)
        # Without export statistics to compare with, the first window only becomes the reference.
        return result or drift.DriftCheck("ok", "manifest", "none", 0.0, 1.0, 0, int(window.shape[0]))

    def _reference(self, store: SiteStore, model_id: int, reference: dict[str, Any]) -> np.ndarray:
        if model_id not in self._references:
            _, matrix = store.drift_features(model_id, reference["first_prediction"] - 1, reference["items"])
            assert matrix is not None
            self._references[model_id] = matrix
        return self._references[model_id]

    def _react(self, agent: Agent, model: LoadedModel, check: dict[str, Any]) -> None:
        previous = agent.store.drift_checks(model.model_id, limit=2)
        before = previous[1]["status"] if len(previous) > 1 else "ok"
        if check["status"] != "ok" or before != "ok":
            details = {"model": model.identity.label, **_public(check)}
            if check["status"] == "drift":
                details["labels_requested"] = self.config.request_labels
            agent.store.append_audit(f"drift_{check['status']}", "system", details)

    # ------------------------------------------------------------ after drift

    def focus(self, store: SiteStore, model_id: int | None) -> tuple[tuple[int, int], int] | None:
        """The drifted window the queue should ask about first and how many labels it still needs."""
        latest = store.drift_checks(model_id, limit=1) if model_id is not None else []
        if not latest or latest[0]["status"] != "drift" or self.config.request_labels == 0:
            return None
        window = (latest[0]["first_prediction"], latest[0]["last_prediction"])
        missing = self.config.request_labels - store.labelled_between(*window)
        return (window, missing) if missing > 0 else None

    def train_if_labelled(self, agent: Agent) -> None:
        """With ``train_on_drift``: once the drifted window has its labels, start local training once."""
        production = agent.active.production
        if not self.config.train_on_drift or production is None:
            return
        latest = agent.store.drift_checks(production.model_id, limit=1)
        if not latest or latest[0]["status"] != "drift" or latest[0]["id"] in self._trained_for:
            return
        if self.focus(agent.store, production.model_id) is not None:
            return  # the requested labels are not all in yet
        self._trained_for.add(latest[0]["id"])
        try:
            agent.training.start(mode=self.config.train_mode, actor="drift")
        except GenbaError as error:
            agent.store.append_audit("drift_training_not_started", "system", {"reason": str(error)})

    def status(self, store: SiteStore, model: LoadedModel | None) -> dict[str, Any]:
        """What the API serves: the latest check, the reference and the window filling now."""
        if model is None:
            return {"enabled": self.config.enabled, "status": None, "reason": "no production model"}
        latest = store.drift_checks(model.model_id, limit=1)
        reference = store.drift_reference(model.model_id)
        pending = store.drift_pending(model.model_id, store.drift_last_checked(model.model_id))
        focus = self.focus(store, model.model_id)
        return {
            "enabled": self.config.enabled,
            "model": model.identity.label,
            "status": latest[0]["status"] if latest else None,
            "latest": _public(latest[0]) if latest else None,
            "reference": reference,
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
            "first_prediction", "last_prediction", "created_at")  # fmt: skip
    return {key: check[key] for key in keys if key in check}
