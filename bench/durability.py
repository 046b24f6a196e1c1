"""Benchmark: what flushing every acknowledged write to the disk costs the line (``[store] durability``).

Two real agents (``genba agent serve``, the real API on loopback) serve the same bundle from two
sites that differ only in ``[store] durability``: ``power_cut`` (the default: the store's WAL is
flushed with ``fdatasync`` before a prediction or label is answered) and ``process_kill`` (flushed
at checkpoints only). Rounds alternate between them so both see the same machine:

* one client sending one report at a time (``predict_p50_ms``/``predict_p99_ms``);
* an operator labelling one input at a time (``label_p50_ms``);
* ``clients`` clients at once for a few seconds (``predictions_per_s``: micro-batches share one flush).

``power_cut_over_process_kill`` holds the ratios. The flush's cost is the disk's: an SSD's is a
fraction of a millisecond, an SD card's or a network disk's can be tens.

    .venv/bin/python bench/durability.py [--requests 400] [--rounds 3] [--bundle DIR --trust KEY.pub]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from bench_site import add_bundle_arguments, address, bundle_and_trust, serving_site, start_agent

MODES = ("power_cut", "process_kill")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=400, help="predictions and labels per mode and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=5.0, help="of concurrent load per mode and round")
    add_bundle_arguments(parser)
    parser.add_argument("--out", type=Path, default=Path("bench-out/durability"))
    args = parser.parse_args()
    bundle, trust = bundle_and_trust(parser, args)
    sites = {mode: _site(args.out / mode, bundle, trust, mode) for mode in MODES}
    agents = {mode: start_agent(site, args.out / f"{mode}.log") for mode, site in sites.items()}
    try:
        figures = asyncio.run(_measure(sites, args))
    finally:
        for agent in agents.values():
            agent.terminate()
            agent.wait(timeout=30)
    document = {mode: _summary(figures[mode]) for mode in MODES}
    slow, fast = document["power_cut"], document["process_kill"]
    print(json.dumps({
        **document,
        "power_cut_over_process_kill": {
            "predict_p50": round(slow["predict_p50_ms"] / fast["predict_p50_ms"], 3),
            "predict_p99": round(slow["predict_p99_ms"] / fast["predict_p99_ms"], 3),
            "label_p50": round(slow["label_p50_ms"] / fast["label_p50_ms"], 3),
            "predictions_per_s": round(slow["predictions_per_s"] / fast["predictions_per_s"], 3),
        },
        "details": {"requests_per_mode": args.requests * args.rounds, "rounds": args.rounds,
                    "clients": args.clients, "bundle": str(bundle)},
    }, indent=2))  # fmt: skip
    return 0


def _summary(figures: dict[str, list[float]]) -> dict[str, float]:
    return {
        "predict_p50_ms": round(statistics.median(figures["predict"]), 3),
        "predict_p99_ms": round(float(np.percentile(figures["predict"], 99)), 3),
        "label_p50_ms": round(statistics.median(figures["label"]), 3),
        "predictions_per_s": round(statistics.median(figures["throughput"]), 1),
    }


async def _measure(sites: dict[str, Any], args: argparse.Namespace) -> dict[str, dict[str, list[float]]]:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from serving_under_polling import Connection, _texts

    texts = _texts(args.requests * (args.rounds + 1))
    figures: dict[str, dict[str, list[float]]] = {
        m: {"predict": [], "label": [], "throughput": []} for m in MODES
    }
    for round_ in range(args.rounds + 1):  # the first round warms up and is not counted
        chunk = texts[round_ * args.requests : (round_ + 1) * args.requests]
        for mode in MODES:
            host, port = address(sites[mode])
            client = Connection(host, port, sites[mode].read_token("operator"))
            await client.open()
            predicted, labelled = [], []
            for text in chunk:
                start = time.perf_counter()
                answer = await client.post("/v1/predict", {"text": text})
                predicted.append((time.perf_counter() - start) * 1000.0)
                start = time.perf_counter()
                await client.post("/v1/labels", {"input_id": answer["input_id"], "label": answer["label"]})
                labelled.append((time.perf_counter() - start) * 1000.0)
            rate = await _concurrent(host, port, sites[mode].read_token("integration"), chunk, args)
            if round_ > 0:
                figures[mode]["predict"] += predicted
                figures[mode]["label"] += labelled
                figures[mode]["throughput"].append(rate)
    return figures


async def _concurrent(host: str, port: int, token: str, texts: list[str], args: argparse.Namespace) -> float:
    from serving_under_polling import Connection

    deadline = time.perf_counter() + args.seconds
    done = [0] * args.clients

    async def worker(index: int) -> None:
        client = Connection(host, port, token)
        await client.open()
        position = index
        while time.perf_counter() < deadline:
            await client.predict(texts[position % len(texts)] + f" ~{index}")
            position += args.clients
            done[index] += 1

    started = time.perf_counter()
    await asyncio.gather(*(worker(i) for i in range(args.clients)))
    return sum(done) / (time.perf_counter() - started)


def _site(root: Path, bundle: Path, trust: Path, durability: str) -> Any:
    name = f"durability-{durability.replace('_', '-')}"
    return serving_site(root, bundle, trust, name, store={"durability": durability, "audit_share": 0.0})


if __name__ == "__main__":
    sys.exit(main())
