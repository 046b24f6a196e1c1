"""``genba demo`` (the embedded default classifier, built and reported) and ``genba simulate``."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "demo", help="run the main job on the embedded defaults (builds the default bundle)"
    )
    parser.add_argument(
        "--out", type=Path, default=Path("demo-out"), help="output folder (default: demo-out)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.set_defaults(handler=run)
    simulate = subparsers.add_parser(
        "simulate",
        help="IT: rehearse a federated run with many simulated sites on this machine (no network)",
        description="Flower's simulation engine: the kit's ServerApp and ClientApp, one simulated "
        "site folder per virtual SuperNode, labelled from the synthetic shop-floor generator.",
    )
    simulate.add_argument("--bundle", type=Path, required=True, help="the signed bundle the sites serve")
    simulate.add_argument("--trust", type=Path, required=True, help="the public key that signed it")
    simulate.add_argument("--out", type=Path, required=True, help="a new folder for the sites and results")
    simulate.add_argument("--sites", type=int, default=10)
    simulate.add_argument("--rounds", type=int, default=2)
    simulate.add_argument("--labels-per-class", type=int, default=3)
    simulate.add_argument("--min-sites", type=int, default=3)
    simulate.set_defaults(handler=run_simulation)


def run(args: argparse.Namespace) -> int:
    from genba.demo.default_bundle import run_demo

    return run_demo(args.out, seed=args.seed)


def run_simulation(args: argparse.Namespace) -> int:
    import json

    from genba.demo.simulation import SimulationConfig, simulate

    config = SimulationConfig(
        bundle=args.bundle, trust=args.trust, out=args.out, sites=args.sites, rounds=args.rounds,
        labels_per_class=args.labels_per_class, min_sites=args.min_sites,
    )  # fmt: skip
    print(json.dumps(simulate(config), indent=2, sort_keys=True, default=str))
    return 0
