"""Benchmark: the all-time KPI summary (``/v1/kpis``) on a store that has served for months.

One real site store (this release's schema, SQLite on this disk) is filled with ``--predictions``
production answers spread over 60 days, one label per 100 answers. A copy without schema v12's
``production_by_caller_latency`` index is the store as it was before it. Side by side, repeated,
median seconds:

* ``summary_all_time_s``: ``kpi.summary(conn, None)`` with the index, against the query before it
  (``created_at >= -inf`` and a sort of every answer) on the copy without;
* ``report_day_s`` and ``daily_rollup_s``: a day's window (the KPI report's and the daily rollup's
  latency ranks), which must keep their time indexes: the index must not slow them;
* ``insert_10k_s``: 10,000 more production answers through ``SiteStore.record_served`` in batches
  of 16 (the serving path's write, flushed as the default ``[store] durability`` flushes it): what
  the index costs every prediction.

Results are checked equal on both stores. Prints one JSON document.

    .venv/bin/python bench/kpis_at_scale.py [--predictions 200000] [--repeats 5] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import math
import random
import shutil
import sqlite3
import statistics
import time
from collections.abc import Callable
from contextlib import closing
from pathlib import Path
from typing import Any

DAY = 86400.0
DAYS = 60


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--predictions", type=int, default=200_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path, default=Path("bench-out/kpis_at_scale"))
    args = parser.parse_args()
    shutil.rmtree(args.out, ignore_errors=True)
    args.out.mkdir(parents=True)
    now = time.time()
    after = _filled_store(args.out / "store.db", args.predictions, now)
    before = args.out / "store-before-v12.db"
    shutil.copyfile(after, before)
    with closing(sqlite3.connect(before)) as conn:
        conn.execute("DROP INDEX production_by_caller_latency")
    figures = _compare(before, after, now, args.repeats)
    document = {
        "predictions": args.predictions,
        "days": DAYS,
        "repeats": args.repeats,
        **figures,
        "summary_all_time_before_over_after": round(
            figures["summary_all_time_s"]["before"] / figures["summary_all_time_s"]["after"], 1
        ),
        "details": "median seconds of --repeats reads on one connection per store, warm page cache",
    }
    print(json.dumps(document, indent=2))
    (args.out / "kpis_at_scale.json").write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    return 0


def _filled_store(path: Path, predictions: int, now: float) -> Path:
    from edge_agent.store import SiteStore

    with SiteStore(path) as store:
        store.add_model(
            name="defects", version=1, manifest_sha256="0" * 64, path="models/defects-v1",
            signer_key_id=None, lineage={}, manifest={}, installed_by="bench",
        )  # fmt: skip
    rng = random.Random(0)
    start = now - DAYS * DAY
    step = DAYS * DAY / predictions
    with closing(sqlite3.connect(path)) as conn, conn:
        conn.executemany(
            "INSERT INTO inputs (id, created_at, kind, payload, payload_sha256) "
            "VALUES (?, ?, 'text', x'61', '')",
            ((i + 1, start + i * step) for i in range(predictions)),
        )
        conn.executemany(
            "INSERT INTO predictions (input_id, model_id, stage, label, score, margin, latency_ms, "
            "caller_latency_ms, provider, served, created_at) VALUES (?, 1, 'production', ?, 0.9, 0.4, ?, ?, "
            "'cpu', 1, ?)",
            (_answer(rng, i + 1, start + i * step) for i in range(predictions)),
        )
        conn.executemany(
            "INSERT INTO labels (input_id, label, actor, split, is_correction, created_at) "
            "VALUES (?, 'dent', 'operator', 'train', 0, ?)",
            ((i + 1, start + i * step + 60) for i in range(0, predictions, 100)),
        )
    return path


def _answer(rng: random.Random, input_id: int, at: float) -> tuple[Any, ...]:
    model_ms = rng.lognormvariate(1.5, 0.4)
    return (input_id, rng.choice(("dent", "scratch")), model_ms, model_ms + rng.expovariate(0.2), at)


def _compare(before: Path, after: Path, now: float, repeats: int) -> dict[str, Any]:
    from edge_agent.store import kpi, report_queries

    day = kpi.utc_day(now - 2 * DAY)
    reads: dict[str, tuple[Callable[[sqlite3.Connection], Any], Callable[[sqlite3.Connection], Any]]] = {
        # before: the query the summary ran until v12 (every row meets created_at >= -inf)
        "summary_all_time_s": (lambda c: kpi.summary(c, -math.inf), lambda c: kpi.summary(c, None)),
        "report_day_s": (lambda c: report_queries.figures(c, [day]),) * 2,
        "daily_rollup_s": (lambda c: kpi.refresh_daily(c, day),) * 2,
    }
    figures: dict[str, Any] = {}
    with closing(sqlite3.connect(before)) as old, closing(sqlite3.connect(after)) as new:
        for name, (read_before, read_after) in reads.items():
            answers = (read_before(old), read_after(new))
            assert answers[0] == answers[1], f"{name}: the two stores answer differently"
            times = {"before": _median(read_before, old, repeats), "after": _median(read_after, new, repeats)}
            figures[name] = {**times, "after_over_before": round(times["after"] / times["before"], 3)}
    figures["insert_10k_s"] = _insert_cost(before, after, repeats)
    return figures


def _median(read: Callable[[sqlite3.Connection], Any], conn: sqlite3.Connection, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        read(conn)
        times.append(time.perf_counter() - started)
    return round(statistics.median(times), 4)


def _insert_cost(before: Path, after: Path, repeats: int) -> dict[str, Any]:
    """10,000 answers through ``SiteStore.record_served`` (the serving path's write: its WAL, its
    flush per batch as ``[store] durability`` sets), in batches of 16, alternating between the stores."""
    from edge_agent.store import InputRecord, PredictionRecord, SiteStore

    rng = random.Random(1)
    spent = {"before": 0.0, "after": 0.0}
    with SiteStore(before) as old, SiteStore(after) as new:
        for batch in range(625):
            inputs = [InputRecord("text", f"report {batch} {i}".encode()) for i in range(16)]
            answers = [[_record(rng, PredictionRecord)] for _ in inputs]
            order = (("before", old), ("after", new)) if batch % 2 else (("after", new), ("before", old))
            for name, store in order:
                started = time.perf_counter()
                store.record_served(inputs, answers)
                spent[name] += time.perf_counter() - started
    return {
        "before": round(spent["before"], 3),
        "after": round(spent["after"], 3),
        "after_over_before": round(spent["after"] / spent["before"], 3),
        "per_answer_ms": {name: round(seconds / 10, 4) for name, seconds in spent.items()},
    }


def _record(rng: random.Random, record: Any) -> Any:
    model_ms = rng.lognormvariate(1.5, 0.4)
    return record(1, "production", "dent", 0.9, 0.4, model_ms, "cpu", True, model_ms + rng.expovariate(0.2))


if __name__ == "__main__":
    raise SystemExit(main())
