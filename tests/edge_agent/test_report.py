"""The KPI report against figures worked out by hand (and numpy), its files, its API and its CLI."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from edge_agent.config import CostConfig
from edge_agent.report import build_report, write_report
from edge_agent.site import SiteFolder
from edge_agent.store import KEEP, InputRecord, PredictionRecord, SiteStore, Transition
from genba.cli import main
from genba.errors import UsageError

T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z
HOUR, DAY = 3600.0, 86400.0
NOW = T0 + 2 * DAY + 12 * HOUR  # 2026-01-03T12:00Z: the window of 4 days is 2025-12-31 .. 2026-01-03
WINDOW = ["2025-12-31", "2026-01-01", "2026-01-02", "2026-01-03"]
COSTS = CostConfig(
    currency="EUR", operator_minute=0.5, defect_escape=100.0, escape_share=0.2, pc_hour=0.25,
    manual_seconds_per_item=30.0,
)
DAY1_LATENCIES = [10.0, 20.0, 30.0, 40.0, 50.0, 60.0]
DAY2_LATENCIES = [100.0, 200.0, 300.0]


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _model(store: SiteStore, version: int) -> int:
    return store.add_model(
        name="defects",
        version=version,
        manifest_sha256=f"{version:064x}",
        path=f"/models/defects-v{version}",
        signer_key_id="it-key",
        lineage={},
        manifest={"labels": ["dent", "scratch"]},
        installed_by="system",
    ).id


def _answer(model_id: int, label: str, latency_ms: float, stage: str = "production") -> PredictionRecord:
    return PredictionRecord(
        model_id, stage, label, 0.9, 0.5, latency_ms, "CPUExecutionProvider", stage != "shadow"
    )


def _serve(store: SiteStore, model_id: int, labels: list[str], latencies: list[float]) -> list[int]:
    inputs = [InputRecord("text", f"item {n} {latency}".encode()) for n, latency in enumerate(latencies)]
    answers = [[_answer(model_id, label, ms)] for label, ms in zip(labels, latencies, strict=True)]
    return [input_id for input_id, _ in store.record_served(inputs, answers)]


def _to_production(model_id: int, via_shadow: bool) -> Transition:
    return Transition(
        event="promote" if via_shadow else "install",
        actor="supervisor",
        model_id=model_id,
        from_stage="shadow" if via_shadow else None,
        to_stage="production",
        outcome="advance" if via_shadow else "install",
        production=model_id,
        production_change="promote" if via_shadow else "none",
        candidate=None if via_shadow else KEEP,  # a promoted candidate leaves the candidate slot
    )


def _to_shadow(model_id: int) -> Transition:
    return Transition(
        event="install",
        actor="supervisor",
        model_id=model_id,
        from_stage=None,
        to_stage="shadow",
        outcome="install",
        candidate=(model_id, "shadow"),
    )


def _label(store: SiteStore, input_id: int, label: str, seconds: float | None) -> None:
    store.add_label(input_id, label, actor="operator", split="holdout", operator_seconds=seconds)


def _drift_rows(path: Path, rows: list[tuple[int, str, str, float, float]]) -> None:
    """(model_id, status, feature, p_value, created_at) straight into drift_checks."""
    with sqlite3.connect(path) as conn:
        conn.executemany(
            "INSERT INTO drift_checks (model_id, reference, first_prediction, last_prediction, items, "
            "status, feature, statistic, p_value, tests, created_at) "
            "VALUES (?, 'production', 1, 200, 200, ?, ?, 0.3, ?, 9, ?)",
            rows,
        )
    conn.close()


@pytest.fixture
def history(tmp_path: Path) -> Iterator[tuple[SiteStore, dict[str, int]]]:
    """Three days of a small site, each figure known by hand.

    2026-01-01 08:00  model P installed straight into production (lead time 0 h, not counted)
    2026-01-01 09:00  model C installed into shadow
    2026-01-01 12:00  P answers a..f "dent" (10..60 ms); C (shadow) answers a..d dent, scratch, dent, dent
                      labels (seconds): a dent (4), b dent (6), c dent (-), d dent (8), e scratch (10),
                      f scratch (2) then dent (5): accuracy 5/6 (e wrong), acceptance 4/6 (e, f corrected)
    2026-01-02 12:00  P answers g, h, i (100, 200, 300 ms); labels g, h agree (3 s, 7 s)
    2026-01-02 15:00  C promoted to production: lead time 30 h
    2026-01-02 18:00  model D installed into shadow; 2026-01-03 09:00 promoted: lead time 15 h
    drift checks: 2025-12-30 drift (outside), 2026-01-01 ok, 2026-01-03 warning and drift
    """
    path = tmp_path / "store.db"
    clock = Clock(T0 + 8 * HOUR)
    with SiteStore(path, clock=clock) as store:
        production = _model(store, 1)
        store.apply_transition(_to_production(production, via_shadow=False))
        clock.now = T0 + 9 * HOUR
        candidate = _model(store, 2)
        store.apply_transition(_to_shadow(candidate))
        clock.now = T0 + 12 * HOUR
        ids = _serve(store, production, ["dent"] * 6, DAY1_LATENCIES)
        shadow = [
            _answer(candidate, label, 1000.0, "shadow") for label in ("dent", "scratch", "dent", "dent")
        ]
        store.add_predictions(ids[:4], shadow)
        day1_labels = ["dent"] * 4 + ["scratch", "scratch"]
        for input_id, label, seconds in zip(ids, day1_labels, [4, 6, None, 8, 10, 2], strict=True):
            _label(store, input_id, label, seconds)
        _label(store, ids[5], "dent", 5)
        clock.now = T0 + DAY + 12 * HOUR
        day2_ids = _serve(store, production, ["dent"] * 3, DAY2_LATENCIES)
        for input_id, seconds in zip(day2_ids[:2], [3, 7], strict=True):
            _label(store, input_id, "dent", seconds)
        clock.now = T0 + DAY + 15 * HOUR
        store.apply_transition(_to_production(candidate, via_shadow=True))
        clock.now = T0 + DAY + 18 * HOUR
        third = _model(store, 3)
        store.apply_transition(_to_shadow(third))
        clock.now = T0 + 2 * DAY + 9 * HOUR
        store.apply_transition(_to_production(third, via_shadow=True))
        _drift_rows(
            path,
            [
                (production, "drift", "score", 0.0001, T0 - 2 * DAY),
                (production, "ok", "score", 0.6, T0 + 20 * HOUR),
                (candidate, "warning", "score", 0.03, T0 + 2 * DAY + 10 * HOUR),
                (third, "drift", "projection_2", 0.001, T0 + 2 * DAY + 11 * HOUR),
            ],
        )
        yield store, {"production": production, "candidate": candidate, "third": third}


def _report(store: SiteStore, days: int = 4, **minimums: int) -> dict[str, Any]:
    settings = {"min_labels": 5, "min_answers": 3, **minimums}
    return build_report(store, COSTS, days=days, now=NOW, site="line-1", **settings)


def _daily(series: dict[str, Any], key: str = "value") -> list[Any]:
    return [row[key] for row in series["daily"]]


def test_accuracy_and_acceptance_per_day_match_the_hand_count(history: tuple[SiteStore, Any]) -> None:
    report = _report(history[0])
    accuracy, acceptance = report["accuracy"], report["acceptance"]
    assert [row["day"] for row in accuracy["daily"]] == WINDOW
    assert _daily(accuracy, "labelled") == [0, 6, 2, 0]
    assert _daily(accuracy, "correct") == [0, 5, 2, 0]
    assert _daily(accuracy) == [None, pytest.approx(5 / 6), None, None]
    assert _daily(acceptance) == [None, pytest.approx(4 / 6), None, None]
    assert accuracy["overall"] == {"labelled": 8, "correct": 7, "value": pytest.approx(7 / 8), "reason": None}
    assert acceptance["overall"]["value"] == pytest.approx(6 / 8)


def test_too_few_labels_give_none_with_a_reason(history: tuple[SiteStore, Any]) -> None:
    report = _report(history[0], min_labels=10)
    assert _daily(report["accuracy"], "reason") == [
        "0 labels on 2025-12-31, 10 needed",
        "6 labels on 2026-01-01, 10 needed",
        "2 labels on 2026-01-02, 10 needed",
        "0 labels on 2026-01-03, 10 needed",
    ]
    overall = report["accuracy"]["overall"]
    assert overall["value"] is None and overall["reason"] == "8 labels in the window, 10 needed"
    assert report["operator_effort"]["overall"]["seconds_mean"] is None
    assert report["operator_effort"]["overall"]["reason"] == "8 timed labels in the window, 10 needed"
    money = report["cost_benefit"]
    assert money["error_rate"] is None and money["total"]["net"] is None
    assert money["reason"] == "no accuracy: 8 labels in the window, 10 needed"
    assert money["total"]["pc"] == pytest.approx(3 * 24 * 0.25)  # what can be estimated still is


def test_agreement_between_candidate_and_production(history: tuple[SiteStore, Any]) -> None:
    agreement = _report(history[0])["agreement"]
    assert _daily(agreement, "compared") == [0, 4, 0, 0]
    assert _daily(agreement, "agreed") == [0, 3, 0, 0]
    assert _daily(agreement) == [None, 0.75, None, None]
    assert agreement["daily"][2]["reason"] == "0 inputs answered by both on 2026-01-02, 3 needed"


def test_lead_time_per_model_and_median(history: tuple[SiteStore, dict[str, int]]) -> None:
    store, models = history
    lead = _report(store)["lead_time"]
    rows = [(m["model_id"], m["hours"], m["via_candidate"]) for m in lead["models"]]
    assert rows == [
        (models["production"], pytest.approx(0.0), False),
        (models["candidate"], pytest.approx(30.0), True),
        (models["third"], pytest.approx(15.0), True),
    ]
    assert lead["counted"] == 2 and lead["median_hours"] == pytest.approx(22.5) and lead["reason"] is None
    today = _report(store, days=1)["lead_time"]  # only the third model reached production today
    assert [m["model_id"] for m in today["models"]] == [models["third"]] and today["median_hours"] == 15.0


def test_operator_effort(history: tuple[SiteStore, Any]) -> None:
    effort = _report(history[0])["operator_effort"]
    assert _daily(effort, "labels") == [0, 7, 2, 0]  # the relabel of f is work too
    assert _daily(effort, "timed") == [0, 6, 2, 0]
    day1 = effort["daily"][1]
    assert (
        day1["seconds_mean"] == pytest.approx((4 + 6 + 8 + 10 + 2 + 5) / 6) and day1["seconds_median"] == 5.5
    )
    assert effort["daily"][2]["reason"] == "2 timed labels on 2026-01-02, 5 needed"
    overall = effort["overall"]
    assert overall["seconds_mean"] == pytest.approx(45 / 8) and overall["seconds_median"] == 5.5
    assert overall["running_days"] == 3 and overall["labels_per_day"] == pytest.approx(9 / 3)


def test_latency_quantiles_equal_numpys(history: tuple[SiteStore, Any]) -> None:
    latency = _report(history[0])["latency"]
    day1, day2 = latency["daily"][1], latency["daily"][2]
    assert day1["p50_ms"] == pytest.approx(np.percentile(DAY1_LATENCIES, 50))
    assert day1["p95_ms"] == pytest.approx(np.percentile(DAY1_LATENCIES, 95))
    assert day2["p95_ms"] == pytest.approx(np.percentile(DAY2_LATENCIES, 95))
    everything = DAY1_LATENCIES + DAY2_LATENCIES  # the shadow's 1000 ms are not production's
    assert latency["overall"]["p50_ms"] == pytest.approx(np.percentile(everything, 50))
    assert latency["overall"]["p95_ms"] == pytest.approx(np.percentile(everything, 95))
    assert latency["daily"][3]["p50_ms"] is None
    assert latency["daily"][3]["reason"] == "0 production answers on 2026-01-03, 3 needed"


def test_drift_events_and_counts_per_day(history: tuple[SiteStore, dict[str, int]]) -> None:
    store, models = history
    drift = _report(store)["drift"]
    events = [(e["time"], e["model_id"], e["status"], e["feature"], e["p_value"]) for e in drift["events"]]
    assert events == [
        ("2026-01-03T10:00:00Z", models["candidate"], "warning", "score", 0.03),
        ("2026-01-03T11:00:00Z", models["third"], "drift", "projection_2", 0.001),
    ]
    assert [(d["checks"], d["warning"], d["drift"]) for d in drift["daily"]] == [
        (0, 0, 0),
        (1, 0, 0),
        (0, 0, 0),
        (2, 1, 1),
    ]
    assert drift["total"] == {"checks": 3, "warning": 1, "drift": 1}


def test_cost_benefit_arithmetic(history: tuple[SiteStore, Any]) -> None:
    money = _report(history[0])["cost_benefit"]
    assert money["error_rate"] == pytest.approx(1 / 8)
    day1, day2, day3 = money["daily"][1:]
    assert day1["operator_saved"] == pytest.approx((30 * 6 - 35) / 60 * 0.5)
    assert day1["model_errors"] == pytest.approx(1 / 8 * 6 * 0.2 * 100)
    assert day1["pc"] == pytest.approx(24 * 0.25)
    assert day2["operator_saved"] == pytest.approx((30 * 3 - 10) / 60 * 0.5)
    assert day3["net"] == pytest.approx(-6.0)
    assert money["daily"][0]["pc"] == 0.0  # before the first model arrived the site did not run
    total = money["total"]
    assert (total["served"], total["labelling_seconds"], total["untimed_labels"]) == (9, 45, 1)
    assert total["operator_saved"] == pytest.approx(1.875)
    assert total["model_errors"] == pytest.approx(112.5 * 0.2)
    assert total["net"] == pytest.approx(1.875 - 22.5 - 18.0)
    assert "escape_share × defect_escape" in money["formulas"]["model_errors"]


def test_report_files(history: tuple[SiteStore, Any], tmp_path: Path) -> None:
    report = _report(history[0])
    written = write_report(report, tmp_path / "out")
    assert set(written) == {"json", "markdown", "quality", "latency", "effort", "drift"}
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(p.name for p in written.values())
    assert json.loads(written["json"].read_text(encoding="utf-8")) == json.loads(json.dumps(report))
    markdown = written["markdown"].read_text(encoding="utf-8")
    for mention in (
        "Accuracy on operator labels",
        "Acceptance without correction",
        "Candidate–production agreement",
        "Lead time to production",
        "Seconds per label",
        "Labels per day",
        "Latency p50 / p95",
        "Drift events",
        "Cost–benefit",
        "87.5 %",
        "2 labels on 2026-01-02, 5 needed",
        "model_errors = error_rate × served × escape_share × defect_escape",
    ):
        assert mention in markdown, mention
    for name in ("quality", "latency", "effort", "drift"):
        assert f"]({name}.png)" in markdown
        assert written[name].read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
        with Image.open(written[name]) as image:
            assert image.format == "PNG" and image.size[0] > 100 and image.size[1] > 100


def test_days_below_one_are_refused(history: tuple[SiteStore, Any]) -> None:
    with pytest.raises(UsageError, match="at least 1 day"):
        build_report(history[0], COSTS, days=0, now=NOW)


def _small_site_store(site: SiteFolder, now: float) -> None:
    """One production model that served 6 items today; 5 were labelled, 4 of them as it answered."""
    with SiteStore(site.store_file, clock=lambda: now) as store:
        model = _model(store, 1)
        store.apply_transition(_to_production(model, via_shadow=False))
        ids = _serve(store, model, ["dent"] * 6, DAY1_LATENCIES)
        for input_id, label in zip(ids[:5], ["dent", "dent", "dent", "dent", "scratch"], strict=True):
            _label(store, input_id, label, 5.0)


def test_the_api_serves_the_report(make_site: Callable[..., SiteFolder]) -> None:
    from fastapi.testclient import TestClient

    from edge_agent.agent import Agent
    from edge_agent.service.app import create_app
    from edge_agent.service.auth import TokenRegistry

    site = make_site("line-2")
    _small_site_store(site, time.time())
    with Agent.open(site, serving=False) as agent:
        app = create_app(agent, TokenRegistry.from_site(site), agent.config.api)
        with TestClient(app) as client:

            def get(role: str, days: int) -> Any:
                headers = {"Authorization": f"Bearer {site.read_token(role)}"}
                return client.get("/v1/report", params={"days": days}, headers=headers)

            answered = get("operator", 2)
            assert get("integration", 2).status_code == 403
            assert get("supervisor", 0).status_code == 422
    assert answered.status_code == 200
    report = answered.json()
    assert report["site"] == "line-2" and report["window"]["days"] == 2
    assert report["accuracy"]["overall"] == {"labelled": 5, "correct": 4, "value": 0.8, "reason": None}
    assert report["cost_benefit"]["currency"] == "EUR"


def test_the_cli_writes_the_report_and_refuses_bad_input(
    make_site: Callable[..., SiteFolder], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    site = make_site("line-3")
    _small_site_store(site, time.time())
    out = tmp_path / "report-out"
    assert (
        main(["agent", "report", "--data", str(site.root), "--days", "3", "--out", str(out), "--json"]) == 0
    )
    printed = json.loads(capsys.readouterr().out)
    assert printed["site"] == "line-3" and printed["accuracy"]["overall"]["correct"] == 4
    assert json.loads((out / "report.json").read_text(encoding="utf-8")) == printed
    assert {"report.md", "quality.png", "latency.png", "effort.png", "drift.png"} <= {
        p.name for p in out.iterdir()
    }

    assert main(["agent", "report", "--data", str(site.root)]) == 0  # default folder, a short summary
    summary = capsys.readouterr().out
    assert "Accuracy on operator labels: 80.0 % (5 labels)" in summary
    assert len(list((site.root / "reports").glob("*/report.md"))) == 1

    assert main(["agent", "report", "--data", str(site.root), "--out", str(out / "report.md" / "x")]) == 2
    assert "cannot write the report to" in capsys.readouterr().err
    assert main(["agent", "report", "--data", str(site.root), "--days", "0"]) == 2
    err = capsys.readouterr().err
    assert err == "genba agent report: error: --days must be at least 1, not 0\n"
    assert main(["agent", "report", "--data", str(tmp_path / "nowhere")]) == 2
    err = capsys.readouterr().err
    assert "not a Genba site folder" in err and err.count("\n") == 1
