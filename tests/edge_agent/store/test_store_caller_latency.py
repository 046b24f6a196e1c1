"""Latency as callers saw it: stored beside the model's time, read by the KPIs and the latency gate."""

from __future__ import annotations

import dataclasses
import sqlite3
from collections.abc import Callable
from contextlib import closing
from pathlib import Path

import pytest

from edge_agent.config import GateConfig
from edge_agent.rollout import evaluate_gates
from edge_agent.store import MIGRATIONS, InputRecord, ModelRow, PredictionRecord, SiteStore, SlotRow
from edge_agent.store.schema import apply_migrations

AddModel = Callable[..., ModelRow]


def _serve(store: SiteStore, model_id: int, stage: str, model_ms: float, caller_ms: float | None) -> None:
    record = PredictionRecord(
        model_id, stage, "dent", 0.9, 0.5, model_ms, "cpu", stage != "shadow", caller_ms
    )
    store.record_served([InputRecord("text", b"dent on rim")], [[record]])


def test_the_caller_latency_is_stored_beside_the_model_time(
    store: SiteStore, add_model: AddModel, store_path: Path
) -> None:
    model = add_model(store)
    _serve(store, model.id, "production", 4.0, 37.5)
    with closing(sqlite3.connect(store_path)) as conn:
        assert conn.execute("SELECT latency_ms, caller_latency_ms FROM predictions").fetchall() == [
            (4.0, 37.5)
        ]


def test_the_kpis_read_what_callers_saw(store: SiteStore, add_model: AddModel) -> None:
    model = add_model(store)
    for _ in range(20):
        _serve(store, model.id, "production", 4.0, 200.0)  # quick model, long queue
    summary = store.kpi_summary()
    assert summary["latency_ms_p50"] == summary["latency_ms_p95"] == 200.0
    assert store.latencies(model.id, since=0.0) == [200.0] * 20
    store.refresh_kpi_daily()
    daily = {row["metric"]: row["value"] for row in store.kpi_daily()}
    assert daily["latency_ms_p95"] == 200.0


def test_the_latency_gate_fails_a_quick_model_whose_callers_wait(
    store: SiteStore, add_model: AddModel
) -> None:
    production, candidate = add_model(store, 1), add_model(store, 2)
    for _ in range(10):
        _serve(store, candidate.id, "pilot", 5.0, 400.0)
    config = dataclasses.replace(GateConfig(), latency_p95_budget_ms=250.0, min_items=1)
    report = evaluate_gates(
        store,
        config,
        SlotRow("candidate", candidate.id, "pilot", 0.0),
        SlotRow("production", production.id, "production", 0.0),
        lambda model_id, held_out: None,
    )
    [gate] = [g for g in report.gates if g.name == "latency_p95_ms"]
    assert not gate.passed and gate.value == 400.0 and "as callers see it" in gate.detail


def test_answers_from_before_v10_count_with_their_model_time(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    with closing(sqlite3.connect(path, isolation_level=None)) as conn:
        apply_migrations(conn, path, MIGRATIONS[:9])
        conn.execute(
            "INSERT INTO models (id, name, version, manifest_sha256, path, installed_at, installed_by) "
            "VALUES (1, 'm', 1, ?, 'm-v1', 1, 'it')",
            ("a" * 64,),
        )
        conn.execute(
            "INSERT INTO inputs (created_at, kind, payload, payload_sha256) VALUES (1, 'text', x'61', '')"
        )
        conn.execute(
            "INSERT INTO predictions (input_id, model_id, stage, label, latency_ms, provider, served, "
            "created_at) VALUES (1, 1, 'production', 'ok', 12.0, 'cpu', 1, 1)"
        )
    with SiteStore(path) as store:
        _serve(store, 1, "production", 3.0, 30.0)
        assert sorted(store.latencies(1, since=0.0)) == [12.0, 30.0]
    with closing(sqlite3.connect(path)) as conn:
        rows = conn.execute("SELECT latency_ms, caller_latency_ms FROM predictions ORDER BY id").fetchall()
        assert rows == [(12.0, None), (3.0, 30.0)]
        with pytest.raises(sqlite3.IntegrityError):
            conn.execute("UPDATE predictions SET caller_latency_ms = -1 WHERE id = 2")
