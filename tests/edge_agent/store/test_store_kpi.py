"""Gate figures and KPIs against numbers worked out by hand."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from contextlib import closing
from pathlib import Path
from typing import Any, Protocol

import pytest

from edge_agent.store import InputRecord, ModelRow, PredictionRecord, SiteStore, kpi, report_queries
from genba.errors import UsageError

DAY = 86400.0
AddModel = Callable[..., ModelRow]
Answer = Callable[..., PredictionRecord]


class Clock(Protocol):
    def __call__(self) -> float: ...
    def advance(self, seconds: float) -> None: ...


@pytest.fixture
def traffic(store: SiteStore, clock: Clock, add_model: AddModel, answer: Answer) -> dict[str, Any]:
    """Production (model 1) answers 4 inputs, the shadow candidate (model 2) 3 of them; 3 get labels.

    input  production (ms)  shadow  labels, oldest first (operator seconds)
    1      dent (10)        dent    dent (4)                 confirmed
    2      dent (20)        scratch scratch (6)              corrected
    3      scratch (30)     dent    dent (2), scratch (8)    the latest label confirms
    4      dent (40)        -       -
    """
    production, shadow = add_model(store, 1), add_model(store, 2)
    served = [("dent", 10.0), ("dent", 20.0), ("scratch", 30.0), ("dent", 40.0)]
    written = store.record_served(
        [InputRecord("text", f"report {n}".encode()) for n in range(4)],
        [[answer(production.id, label, latency_ms=ms)] for label, ms in served],
    )
    ids = [input_id for input_id, _ in written]
    shadow_answers = [
        answer(shadow.id, label, stage="shadow", latency_ms=100.0) for label in ("dent", "scratch", "dent")
    ]
    store.add_predictions(ids[:3], shadow_answers)
    for input_id, label, seconds in [
        (ids[0], "dent", 4.0),
        (ids[1], "scratch", 6.0),
        (ids[2], "dent", 2.0),
        (ids[2], "scratch", 8.0),
    ]:
        store.add_label(input_id, label, actor="operator", split="holdout", operator_seconds=seconds)
    return {"production": production.id, "shadow": shadow.id, "ids": ids, "start": clock()}


def test_kpi_summary_matches_the_hand_count(store: SiteStore, traffic: dict[str, Any]) -> None:
    summary = store.kpi_summary()
    assert summary == {
        "predictions": 7,
        "served": 4,
        "labels": 3,
        "corrections": 1,
        "acceptance": pytest.approx(2 / 3),
        "operator_seconds_mean": pytest.approx(6.0),  # (4 + 6 + 8) / 3: each input's latest label
        "latency_ms_p50": pytest.approx(25.0),  # production only: the shadow's 100 ms are left out
        "latency_ms_p95": pytest.approx(38.5),  # 30 + 0.85 * (40 - 30)
        "per_model": {
            traffic["production"]: {"predictions": 4, "served": 4, "stages": {"production": 4}},
            traffic["shadow"]: {"predictions": 3, "served": 0, "stages": {"shadow": 3}},
        },
    }


def test_kpi_summary_since_counts_only_later_rows(
    store: SiteStore, traffic: dict[str, Any], clock: Clock, answer: Answer
) -> None:
    clock.advance(100)
    store.record_served([InputRecord("text", b"later")], [[answer(traffic["production"], latency_ms=7.0)]])
    later = store.kpi_summary(since=clock())
    assert (later["predictions"], later["served"], later["labels"], later["corrections"]) == (1, 1, 0, 0)
    assert later["acceptance"] is None and later["operator_seconds_mean"] is None
    assert later["latency_ms_p50"] == later["latency_ms_p95"] == 7.0
    nothing = store.kpi_summary(since=clock() + 1)
    assert nothing["predictions"] == 0 and nothing["latency_ms_p50"] is None and nothing["per_model"] == {}


def test_gate_figures(store: SiteStore, traffic: dict[str, Any], clock: Clock, answer: Answer) -> None:
    production, shadow, start = traffic["production"], traffic["shadow"], traffic["start"]
    assert store.agreement(shadow, production, since=start) == (3, 1)  # only input 1 agrees
    assert store.stage_count(shadow, "shadow", since=start) == 3
    assert store.stage_count(shadow, "pilot", since=start) == 0
    clock.advance(100)
    store.record_served([InputRecord("text", b"later")], [[answer(production, latency_ms=7.0)]])
    assert store.agreement(shadow, production, since=clock()) == (0, 0)  # no shadow answer for it
    assert store.stage_count(production, "production", since=clock()) == 1
    assert store.latencies(production, since=start) == [7.0, 40.0, 30.0, 20.0, 10.0]  # newest first
    assert store.latencies(production, since=start, limit=2) == [7.0, 40.0]
    assert store.latencies(shadow, since=start, stage="shadow") == [100.0] * 3
    assert store.latencies(shadow, since=start, stage="production") == []


def _metrics(rows: list[dict[str, Any]], model_id: int) -> dict[str, float]:
    return {row["metric"]: row["value"] for row in rows if row["model_id"] == model_id}


def test_daily_kpis_are_rebuilt_from_the_raw_tables(
    store: SiteStore, traffic: dict[str, Any], clock: Clock, answer: Answer
) -> None:
    clock.advance(100)
    store.record_served([InputRecord("text", b"later")], [[answer(traffic["production"], latency_ms=7.0)]])
    assert store.refresh_kpi_daily() == 12
    assert store.refresh_kpi_daily("2026-01-01") == 12  # recomputed, not added twice
    rows = store.kpi_daily()
    assert len(rows) == 12 and {row["day"] for row in rows} == {"2026-01-01"}
    assert _metrics(rows, traffic["production"]) == {
        "predictions": 5,
        "served": 5,
        "labels": 3,
        "corrections": 1,
        "latency_ms_p50": 20.0,
        "latency_ms_p95": pytest.approx(38.0),  # of 7, 10, 20, 30, 40
    }
    # For the shadow, a "correction" is a label that differs from its answer: input 3.
    assert _metrics(rows, traffic["shadow"]) == {
        "predictions": 3,
        "served": 0,
        "labels": 3,
        "corrections": 1,
        "latency_ms_p50": 100.0,
        "latency_ms_p95": 100.0,
    }


def test_daily_kpis_cover_a_window_of_days(store: SiteStore, traffic: dict[str, Any], clock: Clock) -> None:
    store.refresh_kpi_daily()
    clock.advance(40 * DAY)
    assert store.refresh_kpi_daily() == 0  # nothing happened today
    assert store.kpi_daily(days=30) == []
    assert len(store.kpi_daily(days=45)) == 12
    with pytest.raises(UsageError, match="YYYY-MM-DD"):
        store.refresh_kpi_daily("01/01/2026")


def _plans_of_ranked_reads(store_path: Path, read: Callable[[sqlite3.Connection], object]) -> list[str]:
    """The query plan of every latency-ranked statement ``read`` runs (as SQLite would run it)."""
    with closing(sqlite3.connect(store_path)) as conn:
        statements: list[str] = []
        conn.set_trace_callback(statements.append)
        read(conn)
        conn.set_trace_callback(None)
        ranked = [s for s in statements if "ORDER BY latency" in s]
        assert ranked, "the read ranks no latencies"
        return [" | ".join(row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {s}")) for s in ranked]


def test_the_all_time_latency_ranks_walk_an_index_and_windowed_ones_keep_the_time_indexes(
    store: SiteStore, traffic: dict[str, Any], store_path: Path
) -> None:
    """All time, p50 and p95 must not sort every answer ever served; a day's window must not walk
    every production answer by latency to find the day's (each would be slow on a year of answers)."""
    for plan in _plans_of_ranked_reads(store_path, lambda conn: kpi.summary(conn, None)):
        assert "production_by_caller_latency" in plan and "TEMP B-TREE" not in plan, plan
    day = kpi.utc_day(traffic["start"])
    windowed = [
        *_plans_of_ranked_reads(store_path, lambda conn: kpi.summary(conn, traffic["start"] - 1)),
        *_plans_of_ranked_reads(store_path, lambda conn: kpi.refresh_daily(conn, day)),
        *_plans_of_ranked_reads(store_path, lambda conn: report_queries.figures(conn, [day])),
    ]
    assert windowed and not [plan for plan in windowed if "production_by_caller_latency" in plan]
    assert kpi.summary(sqlite3.connect(store_path), None)["latency_ms_p95"] == pytest.approx(38.5)
