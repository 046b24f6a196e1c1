"""Figures the gates and the reports read from the raw tables.

Quantiles use linear interpolation between the two nearest ranks (numpy's default), computed with
``ORDER BY ... LIMIT 2 OFFSET k`` so a year of predictions never has to fit in memory.
Functions here run inside a transaction the caller (``SiteStore``) opened.
"""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from genba.errors import UsageError

DAY_SECONDS: Final = 86400.0
#: The latency the KPIs and the gates read: what the caller saw (schema v10), or for answers from
#: before it the model's time, the only figure they have.
CALLER_LATENCY: Final = "coalesce(caller_latency_ms, latency_ms)"
#: The same figure as schema v12's ``production_by_caller_latency`` indexes it (see there).
INDEXED_CALLER_LATENCY: Final = f"{CALLER_LATENCY} + 0"
_LATEST_PER_INPUT: Final = (
    "SELECT input_id, label, max(id) AS id FROM predictions WHERE model_id = ? AND {stage} "
    "AND input_id IN (SELECT id FROM inputs WHERE created_at >= ?) GROUP BY input_id"
)


def stage_count(conn: sqlite3.Connection, model_id: int, stage: str, since: float) -> int:
    count: int = conn.execute(
        "SELECT count(*) FROM predictions WHERE model_id = ? AND stage = ? AND created_at >= ?",
        (model_id, stage, since),
    ).fetchone()[0]
    return count


def agreement(
    conn: sqlite3.Connection, candidate_id: int, production_id: int, since: float
) -> tuple[int, int]:
    """(compared, agreed) over inputs since ``since`` answered by both; a missing label never agrees."""
    candidate = _LATEST_PER_INPUT.format(stage="stage != 'production'")
    production = _LATEST_PER_INPUT.format(stage="stage = 'production'")
    compared, agreed = conn.execute(
        f"SELECT count(*), coalesce(sum(coalesce(c.label = p.label, 0)), 0) "
        f"FROM ({candidate}) AS c JOIN ({production}) AS p USING (input_id)",
        (candidate_id, since, production_id, since),
    ).fetchone()
    return compared, agreed


def latencies(
    conn: sqlite3.Connection, model_id: int, since: float, stage: str | None, limit: int
) -> list[float]:
    """Latencies as callers saw them (``CALLER_LATENCY``), newest first."""
    rows = conn.execute(
        f"SELECT {CALLER_LATENCY} FROM predictions WHERE model_id = ? AND created_at >= ? "
        "AND (? IS NULL OR stage = ?) ORDER BY id DESC LIMIT ?",
        (model_id, since, stage, stage, limit),
    )
    return [row[0] for row in rows]


def latency_quantiles(
    conn: sqlite3.Connection,
    where: str,
    params: Sequence[Any],
    quantiles: Sequence[float],
    latency: str = CALLER_LATENCY,
) -> list[float | None]:
    """Quantiles of the latency callers saw (``CALLER_LATENCY``) over the rows matching ``where``."""
    count: int = conn.execute(f"SELECT count(*) FROM predictions WHERE {where}", params).fetchone()[0]
    if count == 0:
        return [None for _ in quantiles]
    results: list[float | None] = []
    for quantile in quantiles:
        position = quantile * (count - 1)
        below = math.floor(position)
        neighbours = [
            row[0]
            for row in conn.execute(
                f"SELECT {latency} AS latency FROM predictions WHERE {where} "
                "ORDER BY latency LIMIT 2 OFFSET ?",
                (*params, below),
            )
        ]
        low = neighbours[0]
        high = neighbours[1] if len(neighbours) > 1 else low
        results.append(low + (high - low) * (position - below))
    return results


def _production_latency_quantiles(conn: sqlite3.Connection, since: float | None) -> list[float | None]:
    """p50 and p95 of production's caller latency; all time through the v12 index, no sort."""
    if since is None:
        return latency_quantiles(conn, "stage = 'production'", (), (0.5, 0.95), INDEXED_CALLER_LATENCY)
    return latency_quantiles(conn, "stage = 'production' AND created_at >= ?", (since,), (0.5, 0.95))


def summary(conn: sqlite3.Connection, since: float | None) -> dict[str, Any]:
    """Headline KPIs since ``since``; a labelled input counts once, by its latest label."""
    start = since if since is not None else -math.inf
    # "served" counts answers returned as the answer (production), not pilot suggestions beside them
    predictions, served = conn.execute(
        "SELECT count(*), coalesce(sum(served AND stage = 'production'), 0) FROM predictions "
        "WHERE created_at >= ?",
        (start,),
    ).fetchone()
    p50, p95 = _production_latency_quantiles(conn, since)
    return {
        "predictions": predictions,
        "served": served,
        **_label_figures(conn, start),
        "latency_ms_p50": p50,
        "latency_ms_p95": p95,
        "per_model": _per_model(conn, start),
    }


def _label_figures(conn: sqlite3.Connection, start: float) -> dict[str, Any]:
    labels, corrections, seconds_mean, with_served, confirmed = conn.execute(
        "SELECT count(*), coalesce(sum(l.is_correction), 0), avg(l.operator_seconds), count(p.id), "
        "coalesce(sum(coalesce(p.label = l.label, 0)), 0) FROM latest_labels AS l "
        "LEFT JOIN predictions AS p ON p.id = (SELECT max(s.id) FROM predictions AS s "
        "WHERE s.input_id = l.input_id AND s.stage = 'production' AND s.served = 1) "
        "WHERE l.created_at >= ?",
        (start,),
    ).fetchone()
    return {
        "labels": labels,
        "corrections": corrections,
        # Of the labelled inputs production answered, the share whose answer the operator kept.
        "acceptance": confirmed / with_served if with_served else None,
        "operator_seconds_mean": seconds_mean,
    }


def _per_model(conn: sqlite3.Connection, start: float) -> dict[int, dict[str, Any]]:
    per_model: dict[int, dict[str, Any]] = {}
    rows = conn.execute(
        "SELECT model_id, stage, count(*), sum(served) FROM predictions WHERE created_at >= ? "
        "GROUP BY model_id, stage ORDER BY model_id, stage",
        (start,),
    )
    for model_id, stage, count, served in rows:
        figures = per_model.setdefault(model_id, {"predictions": 0, "served": 0, "stages": {}})
        figures["predictions"] += count
        figures["served"] += served
        figures["stages"][stage] = count
    return per_model


def utc_day(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d")


def day_start(day: str) -> float:
    try:
        return datetime.strptime(day, "%Y-%m-%d").replace(tzinfo=UTC).timestamp()
    except ValueError as exc:
        raise UsageError(f"day must be written YYYY-MM-DD, not {day!r}") from exc


def refresh_daily(conn: sqlite3.Connection, day: str) -> int:
    """Recompute one UTC day's rows from the raw tables, replacing what was there; returns rows written.

    Predictions count on the day they were made. Labels count on the day they were given, once
    per input (its latest label), for every model and stage that answered that input; for each,
    a "correction" is a label that differs from that model's answer, so shadow rows read as
    "how often the operator would have corrected this model".
    """
    start = day_start(day)
    window = (start, start + DAY_SECONDS)
    rows: list[tuple[str, int, str, str, float]] = []
    for model_id, stage, count, served in conn.execute(
        "SELECT model_id, stage, count(*), sum(served) FROM predictions "
        "WHERE created_at >= ? AND created_at < ? GROUP BY model_id, stage",
        window,
    ).fetchall():
        p50, p95 = latency_quantiles(
            conn,
            "model_id = ? AND stage = ? AND created_at >= ? AND created_at < ?",
            (model_id, stage, *window),
            (0.5, 0.95),
        )
        figures = {"predictions": count, "served": served, "latency_ms_p50": p50, "latency_ms_p95": p95}
        rows += [
            (day, model_id, stage, metric, value) for metric, value in figures.items() if value is not None
        ]
    rows += _daily_label_rows(conn, day, window)
    conn.execute("DELETE FROM kpi_daily WHERE day = ?", (day,))
    conn.executemany(
        "INSERT INTO kpi_daily (day, model_id, stage, metric, value) VALUES (?, ?, ?, ?, ?)", rows
    )
    return len(rows)


def _daily_label_rows(
    conn: sqlite3.Connection, day: str, window: tuple[float, float]
) -> list[tuple[str, int, str, str, float]]:
    rows: list[tuple[str, int, str, str, float]] = []
    for model_id, stage, labels, corrections in conn.execute(
        "SELECT p.model_id, p.stage, count(*), sum(p.label IS NOT l.label) FROM latest_labels AS l "
        "JOIN (SELECT input_id, model_id, stage, label, max(id) FROM predictions "
        "      WHERE input_id IN (SELECT input_id FROM labels WHERE created_at >= ? AND created_at < ?) "
        "      GROUP BY input_id, model_id, stage) AS p ON p.input_id = l.input_id "
        "WHERE l.created_at >= ? AND l.created_at < ? GROUP BY p.model_id, p.stage",
        (*window, *window),
    ):
        rows += [(day, model_id, stage, "labels", labels), (day, model_id, stage, "corrections", corrections)]
    return rows


def read_daily(conn: sqlite3.Connection, first_day: str) -> list[dict[str, Any]]:
    rows = conn.execute(
        "SELECT day, model_id, stage, metric, value FROM kpi_daily WHERE day >= ? "
        "ORDER BY day DESC, model_id, stage, metric",
        (first_day,),
    ).fetchall()
    keys = ("day", "model_id", "stage", "metric", "value")
    return [dict(zip(keys, row, strict=True)) for row in rows]


def first_day(now: float, days: int) -> str:
    """The oldest day in a window of ``days`` UTC days ending today."""
    return utc_day((datetime.fromtimestamp(now, UTC) - timedelta(days=max(days, 1) - 1)).timestamp())
