"""The report's PNG plots, drawn with matplotlib's object API (Agg, no display, no global state).

matplotlib is imported inside each function: the agent serves without ever loading it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

PLOTS = ("quality", "latency", "effort", "drift")
_DPI = 100


def draw(name: str, report: Mapping[str, Any], path: Path) -> None:
    """Draw plot ``name`` (one of ``PLOTS``) of ``report`` into ``path`` as a PNG."""
    from matplotlib.figure import Figure

    drawers: dict[str, Callable[[Any, Mapping[str, Any]], None]] = {
        "quality": _quality,
        "latency": _latency,
        "effort": _effort,
        "drift": _drift,
    }
    figure = Figure(figsize=(9.0, 4.5), layout="constrained")
    drawers[name](figure, report)
    figure.savefig(path, format="png", dpi=_DPI)


def _days(report: Mapping[str, Any]) -> list[str]:
    return [row["day"] for row in report["latency"]["daily"]]


def _series(rows: Sequence[Mapping[str, Any]], key: str, scale: float = 1.0) -> list[float]:
    """Missing figures become NaN: a gap in the line, never a zero."""
    return [math.nan if row[key] is None else row[key] * scale for row in rows]


def _day_axis(axes: Any, days: Sequence[str]) -> None:
    step = max(1, math.ceil(len(days) / 12))
    positions = list(range(0, len(days), step))
    axes.set_xticks(positions, [days[i][5:] for i in positions], rotation=45, ha="right")
    axes.set_xlim(-0.5, len(days) - 0.5)
    axes.set_xlabel("UTC day (month-day)")
    axes.grid(True, alpha=0.3)


def _from_zero(axes: Any, values: Sequence[float]) -> None:
    """A y axis from 0 with room above the highest point (a marker at the top edge is cut in half)."""
    highest = max((value for value in values if not math.isnan(value)), default=0.0)
    axes.set_ylim(0, highest * 1.15 if highest > 0 else 1.0)


def _whole_numbers(axes: Any) -> None:
    from matplotlib.ticker import MaxNLocator

    axes.yaxis.set_major_locator(MaxNLocator(integer=True))


def _note_if_empty(axes: Any, values: Sequence[float], note: str) -> None:
    if all(math.isnan(value) for value in values):
        axes.text(0.5, 0.5, note, transform=axes.transAxes, ha="center", va="center", color="grey")


def _quality(figure: Any, report: Mapping[str, Any]) -> None:
    axes = figure.add_subplot()
    positions = range(len(_days(report)))
    plotted: list[float] = []
    for key, label in (
        ("accuracy", "accuracy on operator labels"),
        ("acceptance", "acceptance without correction"),
        ("agreement", "candidate–production agreement"),
    ):
        values = _series(report[key]["daily"], "value", 100.0)
        plotted += values
        axes.plot(positions, values, marker="o", label=label)
    _note_if_empty(axes, plotted, "too few labels or compared answers on every day")
    axes.set_ylim(0, 105)
    axes.set_ylabel("%")
    axes.set_title("Accuracy, acceptance and agreement per day")
    axes.legend(loc="lower left")
    _day_axis(axes, _days(report))


def _latency(figure: Any, report: Mapping[str, Any]) -> None:
    axes = figure.add_subplot()
    rows = report["latency"]["daily"]
    positions = range(len(rows))
    p50, p95 = _series(rows, "p50_ms"), _series(rows, "p95_ms")
    axes.plot(positions, p50, marker="o", label="p50")
    axes.plot(positions, p95, marker="o", label="p95")
    _note_if_empty(axes, p50 + p95, "too few production answers on every day")
    _from_zero(axes, p50 + p95)
    axes.set_ylabel("ms")
    axes.set_title("Latency of production answers per day")
    axes.legend(loc="upper left")
    _day_axis(axes, _days(report))


def _effort(figure: Any, report: Mapping[str, Any]) -> None:
    rows = report["operator_effort"]["daily"]
    positions = range(len(rows))
    counts, seconds = figure.subplots(2, 1, sharex=True)
    counts.bar(positions, [row["labels"] for row in rows], color="tab:blue")
    counts.set_ylabel("labels")
    counts.set_title("Labels per day and seconds per label")
    mean, median = _series(rows, "seconds_mean"), _series(rows, "seconds_median")
    seconds.plot(positions, mean, marker="o", label="mean")
    seconds.plot(positions, median, marker="o", label="median")
    _note_if_empty(seconds, mean + median, "too few timed labels on every day")
    _from_zero(seconds, mean + median)
    _whole_numbers(counts)
    seconds.set_ylabel("seconds per label")
    seconds.legend(loc="upper left")
    counts.grid(True, alpha=0.3)
    _day_axis(seconds, _days(report))


def _drift(figure: Any, report: Mapping[str, Any]) -> None:
    axes = figure.add_subplot()
    rows = report["drift"]["daily"]
    positions = range(len(rows))
    ok = [row["checks"] - row["warning"] - row["drift"] for row in rows]
    warning = [row["warning"] for row in rows]
    drift = [row["drift"] for row in rows]
    axes.bar(positions, ok, color="tab:green", label="ok")
    axes.bar(positions, warning, bottom=ok, color="tab:orange", label="warning")
    axes.bar(
        positions,
        drift,
        bottom=[a + b for a, b in zip(ok, warning, strict=True)],
        color="tab:red",
        label="drift",
    )
    if not any(row["checks"] for row in rows):
        axes.text(
            0.5, 0.5, "no drift checks in the window", transform=axes.transAxes, ha="center", color="grey"
        )
    axes.set_ylabel("windows checked")
    _whole_numbers(axes)
    axes.set_title("Drift checks per day")
    axes.legend(loc="upper left")
    _day_axis(axes, _days(report))
