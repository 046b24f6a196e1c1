"""Retention blanks old payloads, keeps every row KPIs need, and leaves no copy of the text behind."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import pytest

from edge_agent.store import InputRecord, ModelRow, PredictionRecord, SiteStore
from genba.errors import UsageError

DAY = 86400.0
AddModel = Callable[..., ModelRow]
Answer = Callable[..., PredictionRecord]


class Clock(Protocol):
    def __call__(self) -> float: ...
    def advance(self, seconds: float) -> None: ...


def _post(store: SiteStore, model: ModelRow, answer: Answer, text: str) -> int:
    [(input_id, _)] = store.record_served([InputRecord("text", text.encode())], [[answer(model.id)]])
    return input_id


@pytest.fixture
def aged_store(store: SiteStore, clock: Clock, add_model: AddModel, answer: Answer) -> dict[str, int]:
    """Two inputs 10 days old (one labelled), one 2 days old; the clock is then 'now'."""
    model = add_model(store)
    ids = {
        "old-labelled": _post(store, model, answer, "old labelled: scratch on housing P-1234"),
        "old-unlabelled": _post(store, model, answer, "old unlabelled: secret dent near rim P-5678"),
    }
    store.add_label(ids["old-labelled"], "scratch", actor="operator", split="train", operator_seconds=4.0)
    clock.advance(8 * DAY)
    ids["recent"] = _post(store, model, answer, "recent: contamination on bracket")
    clock.advance(2 * DAY)
    return ids


def test_old_unlabelled_payloads_are_blanked_and_everything_else_stays(
    store: SiteStore, aged_store: dict[str, int], clock: Clock
) -> None:
    summary_before = store.kpi_summary()
    counts = store.prune(keep_days=7)
    assert counts == {"unlabelled": 1, "labelled": 0, "pruned": 1, "drift_features": 0}
    assert store.get_input(aged_store["old-unlabelled"]).payload == b""
    assert store.get_input(aged_store["old-labelled"]).payload.startswith(b"old labelled")
    assert store.get_input(aged_store["recent"]).payload.startswith(b"recent")
    assert store.kpi_summary() == summary_before  # predictions and labels all stay
    assert store.served_prediction(aged_store["old-unlabelled"]) is not None
    assert [item.input_id for item in store.uncertain_unlabelled()] == [aged_store["recent"]]
    [entry, *_] = store.audit()
    assert entry.fields["event"] == "retention" and entry.fields["actor"] == "system"
    assert entry.fields["details"]["pruned"] == 1 and entry.fields["details"]["keep_days"] == 7
    assert entry.fields["details"]["cutoff"] == clock() - 7 * DAY


def test_labelled_payloads_go_too_when_asked(store: SiteStore, aged_store: dict[str, int]) -> None:
    counts = store.prune(keep_days=7, keep_labelled=False)
    assert counts == {"unlabelled": 1, "labelled": 1, "pruned": 2, "drift_features": 0}
    assert store.get_input(aged_store["old-labelled"]).payload == b""
    assert store.labelled_inputs("train") == []  # nothing left to train on
    assert store.kpi_summary()["labels"] == 1


def test_pruning_again_finds_nothing_and_still_records_that_it_ran(
    store: SiteStore, aged_store: dict[str, int]
) -> None:
    store.prune(keep_days=7)
    assert store.prune(keep_days=7) == {"unlabelled": 0, "labelled": 0, "pruned": 0, "drift_features": 0}
    assert [entry.fields["event"] for entry in store.audit(limit=2)] == ["retention", "retention"]
    assert store.get_input(aged_store["recent"]).payload != b""


def test_the_pruned_text_is_gone_from_the_files(
    store: SiteStore, aged_store: dict[str, int], store_path: Path
) -> None:
    secret = b"secret dent near rim P-5678"

    def on_disk() -> bytes:
        return b"".join(path.read_bytes() for path in store_path.parent.glob("store.db*"))

    assert secret in on_disk()
    store.prune(keep_days=7)
    assert secret not in on_disk()
    assert b"old labelled: scratch on housing P-1234" in on_disk()
    assert store.integrity_check() == "ok"


def test_the_audit_log_and_egress_ledger_are_never_pruned(store: SiteStore, clock: Clock) -> None:
    store.append_audit("install", "system", {"model_id": 1})
    store.append_egress(
        destination="superlink:9092", kind="update", payload_bytes=10, content_sha256="a" * 64
    )
    clock.advance(400 * DAY)
    store.prune(keep_days=0, keep_labelled=False)
    assert [entry.fields["event"] for entry in store.audit()] == ["retention", "install"]
    assert len(store.egress()) == 1
    assert all(report.ok for report in store.verify_chains().values())


@pytest.mark.parametrize("keep_days", [-1, float("nan"), float("inf")])
def test_a_nonsense_retention_period_is_refused(store: SiteStore, keep_days: float) -> None:
    with pytest.raises(UsageError, match="keep_days"):
        store.prune(keep_days=keep_days)
    assert store.audit() == []


def test_drift_features_of_pruned_inputs_go_except_the_reference_window(
    store: SiteStore, clock: Clock, add_model: AddModel, answer: Answer
) -> None:
    import numpy as np

    model = add_model(store)
    old = [_post(store, model, answer, f"old report {i}") for i in range(4)]
    clock.advance(10 * DAY)
    recent = _post(store, model, answer, "recent report")
    predictions = [store.served_prediction(i)[0] for i in [*old, recent]]  # type: ignore[index]
    store.add_drift_features(model.id, predictions, np.ones((5, 3), dtype=np.float32))
    for prediction in predictions[:2]:  # a reference of two one-answer windows, grown window by window
        check = {
            "reference": "manifest",
            "first_prediction": prediction,
            "last_prediction": prediction,
            "items": 1,
            "status": "ok",
            "feature": "none",
            "statistic": 0.0,
            "p_value": 1.0,
            "tests": 0,
        }
        store.record_drift_window(model.id, check, joins_reference=True)
    reference = store.drift_reference(model.id)
    assert reference is not None
    assert (reference["first_prediction"], reference["items"]) == (predictions[0], 2)
    assert store.prune(keep_days=7)["drift_features"] == 2  # old 3 and 4; old 1 and 2 are the reference
    kept, _ = store.drift_features(model.id, 0, 10)
    assert kept == [predictions[0], predictions[1], predictions[4]]
