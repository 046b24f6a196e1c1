"""Build the KPI report: raw figures from the site store, minimums applied, money estimated.

Every figure that has too few data behind it is None with a ``reason`` such as
"4 labels on 2026-11-28, 5 needed"; every day of the window is listed, so no day is ever hidden.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from edge_agent.config import CostConfig
from edge_agent.report.costs import cost_benefit
from edge_agent.report.definitions import DEFINITIONS
from edge_agent.store.kpi import DAY_SECONDS, day_start, utc_day
from genba.errors import UsageError

LABELS = ("label", "labels")
BOTH_ANSWERED = ("input answered by both", "inputs answered by both")


class ReportSource(Protocol):
    def report_figures(self, days: Sequence[str]) -> dict[str, Any]: ...


def build_report(
    store: ReportSource,
    costs: CostConfig,
    *,
    days: int = 30,
    now: float | None = None,
    site: str = "",
    min_labels: int = 5,
    min_answers: int = 10,
) -> dict[str, Any]:
    """The report of the last ``days`` UTC days (today included) as a JSON-serialisable dict."""
    _check_arguments(days, min_labels, min_answers)
    moment = time.time() if now is None else now
    window = window_days(moment, days)
    raw = store.report_figures(window)
    running = _running_days(window, raw["first_install"])
    accuracy = share_series(raw["label_outcomes"], window, ("correct", "labelled"), LABELS, min_labels)
    effort = operator_effort(raw["label_seconds"], window, sum(running.values()), min_labels)
    return {
        "site": site,
        "generated_at": _iso(moment),
        "window": {
            "days": days,
            "first_day": window[0],
            "last_day": window[-1],
            "start": day_start(window[0]),
            "end": day_start(window[-1]) + DAY_SECONDS,
            "running_days": sum(running.values()),
        },
        "minimums": {"labels": min_labels, "answers": min_answers},
        "definitions": DEFINITIONS,
        "accuracy": accuracy,
        "acceptance": share_series(
            raw["label_outcomes"], window, ("accepted", "labelled"), LABELS, min_labels
        ),
        # The audit sample's labels: inputs drawn at random, so these estimate the traffic; the two
        # above rest on every label, mostly the queue's least sure answers (biased low).
        "accuracy_audit": share_series(
            raw["audit_outcomes"], window, ("correct", "labelled"), LABELS, min_labels
        ),
        "acceptance_audit": share_series(
            raw["audit_outcomes"], window, ("accepted", "labelled"), LABELS, min_labels
        ),
        "unbiased": ["accuracy_audit", "acceptance_audit"],
        "agreement": share_series(
            raw["agreement"], window, ("agreed", "compared"), BOTH_ANSWERED, min_answers
        ),
        "lead_time": lead_time(raw["lead_times"]),
        "operator_effort": effort,
        "latency": latency(raw["production"], window, min_answers),
        "drift": drift(raw["drift_events"], raw["drift_daily"], window),
        "cost_benefit": cost_benefit(costs, _cost_inputs(raw, effort, running), accuracy["overall"]),
    }


def _check_arguments(days: int, min_labels: int, min_answers: int) -> None:
    if days < 1:
        raise UsageError(f"the report needs at least 1 day, not {days}")
    if min_labels < 1 or min_answers < 1:
        raise UsageError("the report's minimum counts must be >= 1")


def window_days(now: float, days: int) -> list[str]:
    """The last ``days`` UTC days ending with today, oldest first."""
    today = datetime.fromtimestamp(now, UTC)
    return [(today - timedelta(days=back)).strftime("%Y-%m-%d") for back in range(days - 1, -1, -1)]


def _running_days(window: Sequence[str], first_install: float | None) -> dict[str, int]:
    first = utc_day(first_install) if first_install is not None else None
    return {day: int(first is not None and day >= first) for day in window}


def too_few(count: int, noun: tuple[str, str], where: str, minimum: int) -> str | None:
    """Why a figure is missing ("4 labels on 2026-11-28, 5 needed"), or None; ``noun``: (one, many)."""
    if count >= minimum:
        return None
    return f"{count} {noun[0] if count == 1 else noun[1]} {where}, {minimum} needed"


def share_series(
    counts: Mapping[str, Mapping[str, int]],
    window: Sequence[str],
    keys: tuple[str, str],
    noun: tuple[str, str],
    minimum: int,
) -> dict[str, Any]:
    """``part / whole`` per day and over the window; None with a reason below ``minimum``."""
    part, whole = keys

    def share(parts: int, wholes: int, where: str) -> dict[str, Any]:
        reason = too_few(wholes, noun, where, minimum)
        value = parts / wholes if reason is None else None
        return {whole: wholes, part: parts, "value": value, "reason": reason}

    daily = [
        {
            "day": day,
            **share(counts.get(day, {}).get(part, 0), counts.get(day, {}).get(whole, 0), f"on {day}"),
        }
        for day in window
    ]
    overall = share(sum(row[part] for row in daily), sum(row[whole] for row in daily), "in the window")
    return {"overall": overall, "daily": daily}


def lead_time(models: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    rows = [{**model, "hours": (model["production_at"] - model["installed_at"]) / 3600.0} for model in models]
    counted_hours = [row["hours"] for row in rows if row["via_candidate"]]
    reason = None if counted_hours else "no model reached production through a candidate stage in the window"
    return {
        "models": rows,
        "counted": len(counted_hours),
        "median_hours": statistics.median(counted_hours) if counted_hours else None,
        "reason": reason,
    }


def _seconds_figures(seconds: Sequence[float | None], where: str, minimum: int) -> dict[str, Any]:
    timed = [value for value in seconds if value is not None]
    reason = too_few(len(timed), ("timed label", "timed labels"), where, minimum)
    return {
        "labels": len(seconds),
        "timed": len(timed),
        "seconds_total": math.fsum(timed),
        "seconds_mean": statistics.fmean(timed) if reason is None else None,
        "seconds_median": statistics.median(timed) if reason is None else None,
        "reason": reason,
    }


def operator_effort(
    seconds_by_day: Mapping[str, Sequence[float | None]],
    window: Sequence[str],
    running_days: int,
    minimum: int,
) -> dict[str, Any]:
    daily = [
        {"day": day, **_seconds_figures(seconds_by_day.get(day, []), f"on {day}", minimum)} for day in window
    ]
    overall = _seconds_figures(
        [s for day in window for s in seconds_by_day.get(day, [])], "in the window", minimum
    )
    per_day = overall["labels"] / running_days if running_days else None
    reasons = [overall["reason"], None if running_days else "no model installed by the end of the window"]
    overall |= {
        "running_days": running_days,
        "labels_per_day": per_day,
        "reason": "; ".join(r for r in reasons if r) or None,
    }
    return {"overall": overall, "daily": daily}


def latency(production: Mapping[str, Any], window: Sequence[str], minimum: int) -> dict[str, Any]:
    def quantiles(figures: Mapping[str, Any], where: str) -> dict[str, Any]:
        reason = too_few(figures["answers"], ("production answer", "production answers"), where, minimum)
        enough = reason is None
        return {
            "answers": figures["answers"],
            "p50_ms": figures["p50"] if enough else None,
            "p95_ms": figures["p95"] if enough else None,
            "reason": reason,
        }

    daily = [{"day": day, **quantiles(production["daily"][day], f"on {day}")} for day in window]
    return {"overall": quantiles(production["overall"], "in the window"), "daily": daily}


def drift(
    events: Sequence[Mapping[str, Any]], counts: Mapping[str, Mapping[str, int]], window: Sequence[str]
) -> dict[str, Any]:
    listed = [
        {**event, "time": _iso(event["created_at"]), "p_value": _finite(event["p_value"])} for event in events
    ]
    empty = {"checks": 0, "warning": 0, "drift": 0}
    daily: list[dict[str, Any]] = [{"day": day, **counts.get(day, empty)} for day in window]
    total = {key: sum(row[key] for row in daily) for key in empty}
    return {"events": listed, "daily": daily, "total": total}


def _cost_inputs(
    raw: Mapping[str, Any], effort: Mapping[str, Any], running: Mapping[str, int]
) -> list[dict[str, Any]]:
    return [
        {
            "day": row["day"],
            "served": raw["production"]["daily"][row["day"]]["served"],
            "labelling_seconds": row["seconds_total"],
            "untimed_labels": row["labels"] - row["timed"],
            "running": running[row["day"]],
        }
        for row in effort["daily"]
    ]


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def _iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
