"""Model: production and candidate side by side, the gates, drift; promote and roll back as a supervisor."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from edge_agent.service.schemas import (
    DriftStatus,
    GatesResponse,
    InstalledModel,
    ModelsResponse,
    ProductionPeriod,
    StatusResponse,
)
from gui.viewmodels.model import (
    Loaded,
    ModelCard,
    ModelView,
    later_stages,
    number,
    rollback_version,
    version_label,
)
from gui.widgets.model_tab import CARD_ROWS

GATE_NAMES = [
    "Answers in this stage",
    "Agreement with production",
    "Accuracy change (points)",
    "Worst group change (points)",
    "Latency p95 (ms)",
]


def _model_tab(qtbot: Any, window: Any, settle: Callable[..., None]) -> Any:
    tab = window.pages["model"]
    window.tabs.setCurrentWidget(tab)  # showing the tab loads it
    qtbot.waitUntil(lambda: tab.view is not None, timeout=20_000)
    settle(window)
    return tab


def _reload(qtbot: Any, window: Any, settle: Callable[..., None], tab: Any) -> None:
    tab.view = None
    tab.refresh()
    qtbot.waitUntil(lambda: tab.view is not None, timeout=20_000)
    settle(window)


def _card(tab: Any, row: str, column: int) -> str:
    item = tab.cards.item(CARD_ROWS.index(row), column)
    return item.text() if item else ""


def _column(table: Any, column: int) -> list[str]:
    return [table.item(row, column).text() for row in range(table.rowCount())]


def _asked(tab: Any, monkeypatch: pytest.MonkeyPatch, answer: bool) -> list[str]:
    questions: list[str] = []
    monkeypatch.setattr(tab, "confirm", lambda question: questions.append(question) or answer)
    return questions


# ---------------------------------------------------------------- against the agent


def test_production_then_a_shadow_candidate_with_its_gates(
    qtbot: Any,
    served_site: Any,
    open_window: Callable[..., Any],
    settle: Callable[..., None],
    bundle_versions: dict[int, Path],
) -> None:
    window = open_window(served_site.site)
    tab = _model_tab(qtbot, window, settle)
    assert [_card(tab, row, 0) for row in ("stage", "version", "signature", "precision", "provider")] == [
        "production", "v1", "verified", "fp32", "CPU · cpu variant",
    ]  # fmt: skip
    assert _card(tab, "source", 0) == "exported by IT" and "(this site)" not in _card(tab, "signer", 0)
    assert _card(tab, "stage", 1) == "none" and tab.gates.rowCount() == 0
    assert tab.gate_summary.text().startswith("No candidate")
    assert tab.drift_values["window"].text().endswith("of 20 answers")

    with served_site.client() as client:
        client.install(bundle_versions[2])
    _reload(qtbot, window, settle, tab)
    assert [_card(tab, row, 1) for row in ("stage", "version", "signature")] == ["shadow", "v2", "verified"]
    assert _card(tab, "signer", 1) == _card(tab, "signer", 0) != "—"  # both signed by IT's key
    assert _column(tab.gates, 0) == GATE_NAMES
    assert _column(tab.gates, 2)[0] == "≥ 12" and _column(tab.gates, 2)[-1] == "≤ 5000"
    assert tab.gate_summary.text().startswith("Gates for candidate v2 in shadow")
    buttons = [b.text() for b in tab.promote_buttons if b.isVisible()]
    assert buttons == ["Promote to pilot…", "Promote to production…"]


def test_a_supervisor_promotes_after_confirming_and_a_declined_question_changes_nothing(
    qtbot: Any,
    served_site: Any,
    open_window: Callable[..., Any],
    settle: Callable[..., None],
    bundle_versions: dict[int, Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with served_site.client() as client:
        client.install(bundle_versions[2])
    window = open_window(served_site.site, role="supervisor")
    tab = _model_tab(qtbot, window, settle)

    declined = _asked(tab, monkeypatch, False)
    tab.promote_buttons[0].click()
    settle(window)
    assert declined == ["Move candidate tiny-bert v2 from shadow to pilot?"]
    with served_site.client() as client:
        assert client.status().candidate.stage == "shadow"

    confirmed = _asked(tab, monkeypatch, True)
    tab.promote_buttons[0].click()
    qtbot.waitUntil(lambda: _card(tab, "stage", 1) == "pilot", timeout=20_000)
    settle(window)
    assert len(confirmed) == 1 and tab.outcome.text() == "Candidate v2 moved to pilot."
    with served_site.client() as client:
        assert client.status().candidate.stage == "pilot"
    assert [b.text() for b in tab.promote_buttons if b.isVisible()] == ["Promote to production…"]


def test_a_rollback_puts_the_replaced_version_back(
    qtbot: Any,
    served_site: Any,
    open_window: Callable[..., Any],
    settle: Callable[..., None],
    bundle_versions: dict[int, Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with served_site.client() as client:
        client.install(bundle_versions[2])
        client.promote("production")
    window = open_window(served_site.site)
    tab = _model_tab(qtbot, window, settle)
    assert _card(tab, "version", 0) == "v2" and tab.view.actions.rollback_to == "1"
    assert tab.rollback_button.isVisible() and tab.rollback_button.isEnabled()

    questions = _asked(tab, monkeypatch, True)
    tab.rollback_button.click()
    qtbot.waitUntil(lambda: _card(tab, "version", 0) == "v1", timeout=20_000)
    settle(window)
    assert questions == ["Put v1 back into production in place of v2?"]
    assert tab.outcome.text() == "v1 is production again." and not tab.rollback_button.isEnabled()
    assert tab.permission.text() == "No earlier production model to roll back to."  # v1 was restored
    with served_site.client() as client:
        assert client.status().production.version == 1


def test_a_supervisor_discards_the_candidate_after_confirming(
    qtbot: Any,
    served_site: Any,
    open_window: Callable[..., Any],
    settle: Callable[..., None],
    bundle_versions: dict[int, Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with served_site.client() as client:
        client.install(bundle_versions[2])
    window = open_window(served_site.site, role="supervisor")
    tab = _model_tab(qtbot, window, settle)
    assert tab.discard_button.isVisible() and tab.discard_button.isEnabled()

    declined = _asked(tab, monkeypatch, False)
    tab.discard_button.click()
    settle(window)
    assert declined == ["Discard candidate tiny-bert v2? It stops being judged; production keeps serving."]
    with served_site.client() as client:
        assert client.status().candidate.stage == "shadow"

    _asked(tab, monkeypatch, True)
    tab.discard_button.click()
    qtbot.waitUntil(lambda: _card(tab, "stage", 1) == "none", timeout=20_000)
    settle(window)
    assert tab.outcome.text() == "Candidate v2 discarded." and not tab.discard_button.isVisible()
    with served_site.client() as client:
        assert client.status().candidate is None and client.status().production.version == 1
        assert client.audit(limit=1).entries[0].fields["event"] == "discard_candidate"


def test_a_supervisor_accepts_the_traffic_as_normal_and_drift_builds_a_new_reference(
    qtbot: Any,
    served_site: Any,
    open_window: Callable[..., Any],
    settle: Callable[..., None],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with served_site.client() as client:
        client.predict_batch([f"report {n}: dent near the flange, part {n}" for n in range(20)])  # one window
        waited = 0
        while client.drift().reference is None and waited < 200:
            qtbot.wait(100)
            waited += 1
        needed = client.drift().reference_items_needed
    window = open_window(served_site.site, role="supervisor")
    tab = _model_tab(qtbot, window, settle)
    assert tab.drift_values["reference"].text() == f"20 of {needed} answers, still building"
    assert tab.rebaseline_button.isVisible() and tab.rebaseline_button.isEnabled()

    declined = _asked(tab, monkeypatch, False)
    tab.rebaseline_button.click()
    settle(window)
    assert declined == [
        f"Accept today's traffic as normal for tiny-bert v1? The next {needed} answers become its drift "
        "reference, and an open alarm closes."
    ]
    with served_site.client() as client:
        assert client.drift().reference.items == 20  # declined: nothing changed

    _asked(tab, monkeypatch, True)
    tab.rebaseline_button.click()
    done = "The next answers become the drift reference."
    qtbot.waitUntil(lambda: tab.outcome.text() == done, timeout=20_000)
    settle(window)
    assert tab.drift_values["reference"].text() == f"0 of {needed} answers, still building"
    with served_site.client() as client:
        assert client.drift().reference is None
        entry = client.audit(limit=1).entries[0].fields
        assert entry["event"] == "drift_rebaseline" and entry["actor"] == "supervisor"


def test_an_operator_is_not_offered_promote_or_rollback(
    qtbot: Any,
    served_site: Any,
    open_window: Callable[..., Any],
    settle: Callable[..., None],
    bundle_versions: dict[int, Path],
) -> None:
    with served_site.client() as client:
        client.install(bundle_versions[2])
    window = open_window(served_site.site, role="operator")
    tab = _model_tab(qtbot, window, settle)
    assert _card(tab, "stage", 1) == "shadow"  # the operator still sees the models
    assert not any(b.isVisible() for b in [*tab.promote_buttons, tab.rollback_button, tab.rebaseline_button])
    assert tab.permission.text() == "Only a supervisor may promote or roll back models."


def test_the_groups_gate_rows_fill_their_own_table(
    qtbot: Any, served_site: Any, open_window: Callable[..., Any], settle: Callable[..., None]
) -> None:
    window = open_window(served_site.site)
    tab = _model_tab(qtbot, window, settle)
    tab._show(ModelView.of(LOADED, "supervisor"))
    assert tab.groups.isVisibleTo(tab) and tab.groups.rowCount() == 2
    assert [tab.groups.item(0, c).text() for c in range(6)] == [
        "line=L1",
        "8",
        "87.5 %",
        "75.0 %",
        "+12.5",
        "",
    ]
    assert [tab.groups.item(1, c).text() for c in range(6)] == ["line=L2", "2", "—", "—", "—", "yes"]


# ---------------------------------------------------------------- the view-model alone

SITE_KEY = "5a5a5a5a5a5a5a5a"
IT_KEY = "226f5072a47b8363"


def _installed(**fields: Any) -> dict[str, Any]:
    """An installed model as ``/v1/status`` describes it, with ``fields`` changed."""
    return {
        "model_id": 1, "name": "tiny-bert", "version": 2, "revision": 0, "version_label": "2", "task": "text",
        "labels": ["dent", "ok"], "precision": "fp32", "signer_key_id": IT_KEY, "signature_verified": True,
        "lineage": None, "provider": "CPUExecutionProvider", "io_binding": False, "variant": "default",
        "variant_reason": None, "placement": None,
    } | fields  # fmt: skip


def _status(**fields: Any) -> StatusResponse:
    """A ``/v1/status`` answer of site-a: no candidate, drift not checked yet, with ``fields`` changed."""
    return StatusResponse.model_validate({
        "role": "supervisor", "site": "site-a", "production": None, "candidate": None, "gates": None,
        "holdout": {"epoch": 0, "started_at": 0.0, "reason": "the first held-out set", "labels": 0,
                    "history_labels": 0, "candidates_judged": 0, "reuse_limit": 10},
        "audit_sample": {"drawn": 0, "labelled": 0, "held_out": 0, "share": 0.0},
        "drift": {"enabled": True, "status": None},
        "privacy_budget": {"epsilon_budget": 8.0, "epsilon_spent": 0.0, "epsilon_left": 8.0, "delta": 1e-5,
                           "rounds": 0, "runs": 0, "last_declined": None, "problem": None},
        "problems": [], "batching": {"batches": 0, "items": 0, "mean_batch_size": 0.0, "max_batch_size": 0,
                                     "waiting": 0},
        "shadow_dropped": 0, "uptime_s": 1.0, "pid": 1, "versions": {},
        "store": {"schema_version": 9, "durability": "power_cut"},
    } | fields)  # fmt: skip


def _period(version: int, end_reason: str | None = None, revision: int = 0) -> ProductionPeriod:
    label = f"{version}.{revision}" if revision else str(version)
    return ProductionPeriod(
        id=version, model_id=version, name="tiny-bert", version=version, revision=revision,
        version_label=label, started_at=0.0, ended_at=None, end_reason=end_reason,
    )  # fmt: skip


def _gate(name: str, value: float | None, limit: float, **fields: Any) -> dict[str, Any]:
    return {"name": name, "passed": True, "value": value, "limit": limit, "detail": name, "breakdown": [],
            "evidence": None} | fields  # fmt: skip


CANDIDATE = _installed(
    model_id=2, revision=1, version_label="2.1", stage="pilot", since=0.0, signer_key_id=SITE_KEY,
    precision="int8", provider="CUDAExecutionProvider",
    lineage={"parent": {"name": "tiny-bert", "version": 2}, "federated_run": None, "round": None,
             "rollback": False, "source": {"kind": "site-training", "site": "site-a"}},
)  # fmt: skip
PRODUCTION = _installed(
    lineage={"parent": {"version": 1}, "federated_run": "run-7", "round": 5, "rollback": False,
             "source": {"kind": "federated", "run": "run-7"}},
)  # fmt: skip
GROUPS_GATE = _gate("groups", 12.5, -5.0, detail="worst group line=L1", breakdown=[
    {"group": "line=L1", "labels": 8, "inputs": 8, "candidate": 0.875, "production": 0.75, "delta_pts": 12.5,
     "too_small": False},
    {"group": "line=L2", "labels": 2, "inputs": 2, "candidate": None, "production": None, "delta_pts": None,
     "too_small": True},
])  # fmt: skip
LOADED = Loaded(
    status=_status(candidate=CANDIDATE, production=PRODUCTION),
    gates=GatesResponse.model_validate({"decisions": [], "gates": {
        "model_id": 2, "stage": "pilot", "items": 40, "ready": True, "passed": True, "gates": [
            _gate("latency_p95_ms", 3.14159, 50.0), _gate("accuracy", None, -0.0), GROUPS_GATE,
        ]}}),
    drift=DriftStatus.model_validate({
        "enabled": True, "status": "drift", "reference": {"items": 20, "first_prediction": 1,
                                                           "last_prediction": 20, "created_at": 0.0},
        "latest": {"status": "drift", "reference": "production", "feature": "proj:3", "statistic": 0.5,
                   "p_value": 0.000123, "tests": 8, "items": 20, "first_prediction": 21,
                   "last_prediction": 40, "alarm": True},
        "items_in_current_window": 7, "window_items": 20, "labels_requested": 4,
        "reference_items_needed": 160, "episode_open": True,
    }),
    models=ModelsResponse.model_validate({"models": [], "history": [_period(2), _period(1, "replaced")]}),
)  # fmt: skip


def test_the_view_model_reads_cards_gates_groups_drift_and_actions() -> None:
    view = ModelView.of(LOADED, "supervisor")
    assert view.candidate == ModelCard(
        name="tiny-bert", version="2.1", stage="pilot", signer_key_id=SITE_KEY, by_this_site=True,
        verified=True, parent_version="2", source_kind="site-training", federated_run=None,
        federated_round=None, rollback=False, precision="int8", provider="CUDA · default variant",
    )  # fmt: skip
    production = view.production
    assert production is not None and not production.by_this_site and production.parent_version == "1"
    assert (production.source_kind, production.federated_run, production.federated_round) == (
        "federated", "run-7", 5,
    )  # fmt: skip
    assert [(g.name, g.value, g.limit, g.passed) for g in view.gates] == [
        ("latency_p95_ms", "3.142", "≤ 50", True),
        ("accuracy", "—", "≥ 0", True),
        ("groups", "12.5", "≥ -5", True),
    ]  # fmt: skip
    assert view.groups[0].delta_pts == "+12.5" and view.groups[1].too_small
    assert (view.drift.status, view.drift.p_value, view.drift.feature) == ("drift", "0.000123", "proj:3")
    assert (view.drift.reference_items, view.drift.window_items, view.drift.labels_requested) == (20, 7, 4)
    assert view.drift.episode_open and view.drift.reference_building and view.drift.reference_needed == 160
    actions = view.actions
    assert actions.allowed and actions.promote_to == ("production",) and actions.rollback_to == "1"
    assert view.gates_ready and view.gates_passed and view.gate_items == 40


def test_the_view_model_without_a_candidate_or_a_supervisor() -> None:
    view = ModelView.of(Loaded(status=_status(production=PRODUCTION)), "operator")
    assert view.candidate is None and view.gates == () and view.groups == ()
    assert not view.actions.allowed and view.actions.promote_to == () and view.actions.rollback_to is None
    assert view.drift.status is None and view.drift.p_value == "—"


def test_a_site_key_signature_alone_marks_this_site() -> None:
    signed_here = InstalledModel.model_validate({**PRODUCTION, "signer_key_id": SITE_KEY})
    assert ModelCard.of(signed_here, "production", "site-a", SITE_KEY).by_this_site
    assert not ModelCard.of(signed_here, "production", "site-a", None).by_this_site
    elsewhere = InstalledModel.model_validate({**CANDIDATE, "signer_key_id": IT_KEY, "lineage": {
        "source": {"kind": "site-training", "site": "site-b"}}})  # fmt: skip
    assert not ModelCard.of(elsewhere, "pilot", "site-a", SITE_KEY).by_this_site


def test_stages_rollback_target_and_numbers() -> None:
    assert later_stages("shadow") == ("pilot", "production") and later_stages("pilot") == ("production",)
    assert later_stages("production") == () and later_stages("") == ()
    history = [_period(1), _period(3, "rolled_back"), _period(2, "replaced")]
    assert rollback_version(history) == "2" and rollback_version([]) is None
    assert rollback_version([_period(2, "replaced", revision=1)]) == "2.1"
    assert version_label({"version": 2, "revision": 1}) == "2.1" and version_label({"version": 3}) == "3"
    assert [number(v) for v in (12.0, -0.0, 0.69123, None, 5000.0)] == ["12", "0", "0.691", "—", "5000"]


def test_a_cuda_card_says_which_variant_serves_and_where_its_nodes_run() -> None:
    described = InstalledModel.model_validate({
        **CANDIDATE, "precision": "fp16", "variant": "cuda", "variant_reason": "GPU present",
        "placement": {"nodes": 71, "nodes_on_cpu": 5, "compute_ops_on_cpu": 0},
    })  # fmt: skip
    card = ModelCard.of(described, "pilot", site="site-a", site_key_id=SITE_KEY)
    assert (card.precision, card.provider) == ("fp16", "CUDA · cuda variant · 0 compute ops on CPU")
