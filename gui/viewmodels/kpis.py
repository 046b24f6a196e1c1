"""The KPI tab's content, from the agent's report (``client.report(days)``, a ``ReportResponse``):
headline figures, daily series for the charts, and one CSV row per day.

A figure the report leaves as None (too few labels or answers behind it) stays None here: a
headline shows "—" with the report's reason, a chart leaves a gap, a CSV cell stays empty.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from edge_agent.service.schemas import Acceptance, Accuracy, ReportResponse

#: The window lengths offered, in UTC days.
DAY_CHOICES = (7, 30, 90)
MISSING = "—"
#: The report's sections with a ``daily`` list, in the CSV's column order.
DAILY_SECTIONS = (
    "accuracy",
    "acceptance",
    "agreement",
    "latency",
    "operator_effort",
    "drift",
    "cost_benefit",
)
_ZERO_DECIMAL_CURRENCIES = frozenset({"JPY", "KRW", "VND"})


@dataclass(frozen=True)
class Headline:
    key: str  # "lead_time", "acceptance", "accuracy" or "net"
    value: float | None
    text: str  # "12.5 h", "87.5 %", "1,234.50 EUR"; "—" when there is no value
    reason: str | None  # the report's words for why there is no value


@dataclass(frozen=True)
class Series:
    key: str  # "accuracy", "p95", "mean", …: the widget names it in the current language
    values: tuple[float | None, ...]  # one per day of the window, None for a gap


@dataclass(frozen=True)
class ChartData:
    key: str  # "quality", "latency", "labels", "seconds" or "drift"
    days: tuple[str, ...]
    series: tuple[Series, ...]
    y_max: float | None = None  # a fixed top (100 for percentages); None: from the data


@dataclass(frozen=True)
class KpiView:
    days: tuple[str, ...]
    generated_at: str
    headlines: tuple[Headline, ...]
    charts: tuple[ChartData, ...]
    rows: tuple[dict[str, Any], ...]

    @classmethod
    def of(cls, report: ReportResponse) -> KpiView:
        days = tuple(row.day for row in report.accuracy.daily)
        return cls(
            days=days,
            generated_at=report.generated_at,
            headlines=headlines(report),
            charts=charts(report, days),
            rows=tuple(daily_rows(report)),
        )

    def chart(self, key: str) -> ChartData:
        return next(chart for chart in self.charts if chart.key == key)

    def csv_text(self) -> str:
        return csv_text(self.rows)


def headlines(report: ReportResponse) -> tuple[Headline, ...]:
    lead, money = report.lead_time, report.cost_benefit
    return (
        _headline("lead_time", lead.median_hours, lead.reason, lambda v: f"{v:.1f} h"),
        _share_headline("acceptance", report.acceptance.overall),
        _share_headline("accuracy", report.accuracy.overall),
        _headline("net", money.total.net, money.reason, lambda v: format_money(v, money.currency)),
    )


def _headline(key: str, value: float | None, reason: str | None, shown: Callable[[float], str]) -> Headline:
    if value is None:
        return Headline(key, None, MISSING, reason)
    return Headline(key, float(value), shown(float(value)), None)


def _share_headline(key: str, overall: Accuracy | Acceptance) -> Headline:
    return _headline(key, overall.value, overall.reason, lambda v: f"{v * 100:.1f} %")


def format_money(value: float, currency: str) -> str:
    decimals = 0 if currency.upper() in _ZERO_DECIMAL_CURRENCIES else 2
    return f"{value:,.{decimals}f} {currency}"


def charts(report: ReportResponse, days: tuple[str, ...]) -> tuple[ChartData, ...]:
    effort = [row.model_dump() for row in report.operator_effort.daily]
    latency = [row.model_dump() for row in report.latency.daily]
    drift = [row.model_dump() for row in report.drift.daily]

    def chart(key: str, rows: Sequence[Mapping[str, Any]], *columns: tuple[str, str]) -> ChartData:
        return ChartData(key, days, tuple(Series(name, _column(rows, column)) for name, column in columns))

    shares = (
        Series("accuracy", _shares([row.value for row in report.accuracy.daily])),
        Series("acceptance", _shares([row.value for row in report.acceptance.daily])),
        Series("agreement", _shares([row.value for row in report.agreement.daily])),
    )
    return (
        ChartData("quality", days, shares, y_max=100.0),
        chart("latency", latency, ("p50", "p50_ms"), ("p95", "p95_ms")),
        chart("labels", effort, ("labels", "labels")),
        chart("seconds", effort, ("mean", "seconds_mean"), ("median", "seconds_median")),
        chart("drift", drift, ("warning", "warning"), ("drift", "drift")),
    )


def _column(rows: Sequence[Mapping[str, Any]], key: str) -> tuple[float | None, ...]:
    return tuple(None if row[key] is None else float(row[key]) for row in rows)


def _shares(values: Sequence[float | None]) -> tuple[float | None, ...]:
    """Shares (0–1) as percentages, gaps kept."""
    return tuple(None if value is None else value * 100.0 for value in values)


def daily_rows(report: ReportResponse) -> list[dict[str, Any]]:
    """One row per day: every daily figure of every section as ``section_figure`` (a share: ``section``)."""
    rows: dict[str, dict[str, Any]] = {}
    for section in DAILY_SECTIONS:
        for entry in getattr(report, section).daily:  # each day's figures, named as the report names them
            figures = entry.model_dump()
            row = rows.setdefault(entry.day, {"day": entry.day})
            for key, value in figures.items():
                if key not in ("day", "reason"):  # reasons are words, not figures
                    row[section if key == "value" else f"{section}_{key}"] = value
    return list(rows.values())


def csv_text(rows: Sequence[Mapping[str, Any]]) -> str:
    """The rows as CSV with a header; shares as fractions (0–1), missing figures as empty cells."""
    columns: dict[str, None] = {}
    for row in rows:
        columns.update(dict.fromkeys(row))
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(columns), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({key: _cell(value) for key, value in row.items()})
    return out.getvalue()


def _cell(value: Any) -> str:
    return "" if value is None else str(value)
