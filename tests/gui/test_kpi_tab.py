"""KPIs: the agent's report as headline figures, charts over days, and a CSV with one row per day."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

from edge_agent.service.schemas import ReportResponse
from gui.viewmodels.kpis import KpiView, csv_text, daily_rows, format_money
from gui.widgets.chart import LineChart, nice_ceiling, y_ticks

DAYS = ["2026-01-01", "2026-01-02", "2026-01-03"]


def _share(values: list[float | None], overall: float | None, reason: str | None, part: str = "correct",
           whole: str = "labelled") -> dict[str, Any]:  # fmt: skip
    daily = [
        {"day": day, whole: 5, part: 4, "value": value, "reason": None if value is not None else "too few"}
        for day, value in zip(DAYS, values, strict=True)
    ]
    return {"overall": {whole: 15, part: 12, "value": overall, "reason": reason}, "daily": daily}


def _effort(day: str | None, labels: int, mean: float | None) -> dict[str, Any]:
    return {"labels": labels, "timed": labels, "seconds_total": 4.0 * labels, "seconds_mean": mean,
            "seconds_median": mean, "reason": None} | ({"day": day} if day else {})  # fmt: skip


def _costs(day: str | None, net: float | None) -> dict[str, Any]:
    return {"served": 10, "labelling_seconds": 0.0, "untimed_labels": 0, "running": 1, "operator_saved": 1.0,
            "model_errors": None if net is None else 0.0, "pc": 0.0,
            "net": net} | ({"day": day} if day else {})  # fmt: skip


def _report(net: float | None = 12345.678, currency: str = "EUR") -> ReportResponse:
    """A hand-made report in ``edge_agent.report.build_report``'s shape, three days long."""
    latency = [(12, 8.5, 20.0), (0, None, None), (30, 9.0, 31.5)]
    return ReportResponse.model_validate({
        "site": "site-a",
        "generated_at": "2026-01-03T12:00:00Z",
        "window": {"days": 3, "first_day": DAYS[0], "last_day": DAYS[-1], "start": 0.0, "end": 1.0,
                   "running_days": 3},
        "minimums": {"labels": 5, "answers": 10},
        "definitions": {},
        "accuracy": _share([0.8, None, 1.0], 0.9, None),
        "acceptance": _share([0.6, None, 0.75], 0.7, None, part="accepted"),
        "accuracy_audit": _share([None, None, None], None, "too few"),
        "acceptance_audit": _share([None, None, None], None, "too few", part="accepted"),
        "unbiased": ["accuracy_audit", "acceptance_audit"],
        "agreement": _share([None, None, None], None, "0 inputs answered by both in the window, 10 needed",
                            part="agreed", whole="compared"),
        "lead_time": {"models": [], "counted": 0, "median_hours": None,
                      "reason": "no model reached production"},
        "latency": {
            "overall": {"answers": 42, "p50_ms": 9.0, "p95_ms": 30.0, "reason": None},
            "daily": [{"day": d, "answers": n, "p50_ms": p50, "p95_ms": p95, "reason": None}
                      for d, (n, p50, p95) in zip(DAYS, latency, strict=True)],
        },
        "operator_effort": {
            "overall": _effort(None, 12, 4.0) | {"running_days": 3, "labels_per_day": 4.0},
            "daily": [_effort(d, n, m) for d, n, m in zip(DAYS, [5, 0, 7], [4.0, None, 4.0], strict=True)],
        },
        "drift": {
            "events": [],
            "daily": [{"day": d, "checks": 2, "warning": w, "drift": 0}
                      for d, w in zip(DAYS, [0, 1, 0], strict=True)],
            "total": {"checks": 6, "warning": 1, "drift": 0},
        },
        "cost_benefit": {
            "currency": currency,
            "prices": {"operator_minute": 1.0, "defect_escape": 1.0, "escape_share": 0.5, "pc_hour": 0.1,
                       "manual_seconds_per_item": 5.0},
            "formulas": {},
            "error_rate": None if net is None else 0.1,
            "reason": None if net is not None else "no accuracy: 2 labels in the window, 5 needed",
            "total": _costs(None, net),
            "daily": [_costs(d, None if net is None else net / 3) for d in DAYS],
        },
    })  # fmt: skip


def test_headlines_show_the_figures_or_a_dash_with_the_reason() -> None:
    view = KpiView.of(_report())
    shown = {h.key: (h.text, h.reason) for h in view.headlines}
    assert shown == {
        "lead_time": ("—", "no model reached production"),
        "acceptance": ("70.0 %", None),
        "accuracy": ("90.0 %", None),
        "net": ("12,345.68 EUR", None),
    }
    missing = {h.key: h for h in KpiView.of(_report(net=None)).headlines}["net"]
    assert (missing.value, missing.text, missing.reason) == (
        None,
        "—",
        "no accuracy: 2 labels in the window, 5 needed",
    )
    assert format_money(-1500.4, "JPY") == "-1,500 JPY"


def test_charts_hold_one_point_per_day_with_gaps_for_missing_figures() -> None:
    view = KpiView.of(_report())
    assert view.days == tuple(DAYS) and [c.key for c in view.charts] == [
        "quality",
        "latency",
        "labels",
        "seconds",
        "drift",
    ]
    quality = view.chart("quality")
    assert quality.y_max == 100.0 and [s.key for s in quality.series] == [
        "accuracy",
        "acceptance",
        "agreement",
    ]
    assert quality.series[0].values == (80.0, None, 100.0) and quality.series[2].values == (None, None, None)
    assert view.chart("latency").series[1].values == (20.0, None, 31.5)
    assert view.chart("labels").series[0].values == (5.0, 0.0, 7.0)
    assert [s.values for s in view.chart("drift").series] == [(0.0, 1.0, 0.0), (0.0, 0.0, 0.0)]


def test_the_csv_has_one_row_per_day_with_every_daily_figure() -> None:
    rows = list(csv.DictReader(io.StringIO(csv_text(daily_rows(_report())))))
    assert [row["day"] for row in rows] == DAYS
    assert rows[0]["accuracy"] == "0.8" and rows[1]["accuracy"] == "" and rows[0]["accuracy_labelled"] == "5"
    assert rows[2]["latency_p95_ms"] == "31.5" and rows[1]["operator_effort_seconds_mean"] == ""
    assert rows[1]["drift_warning"] == "1" and rows[0]["cost_benefit_served"] == "10"
    assert not any(column.endswith("reason") for column in rows[0])


def test_the_chart_scales_to_a_round_top_and_draws_gaps(qtbot: Any) -> None:
    assert [nice_ceiling(v) for v in (0.0, 0.7, 1.0, 3.2, 24.0, 180.0)] == [1.0, 1.0, 1.0, 5.0, 25.0, 200.0]
    assert y_ticks(100.0) == [0.0, 20.0, 40.0, 60.0, 80.0, 100.0] and y_ticks(2.0) == [
        0.0,
        0.5,
        1.0,
        1.5,
        2.0,
    ]
    chart = LineChart()
    qtbot.addWidget(chart)
    chart.resize(600, 320)
    chart.set_data("Latency", DAYS, [("p50", [8.5, None, 9.0]), ("p95", [20.0, None, 31.5])], unit="ms")
    assert chart.top() == 50.0 and not chart.grab().isNull()
    chart.set_data("Nothing", DAYS, [("p50", [None] * 3)], y_max=100.0, empty_note="too few")
    assert chart.top() == 100.0 and not chart.grab().isNull()


# ---------------------------------------------------------------------------- against a real agent


def _feed(served_site: Any) -> None:
    """Twelve answers (enough for latency) and six labels, two of them corrections, most timed."""
    with served_site.client() as client:
        answers = client.predict_batch([f"report {n}: dent near the flange, part {n}" for n in range(12)])
        labels = client.status().production.labels
        for n, answer in enumerate(answers[:6]):
            other = next(label for label in labels if label != answer.label)
            client.label(answer.input_id, other if n < 2 else str(answer.label), operator_seconds=2.0 + n)


def _number(cell: str) -> float | None:
    return None if cell == "" else float(cell)


def _open_kpis(
    qtbot: Any, served_site: Any, open_window: Callable[..., Any], settle: Callable[..., None]
) -> Any:
    window = open_window(served_site.site, role="operator")
    tab = window.pages["kpis"]
    window.tabs.setCurrentWidget(tab)
    qtbot.waitUntil(lambda: tab.view is not None, timeout=20_000)
    settle(window)
    return window, tab


def test_the_kpi_tab_shows_the_agents_report(
    qtbot: Any, served_site: Any, open_window: Callable[..., Any], settle: Callable[..., None], tmp_path: Path
) -> None:
    _feed(served_site)
    window, tab = _open_kpis(qtbot, served_site, open_window, settle)
    with served_site.client() as client:
        report = client.report(30)
    figure = {key: (value.text(), reason.text()) for key, (_, value, reason) in tab.headlines.items()}
    acceptance, accuracy = report.acceptance.overall.value, report.accuracy.overall.value
    assert acceptance is not None and accuracy is not None
    assert figure["acceptance"] == (f"{acceptance * 100:.1f} %", "")
    assert figure["accuracy"] == (f"{accuracy * 100:.1f} %", "")
    assert figure["lead_time"] == ("—", report.lead_time.reason)
    amount, currency = figure["net"][0].split(" ")
    assert currency == report.cost_benefit.currency
    assert abs(float(amount.replace(",", "")) - report.cost_benefit.total.net) <= 0.005
    for key, names in {"quality": ["accuracy", "acceptance", "agreement"],
                       "latency": ["p50", "p95"], "labels": ["labels"], "seconds": ["mean", "median"],
                       "drift": ["warning", "drift"]}.items():  # fmt: skip
        assert [name for name, _ in tab.charts[key].series] == names
        assert all(len(values) == 30 for _, values in tab.charts[key].series)
    assert tab.charts["labels"].series[0][1][-1] == report.operator_effort.daily[-1].labels == 6
    assert tab.charts["quality"].series[0][1][-1] == report.accuracy.daily[-1].value * 100

    assert tab.export_csv(tmp_path / "kpis.csv")
    rows = list(csv.DictReader((tmp_path / "kpis.csv").open(encoding="utf-8")))
    assert len(rows) == 30
    for index, row in enumerate(rows):
        assert row["day"] == report.accuracy.daily[index].day
        for column, section, key in (
            ("accuracy", "accuracy", "value"),
            ("acceptance", "acceptance", "value"),
            ("agreement_compared", "agreement", "compared"),
            ("latency_p50_ms", "latency", "p50_ms"),
            ("latency_p95_ms", "latency", "p95_ms"),
            ("operator_effort_labels", "operator_effort", "labels"),
            ("operator_effort_seconds_mean", "operator_effort", "seconds_mean"),
            ("drift_checks", "drift", "checks"),
            ("cost_benefit_net", "cost_benefit", "net"),
        ):
            day = getattr(report, section).daily[index]
            assert _number(row[column]) == getattr(day, key), (index, column)
    assert "Saved" in tab.state.text()


def test_a_shorter_window_reloads_the_report(
    qtbot: Any, served_site: Any, open_window: Callable[..., Any], settle: Callable[..., None]
) -> None:
    window, tab = _open_kpis(qtbot, served_site, open_window, settle)
    assert tab.headlines["accuracy"][1].text() == "—" and "needed" in tab.headlines["accuracy"][2].text()
    tab.days.setCurrentIndex(0)
    qtbot.waitUntil(lambda: tab.view is not None and len(tab.view.days) == 7, timeout=20_000)
    settle(window)
    assert all(len(values) == 7 for chart in tab.charts.values() for _, values in chart.series)
    assert tab.days.currentText() == "Last 7 days" and tab.export_button.isEnabled()
