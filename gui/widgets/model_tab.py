"""Model: production and the candidate side by side, the candidate's gates, drift, promote and roll back.

Everything shown comes from one worker call (status, gates, drift, model history). Promote and
roll back are offered to a supervisor only, each behind a confirmation, and reload the tab after.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtWidgets import (
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QMessageBox,
    QPushButton,
    QTableWidget,
    QVBoxLayout,
    QWidget,
)

from edge_agent.service.client import AgentClient
from edge_agent.site import SiteFolder
from genba import keys
from genba.errors import GenbaError, PermissionDeniedError
from gui.i18n import stage_name, t
from gui.viewmodels.model import NONE, Loaded, ModelCard, ModelView
from gui.widgets.base import Context, Tab
from gui.widgets.tables import fill, fill_rows, new_table

#: The rows of the side-by-side cards, top to bottom.
CARD_ROWS = ("stage", "name", "version", "signer", "signature", "parent", "source", "federated", "rollback",
             "precision", "provider")  # fmt: skip
DRIFT_ROWS = ("status", "p_value", "feature", "reference", "window", "labels")


class ModelTab(Tab):
    def __init__(self, context: Context) -> None:
        super().__init__(context)
        self.view: ModelView | None = None
        self._loading = False
        self._again = False  # a load started before a change landed: load once more after it
        self._changing = False
        self._build()
        self.retranslate()

    # ---------------------------------------------------------------- layout

    def _build(self) -> None:
        self.cards = new_table(len(CARD_ROWS), 2, row_names=True)
        self.drift_box = QGroupBox()
        drift_form = QFormLayout(self.drift_box)
        self.drift_names = {key: QLabel() for key in DRIFT_ROWS}
        self.drift_values = {key: QLabel() for key in DRIFT_ROWS}
        for key in DRIFT_ROWS:
            drift_form.addRow(self.drift_names[key], self.drift_values[key])
        self.rebaseline_button = QPushButton()
        self.rebaseline_button.clicked.connect(self.rebaseline)
        drift_form.addRow(self.rebaseline_button)
        top = QHBoxLayout()
        top.addWidget(self.cards, 2)
        top.addWidget(self.drift_box, 1)
        self.promote_buttons = [QPushButton(), QPushButton()]  # the next stage, then production
        self.discard_button = QPushButton()
        self.discard_button.clicked.connect(self.discard)
        self.rollback_button = QPushButton()
        self.rollback_button.clicked.connect(self.roll_back)
        self.permission = QLabel()
        self.permission.setWordWrap(True)
        self.outcome = QLabel()
        actions = QHBoxLayout()
        for index, button in enumerate(self.promote_buttons):
            button.clicked.connect(lambda _=False, i=index: self.promote(i))
            actions.addWidget(button)
        actions.addWidget(self.discard_button)
        actions.addWidget(self.rollback_button)
        actions.addWidget(self.permission, 1)
        self.gate_summary = QLabel()
        self.gates = new_table(0, 5)
        self.groups_title = QLabel()
        self.groups = new_table(0, 6)
        layout = QVBoxLayout(self)
        shown: tuple[QWidget, ...] = (self.gate_summary, self.gates, self.groups_title, self.groups)
        layout.addLayout(top, 3)
        layout.addLayout(actions)
        layout.addWidget(self.outcome)
        for part in shown:
            layout.addWidget(part, 2 if isinstance(part, QTableWidget) else 0)

    def retranslate(self) -> None:
        self.cards.setHorizontalHeaderLabels([t("Production"), t("Candidate")])
        self.cards.setVerticalHeaderLabels([
            t("Stage"), t("Name"), t("Version"), t("Signed by"), t("Signature"), t("Parent"), t("Source"),
            t("Federated run"), t("Rollback bundle"), t("Precision"), t("Provider"),
        ])  # fmt: skip
        self.gates.setHorizontalHeaderLabels([t("Gate"), t("Value"), t("Limit"), t("Passed"), t("Detail")])
        self.groups.setHorizontalHeaderLabels(
            [
                t("Group"),
                t("Labels"),
                t("Candidate"),
                t("Production"),
                t("Change (points)"),
                t("Too few labels"),
            ]
        )
        self.groups_title.setText(t("Accuracy by group (held-out labels)"))
        self.drift_box.setTitle(t("Drift of the production model"))
        names = (t("Status"), t("p-value"), t("Feature"), t("Reference window"), t("Current window"),
                 t("Labels requested"))  # fmt: skip
        for key, name in zip(DRIFT_ROWS, names, strict=True):
            self.drift_names[key].setText(name)
        self.discard_button.setText(t("Discard candidate…"))
        self.rebaseline_button.setText(t("Accept as normal…"))
        self.rollback_button.setText(t("Roll back"))
        self._show(self.view)

    # ---------------------------------------------------------------- loading

    def refresh(self) -> None:
        if self._loading:
            self._again = self._changing or self._again
            return
        self._loading = True
        data = self.context.connection.data
        self.context.call(lambda client: load(client, data), self._loaded, self._load_failed)

    def _loaded(self, loaded: Loaded | None) -> None:
        self._loading = False
        if self._again:
            self._again = False
            self.refresh()
            return
        if loaded is None:  # a role that may not read the models
            self.view = None
            self.outcome.setText(t("This role may not see the models."))
            self._show(None)
            return
        self._show(ModelView.of(loaded, self.context.role or loaded.status.role))

    def _load_failed(self, _message: str) -> None:
        self._loading = self._again = False

    # ---------------------------------------------------------------- actions

    def confirm(self, question: str) -> bool:
        """Ask before changing what the site serves (tests replace this)."""
        answer = QMessageBox.question(self, t("Please confirm"), question)
        return answer == QMessageBox.StandardButton.Yes

    def promote(self, index: int) -> None:
        view = self.view
        if view is None or view.candidate is None or index >= len(view.actions.promote_to):
            return
        target = view.actions.promote_to[index]
        question = t("Move candidate {name} v{version} from {stage} to {target}?").format(
            name=view.candidate.name, version=view.candidate.version,
            stage=stage_name(view.candidate.stage), target=stage_name(target),
        )  # fmt: skip
        if self.confirm(question):
            done = t("Candidate v{version} moved to {target}.").format(
                version=view.candidate.version, target=stage_name(target)
            )
            self._change(lambda client: client.promote(target), done)

    def discard(self) -> None:
        view = self.view
        if view is None or view.candidate is None:
            return
        candidate = view.candidate
        question = t(
            "Discard candidate {name} v{version}? It stops being judged; production keeps serving."
        ).format(name=candidate.name, version=candidate.version)
        if self.confirm(question):
            done = t("Candidate v{version} discarded.").format(version=candidate.version)
            self._change(lambda client: client.discard("discarded in the operator app"), done)

    def rebaseline(self) -> None:
        """A supervisor's "this traffic is the new normal": the next windows become the reference."""
        view = self.view
        if view is None or view.production is None:
            return
        question = t(
            "Accept today's traffic as normal for {name} v{version}? The next {items} answers become "
            "its drift reference, and an open alarm closes."
        )
        production = view.production
        items = view.drift.reference_needed
        if self.confirm(question.format(name=production.name, version=production.version, items=items)):
            done = t("The next answers become the drift reference.")
            reason = "accepted as normal in the operator app"
            self._change(lambda client: client.rebaseline_drift(reason), done)

    def roll_back(self) -> None:
        view = self.view
        version = view.actions.rollback_to if view is not None else None
        if view is None or version is None:
            return
        current = view.production.version if view.production else NONE
        question = t("Put v{version} back into production in place of v{current}?").format(
            version=version, current=current
        )
        if self.confirm(question):
            done = t("v{version} is production again.").format(version=version)
            self._change(lambda client: client.rollback(version), done)

    def _change(self, request: Any, done: str) -> None:
        self._changing = True
        self._enable_actions(False)
        self.outcome.setText(t("Working…"))
        self.context.call(request, lambda _result: self._changed(done), self._change_failed)

    def _changed(self, done: str) -> None:
        self._changing = False
        self.outcome.setText(done)
        self.refresh()

    def _change_failed(self, message: str) -> None:
        self._changing = False
        self.outcome.setText(t("Not changed: {message}").format(message=message))
        self._show(self.view)

    # ---------------------------------------------------------------- showing

    def _show(self, view: ModelView | None) -> None:
        self.view = view
        for column, card in enumerate((view.production, view.candidate) if view else (None, None)):
            for row, text in enumerate(_card_texts(card)):
                fill(self.cards, row, column, text)
        self._show_gates(view)
        self._show_drift(view)
        self._show_actions(view)

    def _show_gates(self, view: ModelView | None) -> None:
        if view is None or view.candidate is None:
            self.gate_summary.setText(t("No candidate: install a bundle to start a rollout."))
        else:
            verdict = t("every gate passed") if view.gates_passed else t("not every gate has passed")
            summary = t("Gates for candidate v{version} in {stage}: {items} answers, {verdict}")
            self.gate_summary.setText(
                summary.format(
                    version=view.candidate.version,
                    stage=stage_name(view.candidate.stage),
                    items=view.gate_items,
                    verdict=verdict,
                )
            )
        gates = view.gates if view else ()
        fill_rows(
            self.gates, [(_gate_name(g.name), g.value, g.limit, _yes_no(g.passed), g.detail) for g in gates]
        )
        groups = view.groups if view else ()
        fill_rows(self.groups, [
            (g.group, str(g.labels), g.candidate, g.production, g.delta_pts, t("yes") if g.too_small else "")
            for g in groups
        ])  # fmt: skip
        self.groups_title.setVisible(bool(groups))
        self.groups.setVisible(bool(groups))

    def _show_drift(self, view: ModelView | None) -> None:
        drift = view.drift if view and view.production else None
        statuses = {"ok": t("no drift"), "warning": t("warning"), "drift": t("drift")}
        status = NONE if drift is None else statuses.get(str(drift.status), t("no check yet"))
        if drift is not None and not drift.enabled:
            status = t("not monitored")
        elif drift is not None and drift.episode_open:
            status = t("{status}, alarm open").format(status=status)
        texts = dict.fromkeys(DRIFT_ROWS, NONE) | {"status": status}
        if drift is not None:
            window = t("{items} of {size} answers").format(items=drift.window_items, size=drift.window_size)
            texts |= {"p_value": drift.p_value, "feature": drift.feature, "window": window,
                      "labels": str(drift.labels_requested)}  # fmt: skip
            if drift.reference_building:
                texts["reference"] = t("{items} of {needed} answers, still building").format(
                    items=drift.reference_items or 0, needed=drift.reference_needed
                )
            else:
                texts["reference"] = t("{items} answers").format(items=drift.reference_items)
        for key, text in texts.items():
            self.drift_values[key].setText(text)

    def _show_actions(self, view: ModelView | None) -> None:
        allowed = view is not None and view.actions.allowed
        targets = view.actions.promote_to if view else ()
        for index, button in enumerate(self.promote_buttons):
            button.setVisible(allowed and index < len(targets))
            if index < len(targets):
                button.setText(t("Promote to {stage}…").format(stage=stage_name(targets[index])))
        self.discard_button.setVisible(allowed and view is not None and view.candidate is not None)
        monitored = view is not None and view.production is not None and view.drift.enabled
        self.rebaseline_button.setVisible(allowed and monitored)
        self.rollback_button.setVisible(allowed)
        self._enable_actions(True)
        if view is not None and not allowed:
            self.permission.setText(t("Only a supervisor may promote or roll back models."))
        elif view is not None and view.actions.rollback_to is None:
            self.permission.setText(t("No earlier production model to roll back to."))
        else:
            self.permission.clear()

    def _enable_actions(self, enabled: bool) -> None:
        enabled = enabled and not self._changing  # one change at a time
        for button in (*self.promote_buttons, self.discard_button, self.rebaseline_button):
            button.setEnabled(enabled)
        rollback_to = self.view.actions.rollback_to if self.view else None
        self.rollback_button.setEnabled(enabled and rollback_to is not None)


def load(client: AgentClient, data: Path) -> Loaded | None:
    """On a worker: everything the tab shows; None for a role that may not read it."""
    try:
        return Loaded(status=client.status(), gates=client.gates(), drift=client.drift(),
                      models=client.models(), site_key_id=site_key_id(data))  # fmt: skip
    except PermissionDeniedError:
        return None


def site_key_id(data: Path) -> str | None:
    """The id of the key this site signs its own training candidates with (None without one)."""
    try:
        public = SiteFolder(data).site_public_key()
    except (GenbaError, OSError):
        return None
    return keys.key_id(public) if public is not None else None


def _card_texts(card: ModelCard | None) -> list[str]:
    if card is None:
        return [t("none")] + [""] * (len(CARD_ROWS) - 1)
    signer = card.signer_key_id or NONE
    if card.by_this_site:
        signer = t("{key} (this site)").format(key=signer)
    federated = NONE
    if card.federated_run:
        federated = t("{run}, round {round}").format(run=card.federated_run, round=card.federated_round)
    return [
        stage_name(card.stage), card.name, f"v{card.version}", signer,
        t("verified") if card.verified else t("not verified"),
        f"v{card.parent_version}" if card.parent_version is not None else NONE,
        _source_name(card.source_kind), federated, _yes_no(card.rollback), card.precision, card.provider,
    ]  # fmt: skip


def _source_name(kind: str) -> str:
    names = {"export": t("exported by IT"), "site-training": t("trained at a site"),
             "federated": t("federated training"), "rollback": t("rollback by IT")}  # fmt: skip
    return names.get(kind, kind)


def _gate_name(name: str) -> str:
    names = {"items": t("Answers in this stage"), "agreement": t("Agreement with production"),
             "accuracy": t("Accuracy change (points)"), "groups": t("Worst group change (points)"),
             "latency_p95_ms": t("Latency p95 (ms)")}  # fmt: skip
    return names.get(name, name)


def _yes_no(value: bool) -> str:
    return t("yes") if value else t("no")
