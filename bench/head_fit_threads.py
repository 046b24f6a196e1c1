"""Benchmark: a site's head fit on torch's default threads against one thread, alone and side by side.

A federated round's fit at a site (``SiteTrainer.fit``), a ``head`` training job and each of
``auto``'s head trials call ``fit_head``: cross-validated L-BFGS on a few hundred labelled
embeddings, 26 fits of thousands of small torch steps. The demo, the tests and a PC that
serves while it trains run several such processes on the same cores. This benchmark fits heads
the size of the demo's (280 labels, 384-dimensional embeddings, the default bundle's labels,
starting from a parent head) in ``--processes`` processes at once, and in one process alone,
with ``threads = 0`` (torch's default: one per core, what every head fit used before this setting) and
``threads = 1`` (the default now), all in one run. Each process fits once to warm up (torch's
first call), then ``--fits`` times; the figures are medians of the warm fits.

* ``concurrent_s``/``alone_s``: median seconds per fit, by setting.
* ``concurrent_ratio``: torch's default over one thread with ``--processes`` fitting at once;
  ``alone_ratio`` the same for one process (what one thread costs when the cores are free).

    .venv/bin/python bench/head_fit_threads.py [--processes 3] [--fits 3] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

SETTINGS = {"torch_default": 0, "one_thread": 1}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--processes", type=int, default=3, help="processes fitting at once (the demo's sites)"
    )
    parser.add_argument("--fits", type=int, default=3, help="timed fits per process, after one to warm up")
    parser.add_argument("--examples", type=int, default=280)
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--out", type=Path, help="also write the JSON here")
    args = parser.parse_args()
    if min(args.processes, args.fits, args.examples, args.dim) < 1:
        parser.error("--processes, --fits, --examples and --dim must each be 1 or more")
    from export.datasets import LABELS

    started = time.perf_counter()
    shape = (args.examples, args.dim, len(LABELS))
    result: dict[str, Any] = {"concurrent_s": {}, "alone_s": {}, "first_fit_s": {}}
    for name, threads in SETTINGS.items():
        concurrent = _fit_in_processes(args.processes, threads, args.fits, shape)
        alone = _fit_in_processes(1, threads, args.fits, shape)
        result["concurrent_s"][name] = round(
            statistics.median(t for times in concurrent for t in times[1:]), 3
        )
        result["alone_s"][name] = round(statistics.median(t for times in alone for t in times[1:]), 3)
        result["first_fit_s"][name] = round(statistics.median(times[0] for times in concurrent), 3)
    for kind in ("concurrent", "alone"):
        figures = result[f"{kind}_s"]
        result[f"{kind}_ratio"] = round(figures["torch_default"] / figures["one_thread"], 2)
    result.update(
        processes=args.processes,
        fits=args.fits,
        examples=args.examples,
        dim=args.dim,
        labels=len(LABELS),
        cpu_count=os.cpu_count(),
        seconds=round(time.perf_counter() - started, 1),
    )
    text = json.dumps(result, indent=2, sort_keys=True)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n", encoding="utf-8")


def _fit_in_processes(
    processes: int, threads: int, fits: int, shape: tuple[int, int, int]
) -> list[list[float]]:
    context = multiprocessing.get_context("spawn")
    start, results = context.Barrier(processes), context.Queue()
    workers = [
        context.Process(target=_fit_repeatedly, args=(seed, threads, fits, shape, start, results))
        for seed in range(processes)
    ]
    for worker in workers:
        worker.start()
    times = [results.get(timeout=1800) for _ in workers]
    for worker in workers:
        worker.join()
    return times


def _fit_repeatedly(
    seed: int, threads: int, fits: int, shape: tuple[int, int, int], start: Any, results: Any
) -> None:
    """Seconds of each fit (the first warms up, ``fits`` more), put on ``results``; all start together."""
    from edge_agent.training.head import HeadTrainingConfig, fit_head

    features, targets, prior = _site_like(seed, *shape)
    config = HeadTrainingConfig(threads=threads)
    start.wait()
    times = []
    for _ in range(fits + 1):
        began = time.perf_counter()
        fit_head(features, targets, shape[2], seed=0, config=config, prior=prior)
        times.append(time.perf_counter() - began)
    results.put(times)


def _site_like(seed: int, examples: int, dim: int, labels: int) -> tuple[np.ndarray, np.ndarray, Any]:
    """Unit-length embeddings around one direction a class, and a parent head that reads them."""
    from export.graphs import HeadWeights

    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(labels, dim))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    targets = np.arange(examples) % labels
    features = centres[targets] + rng.normal(scale=1.5 / np.sqrt(dim), size=(examples, dim))
    features /= np.linalg.norm(features, axis=1, keepdims=True)
    prior = HeadWeights((4 * centres).astype(np.float32), np.zeros(labels, dtype=np.float32))
    return features.astype(np.float32), targets, prior


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    main()
