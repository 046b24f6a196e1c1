"""Benchmark: what a supervisor waits for, a whole site training job per mode, through the agent's API.

A site serving the default MiniLM bundle (``genba agent serve``, CPU) gets N training labels per
class from site-a's synthetic reports (predicted, then labelled through the API; the agent puts
the held-out share aside by content, so more are labelled until every class has N for training).
Then, for each mode in turn, ``POST /v1/train`` starts the job and the benchmark polls
``GET /v1/train`` until it ends: the job's own start and finish times give

* ``job_s``: the whole job, as the supervisor waits for it: the training process starts (imports),
  reads the labels, embeds what the cache lacks, trains, re-exports when the mode does, signs, and
  the agent installs the candidate in shadow;
* ``train_s``: the training process's own figure for everything after its imports
  (``report.seconds``); ``job_s - train_s``: starting the process and installing.

Modes run in the order given, ``--repeats`` times over (each mode's candidate replaces the last in
shadow; production stays IT's bundle); per mode ``job_s_median`` and ``train_s_median`` are the
medians of its runs, ``runs`` every run's figures. The first ``head`` job finds the embedding cache
cold (``embedded_new``). Prints one JSON document.

    .venv/bin/python bench/training_job.py [--per-class 20] [--modes head last-k contrastive auto]
                                           [--repeats 1]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from bench_site import add_bundle_arguments, bundle_and_trust, serving_site, start_agent

from genba import env as _env  # noqa: F401  (telemetry off before anything heavy loads)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    add_bundle_arguments(parser)
    parser.add_argument("--per-class", type=int, default=20)
    parser.add_argument("--modes", nargs="+", default=["head", "last-k", "contrastive", "auto"])
    parser.add_argument("--repeats", type=int, default=1, help="runs of every mode, in turn")
    parser.add_argument("--out", type=Path, default=Path("bench-out/training_job"))
    args = parser.parse_args()
    if args.repeats < 1:
        parser.error("--repeats must be 1 or more")
    bundle, trust = bundle_and_trust(parser, args)
    site = serving_site(args.out / "site-a", bundle, trust, "site-a", gates={"auto_advance": False})
    agent = start_agent(site, args.out / "agent.log")
    try:
        from edge_agent.service.client import AgentClient

        with AgentClient.for_site(site.root, "supervisor") as client:
            labels = _label(client, args.per_class)
            runs: dict[str, list[dict[str, Any]]] = {mode: [] for mode in args.modes}
            for _ in range(args.repeats):
                for mode in args.modes:
                    runs[mode].append(_job(client, mode))
            jobs = {mode: _medians(mode_runs) for mode, mode_runs in runs.items()}
    finally:
        agent.terminate()
        agent.wait(timeout=60)
    print(json.dumps({"training_labels": labels, "per_class": args.per_class, "jobs": jobs}, indent=2))
    return 0


def _label(client: Any, per_class: int) -> dict[str, int]:
    """Training labels per class, N each: site-a's pool predicted and labelled until every class has N."""
    from export.datasets import LABELS, site_split

    counts = dict.fromkeys(LABELS, 0)
    for report in site_split("site-a", seed=0, n_pool=900).train:
        if counts[report.label] >= per_class:
            continue
        given = client.label(client.predict(report.text).input_id, report.label)
        counts[report.label] += given.split == "train"
        if min(counts.values()) >= per_class:
            break
    return counts


def _medians(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """A mode's runs with the medians of the whole job and of the training process's own work."""
    done = [run for run in runs if run["state"] == "succeeded"]
    medians = {
        "job_s_median": round(statistics.median(run["job_s"] for run in done), 2) if done else None,
        "train_s_median": round(statistics.median(run["train_s"] for run in done), 2) if done else None,
    }
    return {**medians, "succeeded": len(done), "runs": runs}


def _job(client: Any, mode: str) -> dict[str, Any]:
    print(f"… {mode}", file=sys.stderr)
    client.train(mode)
    while (job := client.training()).state == "running":
        time.sleep(0.2)
    figures: dict[str, Any] = {"state": job.state, "job_s": round(job.finished_at - job.started_at, 2)}
    if job.state != "succeeded":
        return {**figures, "message": job.message}
    report = job.result["training"]["report"]
    figures.update({"trained_mode": report["mode"], "train_s": report["seconds"],
                    "version": job.result["installed"]["version_label"]})  # fmt: skip
    for key in ("embedded_new", "embedded_cached", "embed_seconds"):
        if key in report:
            figures[key] = report[key]
    if "auto" in report:
        figures["auto"] = {k: report["auto"][k] for k in ("chosen", "why", "seconds")}
    return figures


if __name__ == "__main__":
    sys.exit(main())
