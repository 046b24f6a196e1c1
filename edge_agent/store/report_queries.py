"""Raw figures of the KPI report (``edge_agent.report``), per UTC day, read from the raw tables.

Everything here is a count, a sum or a list of rows; thresholds, shares and money are the
report's business. Days are UTC calendar days (``date(created_at, 'unixepoch')``). Functions run
inside the one read transaction ``SiteStore.report_figures`` opened, so all figures are of one
snapshot. Label rows are written by hand, so reading their seconds into memory stays small.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any, Final

from edge_agent.store.inputs import IN_AUDIT_SAMPLE
from edge_agent.store.kpi import DAY_SECONDS, day_start, latency_quantiles
from genba.versions import ModelVersion

_DAY: Final = "date({column}, 'unixepoch')"
_PRODUCTION_WINDOW: Final = "stage = 'production' AND created_at >= ? AND created_at < ?"
_WINDOW_INPUTS: Final = "input_id IN (SELECT id FROM inputs WHERE created_at >= ? AND created_at < ?)"


def figures(conn: sqlite3.Connection, days: Sequence[str]) -> dict[str, Any]:
    """The raw figures of consecutive UTC ``days`` (oldest first), one snapshot."""
    window = (day_start(days[0]), day_start(days[-1]) + DAY_SECONDS)
    return {
        "label_outcomes": label_outcomes(conn, window),
        "audit_outcomes": label_outcomes(conn, window, audited_only=True),
        "label_seconds": label_seconds(conn, window),
        "agreement": candidate_agreement(conn, window),
        "production": production_answers(conn, window, days),
        "lead_times": lead_times(conn, window),
        "drift_events": drift_events(conn, window),
        "drift_daily": drift_daily(conn, window),
        "first_install": first_install(conn),
    }


_IN_AUDIT_SAMPLE = f"AND {IN_AUDIT_SAMPLE.format(input='l.input_id')} "


def label_outcomes(
    conn: sqlite3.Connection, window: tuple[float, float], *, audited_only: bool = False
) -> dict[str, dict[str, int]]:
    """Per day of an input's latest label, over labelled inputs production served an answer for:
    ``labelled``, ``correct`` (latest label equals the latest served answer) and ``accepted`` (no
    label of the input was ever a correction of production's answer). ``audited_only``: inputs of
    the audit sample only (drawn at random, so an unbiased estimate for the traffic)."""
    audit = _IN_AUDIT_SAMPLE if audited_only else ""
    rows = conn.execute(
        f"SELECT {_DAY.format(column='l.created_at')} AS day, count(*), "
        "coalesce(sum(coalesce(p.label = l.label, 0)), 0), "
        "coalesce(sum(NOT EXISTS (SELECT 1 FROM labels AS c WHERE c.input_id = l.input_id "
        "AND c.is_correction = 1)), 0) "
        "FROM latest_labels AS l JOIN predictions AS p ON p.id = (SELECT max(s.id) FROM predictions AS s "
        "WHERE s.input_id = l.input_id AND s.stage = 'production' AND s.served = 1) "
        f"WHERE l.created_at >= ? AND l.created_at < ? {audit}GROUP BY day",
        window,
    )
    return {
        day: {"labelled": n, "correct": correct, "accepted": accepted} for day, n, correct, accepted in rows
    }


def label_seconds(conn: sqlite3.Connection, window: tuple[float, float]) -> dict[str, list[float | None]]:
    """Every label row given on each day (relabels too: each is an operator's work), by its seconds."""
    seconds: dict[str, list[float | None]] = {}
    for day, value in conn.execute(
        f"SELECT {_DAY.format(column='created_at')}, operator_seconds FROM labels "
        "WHERE created_at >= ? AND created_at < ? ORDER BY id",
        window,
    ):
        seconds.setdefault(day, []).append(value)
    return seconds


def candidate_agreement(conn: sqlite3.Connection, window: tuple[float, float]) -> dict[str, dict[str, int]]:
    """Per day of the input: inputs answered by a candidate stage (shadow or pilot) and by production,
    each side's latest answer; ``agreed`` when both gave the same label (no label never agrees)."""
    rows = conn.execute(
        "WITH candidate AS (SELECT input_id, max(id) AS id FROM predictions "
        f"  WHERE stage IN ('shadow', 'pilot') AND {_WINDOW_INPUTS} GROUP BY input_id), "
        "production AS (SELECT input_id, max(id) AS id FROM predictions "
        f"  WHERE stage = 'production' AND {_WINDOW_INPUTS} GROUP BY input_id) "
        f"SELECT {_DAY.format(column='i.created_at')} AS day, count(*), "
        "coalesce(sum(coalesce(cp.label = pp.label, 0)), 0) "
        "FROM candidate JOIN production USING (input_id) JOIN inputs AS i ON i.id = candidate.input_id "
        "JOIN predictions AS cp ON cp.id = candidate.id JOIN predictions AS pp ON pp.id = production.id "
        "GROUP BY day",
        (*window, *window),
    )
    return {day: {"compared": compared, "agreed": agreed} for day, compared, agreed in rows}


def production_answers(
    conn: sqlite3.Connection, window: tuple[float, float], days: Sequence[str]
) -> dict[str, Any]:
    """Production answers (and how many were served) with latency p50/p95, per day and overall."""
    counts = {
        day: (answers, served)
        for day, answers, served in conn.execute(
            f"SELECT {_DAY.format(column='created_at')} AS day, count(*), coalesce(sum(served), 0) "
            f"FROM predictions WHERE {_PRODUCTION_WINDOW} GROUP BY day",
            window,
        )
    }
    daily: dict[str, dict[str, Any]] = {}
    for day in days:
        answers, served = counts.get(day, (0, 0))
        start = day_start(day)
        p50, p95 = latency_quantiles(conn, _PRODUCTION_WINDOW, (start, start + DAY_SECONDS), (0.5, 0.95))
        daily[day] = {"answers": answers, "served": served, "p50": p50, "p95": p95}
    p50, p95 = latency_quantiles(conn, _PRODUCTION_WINDOW, window, (0.5, 0.95))
    answers = sum(row["answers"] for row in daily.values())
    return {"daily": daily, "overall": {"answers": answers, "p50": p50, "p95": p95}}


def lead_times(conn: sqlite3.Connection, window: tuple[float, float]) -> list[dict[str, Any]]:
    """Models whose first production start lies in the window: installed_at, that start, and whether
    a candidate stage (evaluation, shadow, pilot) came first."""
    rows = conn.execute(
        "SELECT m.id, m.name, m.installed_at, h.first_start, "
        "EXISTS (SELECT 1 FROM stage_decisions AS d WHERE d.model_id = m.id "
        "AND d.to_stage IN ('evaluation', 'shadow', 'pilot')), m.version, m.revision "
        "FROM models AS m JOIN (SELECT model_id, min(started_at) AS first_start FROM production_history "
        "GROUP BY model_id) AS h ON h.model_id = m.id "
        "WHERE h.first_start >= ? AND h.first_start < ? ORDER BY h.first_start, m.id",
        window,
    ).fetchall()
    keys = ("model_id", "name", "installed_at", "production_at")
    return [
        {**dict(zip(keys, row[:4], strict=True)), "via_candidate": bool(row[4]), **_version(row[5:7])}
        for row in rows
    ]


def _version(release_and_revision: Sequence[int]) -> dict[str, int | str]:
    return ModelVersion(*release_and_revision).json_fields()


def drift_events(conn: sqlite3.Connection, window: tuple[float, float]) -> list[dict[str, Any]]:
    """Drift checks that ended in 'warning' or 'drift', oldest first."""
    rows = conn.execute(
        f"SELECT id, created_at, {_DAY.format(column='created_at')}, model_id, reference, status, feature, "
        "p_value, items FROM drift_checks WHERE status IN ('warning', 'drift') "
        "AND created_at >= ? AND created_at < ? ORDER BY created_at, id",
        window,
    ).fetchall()
    keys = ("check_id", "created_at", "day", "model_id", "reference", "status", "feature", "p_value", "items")
    return [dict(zip(keys, row, strict=True)) for row in rows]


def drift_daily(conn: sqlite3.Connection, window: tuple[float, float]) -> dict[str, dict[str, int]]:
    """Per day: windows checked, and how many ended in 'warning' and in 'drift'."""
    rows = conn.execute(
        f"SELECT {_DAY.format(column='created_at')} AS day, count(*), "
        "coalesce(sum(status = 'warning'), 0), coalesce(sum(status = 'drift'), 0) FROM drift_checks "
        "WHERE created_at >= ? AND created_at < ? GROUP BY day",
        window,
    )
    return {
        day: {"checks": checks, "warning": warning, "drift": drift} for day, checks, warning, drift in rows
    }


def first_install(conn: sqlite3.Connection) -> float | None:
    """When the site's first model arrived: the site counts as running from that UTC day on."""
    value: float | None = conn.execute("SELECT min(installed_at) FROM models").fetchone()[0]
    return value
