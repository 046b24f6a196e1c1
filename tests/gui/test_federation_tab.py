"""Federation: joined or not, the last update sent, and the egress ledger with its totals by kind."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from edge_agent.service.schemas import ChainResponse, FederationResponse
from edge_agent.store import SiteStore
from gui.viewmodels.federation import FederationView, LastUpdate, LedgerRow, PrivacyBudget, when

SUPERLINK = "superlink.it.example:9092"
DP = {"noise_multiplier": 0.8, "clipping_norm": 1.0, "delta": 1e-5, "epsilon": 2.5}
#: What a site sends in one SecAgg+ round, in the order it sends it (round, kind, bytes).
SENT = [
    (1, "secagg_public_keys", 140),
    (1, "secagg_key_shares", 960),
    (1, "masked_update", 48_000),
    (1, "secagg_unmask_shares", 520),
    (2, "secagg_public_keys", 140),
    (2, "masked_update", 48_200),
]


def _federation_tab(qtbot: Any, window: Any, settle: Callable[..., None]) -> Any:
    tab = window.pages["federation"]
    window.tabs.setCurrentWidget(tab)  # showing the tab loads it
    qtbot.waitUntil(lambda: tab.view is not None, timeout=20_000)
    settle(window)
    return tab


def _rows(table: Any) -> list[list[str]]:
    return [[table.item(r, c).text() for c in range(table.columnCount())] for r in range(table.rowCount())]


def test_a_site_that_never_joined_shows_an_empty_ledger(
    qtbot: Any, served_site: Any, open_window: Callable[..., Any], settle: Callable[..., None]
) -> None:
    window = open_window(served_site.site, role="operator")
    tab = _federation_tab(qtbot, window, settle)
    assert tab.joined.text().startswith("Not joined")
    assert tab.rounds.text() == "Rounds taken part in: 0"
    assert tab.ledger.rowCount() == 0
    assert _rows(tab.totals) == [["All kinds", "0"]]
    assert {label.text() for label in tab.last_values.values()} == {"—"}
    assert "verifies" in tab.verified.text()
    budget = {key: label.text() for key, label in tab.budget_values.items()}
    assert budget == {"budget": "ε = 10, δ = 1e-05", "spent": "0", "left": "10", "rounds": "0 in 0 runs",
                      "declined": "never"}  # fmt: skip


def test_the_ledger_lists_what_left_the_site_newest_first_with_totals_by_kind(
    qtbot: Any, served_site: Any, open_window: Callable[..., Any], settle: Callable[..., None]
) -> None:
    with SiteStore(served_site.site.store_file) as store:  # as the ClientApp's egress mod records them
        for round_, kind, size in SENT:
            details = {"differential_privacy": DP} if kind == "masked_update" else None
            store.append_egress(
                destination=SUPERLINK, kind=kind, payload_bytes=size, round=round_, details=details,
                content_sha256=f"{size:064x}",
            )
    window = open_window(served_site.site)
    tab = _federation_tab(qtbot, window, settle)

    rows = _rows(tab.ledger)
    assert [row[1:] for row in rows] == [
        [SUPERLINK, kind, f"{size:,}", str(round_), f"{size:064x}"] for round_, kind, size in reversed(SENT)
    ]
    assert rows == sorted(rows, key=lambda row: row[0], reverse=True)  # times too: newest first
    totals: dict[str, int] = {}
    for _, kind, size in SENT:
        totals[kind] = totals.get(kind, 0) + size
    expected = [[kind, f"{totals[kind]:,}"] for kind in sorted(totals)]
    assert _rows(tab.totals) == [*expected, ["All kinds", f"{sum(totals.values()):,}"]]
    assert tab.rounds.text() == "Rounds taken part in: 2"
    last = {key: label.text() for key, label in tab.last_values.items()}
    assert last["round"] == "2" and last["bytes"] == "48,200" and last["masked"] == "yes"
    assert last["privacy"] == "ε = 2.5, δ = 1e-05"
    assert tab.joined.text().startswith("Not joined")  # no SuperNode runs for this site


def test_the_budget_box_shows_what_the_site_spent_and_the_last_round_it_declined(
    qtbot: Any, served_site: Any, open_window: Callable[..., Any], settle: Callable[..., None]
) -> None:
    from edge_agent.federation import dp

    with SiteStore(served_site.site.store_file) as store:  # as the ClientApp's DP mod records them
        for run, round_, spent in ((3, 1, 4.73), (3, 2, 7.08), (4, 1, 9.01)):
            details = {"run": run, "round": round_, "noise_multiplier": 1.0, "epsilon_spent": spent}
            store.append_audit(dp.SPENT_EVENT, "federation", details)
        reason = "this round would bring the site's lifetime ε to 10.7 (δ = 1e-05), past its budget of 10"
        store.append_audit(dp.REFUSED_EVENT, "federation", {"step": "privacy", "reason": reason})
        store.append_audit(dp.REFUSED_EVENT, "federation", {"step": "fit", "reason": "another model"})
    window = open_window(served_site.site, role="operator")
    tab = _federation_tab(qtbot, window, settle)
    budget = {key: label.text() for key, label in tab.budget_values.items()}
    assert budget["budget"] == "ε = 10, δ = 1e-05" and budget["spent"] == "9.01" and budget["left"] == "0.99"
    assert budget["rounds"] == "3 in 2 runs"
    assert budget["declined"].endswith(": " + reason)  # the privacy refusal, not the newer one for the model


# ---------------------------------------------------------------- the view-model alone


BUDGET = {"epsilon_budget": 10.0, "epsilon_spent": 4.5, "epsilon_left": 5.5, "delta": 1e-5, "rounds": 2,
          "runs": 1, "last_declined": {"at": 60.0, "reason": "past it"}, "problem": None}  # fmt: skip


def _federation(**fields: Any) -> FederationResponse:
    """``/v1/federation`` of a site that never joined, with ``fields`` changed."""
    return FederationResponse.model_validate({
        "joined": False, "superlink": None, "joined_since": None, "updates_sent": 0, "last_update": None,
        "bytes_sent_by_kind": {}, "differential_privacy": None, "privacy_budget": BUDGET,
        "control_traffic": None,
    } | fields)  # fmt: skip


def test_the_view_model_reads_the_state_and_sorts_the_ledger() -> None:
    federation = _federation(
        joined=True, superlink=SUPERLINK, joined_since=0.0, updates_sent=3,
        last_update={"at": 60.0, "round": 3, "payload_bytes": 48_000, "masked": True},
        differential_privacy=DP, bytes_sent_by_kind={"masked_update": 1},
    )  # fmt: skip
    egress = ChainResponse.model_validate({
        "verified": True,
        "totals": {"secagg_public_keys": 140, "masked_update": 48_000},
        "entries": [
            {"seq": 1, "created_at": 30.0, "hash": "1", "fields": {
                "destination": SUPERLINK, "kind": "secagg_public_keys", "payload_bytes": 140, "round": 3}},
            {"seq": 2, "created_at": 60.0, "hash": "2", "fields": {
                "destination": SUPERLINK, "kind": "masked_update", "payload_bytes": 48_000, "round": 3,
                "content_sha256": "ab" * 32}},
        ],
    })  # fmt: skip
    view = FederationView.of(federation, egress, tz=dt.UTC)
    assert view.joined and view.superlink == SUPERLINK and view.joined_since == "1970-01-01 00:00:00"
    assert view.rounds == 3
    assert view.last_update == LastUpdate(3, "1970-01-01 00:01:00", 48_000, True, 2.5, 1e-5)
    assert view.ledger == (
        LedgerRow(2, "1970-01-01 00:01:00", SUPERLINK, "masked_update", 48_000, 3, "ab" * 32),
        LedgerRow(1, "1970-01-01 00:00:30", SUPERLINK, "secagg_public_keys", 140, 3, ""),  # before v4
    )
    assert view.totals == (("masked_update", 48_000), ("secagg_public_keys", 140))  # the ledger's, by kind
    assert view.total_bytes == 48_140 and view.verified


def test_the_view_model_reads_the_budget_and_a_budget_it_cannot_know() -> None:
    view = FederationView.of(_federation(), tz=dt.UTC)
    assert view.budget == PrivacyBudget(10.0, 4.5, 5.5, 1e-5, 2, 1, "1970-01-01 00:01:00: past it", None)
    broken = {**BUDGET, "epsilon_budget": None, "epsilon_left": None, "last_declined": None,
              "problem": "this site's ε budget is unknown: invalid configuration"}  # fmt: skip
    budget = FederationView.of(_federation(privacy_budget=broken)).budget
    assert budget is not None and budget.budget is None and budget.left is None
    assert budget.last_declined is None and budget.problem == broken["problem"]


def test_the_view_model_of_a_site_that_never_joined() -> None:
    view = FederationView.of(_federation(), ChainResponse(entries=[], verified=True, totals={}))
    assert not view.joined and view.joined_since is None and view.rounds == 0
    assert view.last_update is None and view.ledger == () and view.totals == () and view.total_bytes == 0


def test_an_update_without_differential_privacy_has_no_epsilon() -> None:
    federation = _federation(last_update={"at": 0, "round": None, "payload_bytes": 10, "masked": True})
    last = FederationView.of(federation).last_update
    assert last is not None and last.round is None and last.epsilon is None and last.delta is None
    assert when(None) == "" and when(86_400, dt.UTC) == "1970-01-02 00:00:00"
