"""Federation: whether the site takes part, the last update it sent, the egress ledger, and the
site's lifetime differential-privacy budget.

The ledger lists every message that left the site (newest first) with the bytes sent by kind,
so a supervisor can see exactly what federation cost and that nothing else went out; the budget
box shows the ε this site has spent on differentially private runs, what is left, and the last
round it declined.
"""

from __future__ import annotations

from PySide6.QtWidgets import QFormLayout, QGroupBox, QHBoxLayout, QLabel, QVBoxLayout

from edge_agent.service.client import AgentClient
from genba.errors import PermissionDeniedError
from gui.i18n import t
from gui.viewmodels.federation import FederationView
from gui.widgets.base import Context, Tab
from gui.widgets.tables import fill_rows, new_table

#: Ledger entries shown (the totals cover the whole ledger).
LEDGER_ROWS = 200
LAST_UPDATE_ROWS = ("round", "at", "bytes", "masked", "privacy")
BUDGET_ROWS = ("budget", "spent", "left", "rounds", "declined")


class FederationTab(Tab):
    def __init__(self, context: Context) -> None:
        super().__init__(context)
        self.view: FederationView | None = None
        self._loading = False
        self._build()
        self.retranslate()

    def _build(self) -> None:
        self.joined = QLabel()
        self.joined.setWordWrap(True)
        self.rounds = QLabel()
        self.last_box = QGroupBox()
        form = QFormLayout(self.last_box)
        self.last_names = {key: QLabel() for key in LAST_UPDATE_ROWS}
        self.last_values = {key: QLabel() for key in LAST_UPDATE_ROWS}
        for key in LAST_UPDATE_ROWS:
            form.addRow(self.last_names[key], self.last_values[key])
        self.budget_box = QGroupBox()
        budget_form = QFormLayout(self.budget_box)
        self.budget_names = {key: QLabel() for key in BUDGET_ROWS}
        self.budget_values = {key: QLabel() for key in BUDGET_ROWS}
        self.budget_values["declined"].setWordWrap(True)
        for key in BUDGET_ROWS:
            budget_form.addRow(self.budget_names[key], self.budget_values[key])
        self.ledger_title = QLabel()
        self.ledger = new_table(0, 6)
        self.totals_title = QLabel()
        self.totals = new_table(0, 2)
        self.verified = QLabel()
        columns = QHBoxLayout()
        left = QVBoxLayout()
        left.addWidget(self.ledger_title)
        left.addWidget(self.ledger, 1)
        right = QVBoxLayout()
        right.addWidget(self.last_box)
        right.addWidget(self.budget_box)
        right.addWidget(self.totals_title)
        right.addWidget(self.totals, 1)
        columns.addLayout(left, 3)
        columns.addLayout(right, 2)
        layout = QVBoxLayout(self)
        layout.addWidget(self.joined)
        layout.addWidget(self.rounds)
        layout.addLayout(columns, 1)
        layout.addWidget(self.verified)

    def retranslate(self) -> None:
        self.last_box.setTitle(t("Last update sent"))
        names = (t("Round"), t("Sent at"), t("Bytes"), t("Masked (secure aggregation)"),
                 t("Differential privacy"))  # fmt: skip
        for key, name in zip(LAST_UPDATE_ROWS, names, strict=True):
            self.last_names[key].setText(name)
        self.budget_box.setTitle(t("Differential privacy budget (this site, lifetime)"))
        budget_names = (t("ε budget"), t("ε spent"), t("ε left"), t("Private rounds taken part in"),
                        t("Last declined"))  # fmt: skip
        for key, name in zip(BUDGET_ROWS, budget_names, strict=True):
            self.budget_names[key].setText(name)
        self.ledger_title.setText(t("Egress ledger: every message that left this site, newest first"))
        self.ledger.setHorizontalHeaderLabels(
            [t("Time"), t("Destination"), t("Kind"), t("Bytes"), t("Round"), t("Content SHA-256")]
        )
        self.totals_title.setText(t("Bytes sent by kind"))
        self.totals.setHorizontalHeaderLabels([t("Kind"), t("Bytes")])
        self._show(self.view)

    # ---------------------------------------------------------------- loading

    def refresh(self) -> None:
        if self._loading:
            return
        self._loading = True
        self.context.call(load, self._loaded, self._load_failed)

    def _loaded(self, view: FederationView | None) -> None:
        self._loading = False
        self._show(view)
        if view is None:
            self.joined.setText(t("This role may not see the federation records."))

    def _load_failed(self, _message: str) -> None:
        self._loading = False

    # ---------------------------------------------------------------- showing

    def _show(self, view: FederationView | None) -> None:
        self.view = view
        self._show_joined(view)
        self._show_last_update(view)
        self._show_budget(view)
        rows = view.ledger if view else ()
        fill_rows(self.ledger, [
            (r.time, r.destination, r.kind, count(r.payload_bytes), "" if r.round is None else str(r.round),
             r.content_sha256)
            for r in rows
        ])  # fmt: skip
        totals = view.totals if view else ()
        total = view.total_bytes if view else 0
        fill_rows(self.totals, [*((kind, count(n)) for kind, n in totals), (t("All kinds"), count(total))])
        if view is None:
            self.verified.clear()
        elif view.verified:
            self.verified.setText(t("The ledger's hash chain verifies: no entry was changed or removed."))
        else:
            self.verified.setText(t("The ledger's hash chain does NOT verify: tell IT."))

    def _show_joined(self, view: FederationView | None) -> None:
        if view is None:
            self.joined.setText(t("Loading…"))
            self.rounds.clear()
            return
        if view.joined:
            self.joined.setText(t("Joined the federation at {superlink} since {since}").format(
                superlink=view.superlink or "—", since=view.joined_since or "—"
            ))  # fmt: skip
        else:
            self.joined.setText(t("Not joined: this site takes part in no federated training now."))
        self.rounds.setText(t("Rounds taken part in: {rounds}").format(rounds=view.rounds))

    def _show_last_update(self, view: FederationView | None) -> None:
        last = view.last_update if view else None
        texts = dict.fromkeys(LAST_UPDATE_ROWS, "—")
        if last is not None:
            privacy = t("off")
            if last.epsilon is not None:
                privacy = t("ε = {epsilon}, δ = {delta}").format(epsilon=f"{last.epsilon:.3g}",
                                                                 delta=f"{last.delta or 0:.3g}")  # fmt: skip
            texts = {"round": "—" if last.round is None else str(last.round), "at": last.at,
                     "bytes": count(last.payload_bytes), "masked": t("yes") if last.masked else t("no"),
                     "privacy": privacy}  # fmt: skip
        for key, text in texts.items():
            self.last_values[key].setText(text)

    def _show_budget(self, view: FederationView | None) -> None:
        budget = view.budget if view else None
        texts = dict.fromkeys(BUDGET_ROWS, "—")
        if budget is not None:
            delta = f"{budget.delta:.3g}"
            texts = {
                "budget": t("unknown: {problem}").format(problem=budget.problem)
                if budget.budget is None
                else t("ε = {epsilon}, δ = {delta}").format(epsilon=f"{budget.budget:.3g}", delta=delta),
                "spent": f"{budget.spent:.3g}",
                "left": "—" if budget.left is None else f"{budget.left:.3g}",
                "rounds": t("{rounds} in {runs} runs").format(rounds=budget.rounds, runs=budget.runs),
                "declined": budget.last_declined or t("never"),
            }
        for key, text in texts.items():
            self.budget_values[key].setText(text)


def load(client: AgentClient) -> FederationView | None:
    """On a worker: the federation state and the newest ledger entries; None for a role that may not."""
    try:
        return FederationView.of(client.federation(), client.egress(limit=LEDGER_ROWS))
    except PermissionDeniedError:
        return None


def count(value: int) -> str:
    return f"{value:,}"
