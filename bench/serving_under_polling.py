"""Benchmark: does an operator's app polling every read endpoint slow the line's predictions?

A real agent (``genba agent serve``, the real API on loopback) serves the default bundle (packaged
all-MiniLM-L6-v2, CPU). Its store is seeded first as a site's would be after a while: a long audit
log and egress ledger (each page of which says whether the whole chain verifies) and a few thousand
answered inputs for the labelling queue to rank.

* ``predict_p99_ms_alone``: p99 latency of one client sending one text at a time, nothing else.
* ``predict_p99_ms_with_polling``: the same client while a second one polls, back to back, every
  read endpoint an operator's app polls (status, gates, queue, KPIs, report, drift, groups, models,
  federation, training, audit and egress pages).
* ``polling_over_alone``: the ratio (target <= 1.5). Back to back, the poller keeps about one of
  a 2-core PC's cores busy: the worst an app can do, not what one usually does.
* ``details.paced``: the same with the poller going over every endpoint once a second, as an app
  refreshing all its views would.

The agent answers polled views from a cache at most ``api.view_max_age_s`` old and paces each
role's polling (``api.polled_views_per_second``), both at their defaults here: the back-to-back
poller is the agent's defence measured, and ``details.polls_answered`` says how many views it got.

Rounds alternate the modes (alone, back to back, paced) so that all see the same machine, after a
warm-up; the p99 of each mode is over all its rounds' requests, each round's p99 is beside it.
``--before FILE`` shows an earlier run's figures (another commit's agent) beside this one's.

    .venv/bin/python bench/serving_under_polling.py [--requests 800] [--rounds 3] [--out bench-out/polling]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from bench_site import add_bundle_arguments, address, bundle_and_trust, serving_site, start_agent

POLLED = (
    "/v1/status",
    "/v1/gates",
    "/v1/queue?limit=50",
    "/v1/kpis",
    "/v1/report?days=30",
    "/v1/drift",
    "/v1/groups",
    "/v1/models",
    "/v1/federation",
    "/v1/train",
    "/v1/audit?limit=100",
    "/v1/egress?limit=100",
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=800, help="predictions per mode and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--audit-entries", type=int, default=20000)
    parser.add_argument("--egress-entries", type=int, default=5000)
    parser.add_argument("--answered", type=int, default=3000, help="answered inputs seeded into the store")
    parser.add_argument("--bundle-cache", type=Path, default=Path("bench-out/default-bundle"))
    add_bundle_arguments(parser)
    parser.add_argument("--out", type=Path, default=Path("bench-out/polling"))
    parser.add_argument(
        "--before", type=Path, help="this benchmark's JSON from an earlier commit, shown beside"
    )
    parser.add_argument("--before-commit", help="the commit --before was measured on")
    args = parser.parse_args()
    bundle, trust = bundle_and_trust(parser, args, args.bundle_cache)
    texts = _texts(args.answered + args.requests)
    site = serving_site(args.out / "site", bundle, trust, "polling")
    _seed(site, texts[: args.answered], args.audit_entries, args.egress_entries)
    agent = start_agent(site, args.out / "agent.log")
    try:
        figures = _run(_measure(site, texts[args.answered :], args.rounds))
    finally:
        agent.terminate()
        agent.wait(timeout=30)
    alone, polled, paced = figures.pop("alone"), figures.pop("with_polling"), figures.pop("paced")
    document: dict[str, Any] = {
        "predict_p99_ms_alone": _p99(alone),
        "predict_p99_ms_with_polling": _p99(polled),
        "polling_over_alone": round(_p99(polled) / _p99(alone), 3),
        "targets": {"polling_over_alone": "<= 1.5"},
        "details": {
            "paced": {
                "every_s": PACE_S,
                "predict_p99_ms_with_polling": _p99(paced),
                "polling_over_alone": round(_p99(paced) / _p99(alone), 3),
            },
            "predict_p50_ms_alone": round(statistics.median(alone), 3),
            "predict_p50_ms_with_polling": round(statistics.median(polled), 3),
            **figures,
            "requests_per_mode": len(alone),
            "rounds": args.rounds,
            "seeded": {
                "audit_entries": args.audit_entries,
                "egress_entries": args.egress_entries,
                "answered_inputs": args.answered,
            },
            "polled": list(POLLED),
            "bundle": str(bundle),
            "commit": _commit(),
        },
    }
    if args.before is not None:
        earlier = json.loads(args.before.read_text(encoding="utf-8"))
        document["before"] = {
            "commit": args.before_commit or earlier.get("details", {}).get("commit"),
            **{key: earlier[key] for key in FIGURES},
            "paced": earlier.get("details", {}).get("paced"),
            "poll_p50_ms": earlier.get("details", {}).get("poll_p50_ms"),
        }
    print(json.dumps(document, indent=2))
    return 0


#: The pace of an app that refreshes every view once a second (the second polling mode).
PACE_S = 1.0
#: Predictions before any measuring: fewer left the first round's figures alone visibly higher.
WARM_UP = 400
FIGURES = ("predict_p99_ms_alone", "predict_p99_ms_with_polling", "polling_over_alone")


def _commit() -> str | None:
    """The commit measured, marked when the working tree differs from it."""
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True)
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True
        )
    except (OSError, subprocess.CalledProcessError):
        return None
    return head.stdout.strip() + (" (with uncommitted changes)" if dirty.stdout.strip() else "")


def _p99(timings: list[float]) -> float:
    return round(float(np.percentile(np.asarray(timings), 99)), 3)


# ------------------------------------------------------------------ set-up


def _texts(count: int) -> list[str]:
    from export.datasets import shopfloor

    reports = shopfloor.site_split("site-a", seed=5, n_pool=count, n_eval=0).train
    texts = [report.text for report in reports]
    return [f"{texts[i % len(texts)]} #{i}" for i in range(count)]  # distinct, as a line's reports are


def _seed(site: Any, texts: list[str], audit_entries: int, egress_entries: int) -> None:
    """What months of a site leave behind, written straight into its store before the agent starts."""
    from edge_agent.store import InputRecord, PredictionRecord, SiteStore

    rng = np.random.default_rng(0)
    with SiteStore(site.store_file) as store:
        production = store.slots().production
        assert production is not None
        for start in range(0, len(texts), 100):
            chunk = texts[start : start + 100]
            inputs = [InputRecord("text", text.encode(), {"line": "L1"}, "integration") for text in chunk]
            answers = [
                [PredictionRecord(production.model_id, "production", "scratch", 0.6, m, 5.0, "cpu", True)]
                for m in rng.uniform(0.0, 1.0, len(chunk))
            ]
            store.record_served(inputs, answers)
        for i in range(audit_entries):
            store.append_audit("bench_event", "system", {"i": i, "note": "seeded by the benchmark"})
        for i in range(egress_entries):
            store.append_egress(
                destination="superlink:9092", kind="fit_result", payload_bytes=1000 + i,
                content_sha256=f"{i:064x}", round=i, details={"run": "1"},
            )  # fmt: skip


# ------------------------------------------------------------------ measuring


async def _measure(site: Any, texts: list[str], rounds: int) -> dict[str, Any]:
    host, port = address(site)
    predictor = Connection(host, port, site.read_token("integration"))
    poller = Connection(host, port, site.read_token("supervisor"))
    await predictor.open()
    await poller.open()
    for text in texts[:WARM_UP]:  # sessions, caches, the agent's first upkeep (drift, KPIs)
        await predictor.predict(text)
    for path in POLLED:
        await poller.get(path)
    alone: list[float] = []
    polled: list[float] = []
    paced: list[float] = []
    per_round: dict[str, list[float]] = {"alone_p99": [], "with_polling_p99": [], "paced_p99": []}
    polls: dict[str, list[float]] = {path: [] for path in POLLED}
    for _ in range(rounds):
        timings = [await predictor.predict(text) for text in texts]
        alone += timings
        per_round["alone_p99"].append(_p99(timings))
        for every_s, into, key in ((0.0, polled, "with_polling_p99"), (PACE_S, paced, "paced_p99")):
            stop = asyncio.Event()
            polling = asyncio.create_task(_poll(poller, stop, every_s))
            timings = [await predictor.predict(text) for text in texts]
            stop.set()
            for path, took in (await polling).items():
                polls[path] += took if every_s == 0.0 else []
            into += timings
            per_round[key].append(_p99(timings))
    return {
        "alone": alone,
        "with_polling": polled,
        "paced": paced,
        "per_round": per_round,
        "polls_answered": sum(len(took) for took in polls.values()),
        "poll_p50_ms": {path: round(statistics.median(took), 1) for path, took in polls.items() if took},
    }


async def _poll(poller: Connection, stop: asyncio.Event, every_s: float) -> dict[str, list[float]]:
    """Every endpoint in turn until stopped, back to back (``every_s`` 0) or a round of them every
    ``every_s`` seconds; how long each answer took."""
    took: dict[str, list[float]] = {path: [] for path in POLLED}
    await poller.open()  # a fresh connection: the agent closes one left idle for 5 s
    while not stop.is_set():
        started = time.perf_counter()
        for path in POLLED:
            start = time.perf_counter()
            await poller.get(path)
            took[path].append((time.perf_counter() - start) * 1000.0)
            if stop.is_set():
                break
        if every_s > 0.0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), max(0.0, every_s - (time.perf_counter() - started)))
    return took


def _run(coroutine: Any) -> Any:
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coroutine)
    return uvloop.run(coroutine)


class Connection:
    """One HTTP/1.1 keep-alive connection over asyncio streams: a client that stays out of the way."""

    def __init__(self, host: str, port: int, token: str) -> None:
        self.host, self.port, self.token = host, port, token
        self.streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def open(self) -> None:
        self.streams = await asyncio.open_connection(self.host, self.port)

    async def predict(self, text: str) -> float:
        start = time.perf_counter()
        await self._request("POST", "/v1/predict", json.dumps({"text": text}).encode())
        return (time.perf_counter() - start) * 1000.0

    async def get(self, path: str) -> None:
        await self._request("GET", path, b"")

    async def post(self, path: str, document: dict[str, Any]) -> Any:
        """The answer's JSON."""
        return json.loads(await self._request("POST", path, json.dumps(document).encode()))

    async def _request(self, method: str, path: str, body: bytes) -> bytes:
        from agent_api import exchange

        assert self.streams is not None
        return await exchange(self.streams, self.host, self.token, method, path, body)


if __name__ == "__main__":
    sys.exit(main())
