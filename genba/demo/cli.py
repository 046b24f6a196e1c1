"""``genba demo`` (the whole story on one machine) and ``genba simulate`` (many simulated sites)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="the whole story on this machine: export, 3 sites, labels, SecAgg+ federation, rollout, report",
    )
    parser.add_argument(
        "--out", type=Path, default=Path("demo-out"), help="output folder (default: demo-out)"
    )
    parser.add_argument("--sites", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--labels-per-class", type=int, default=20, help="operator labels per class and site")
    parser.add_argument("--stream-items", type=int, default=400, help="reports each site serves first")
    parser.add_argument("--rollout-items", type=int, default=600, help="most reports served during rollout")
    parser.add_argument("--eval-items", type=int, default=300, help="evaluation reports per site")
    parser.add_argument("--dp-noise", type=float, default=0.0, help="site-level DP noise multiplier (0: off)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--gui", action="store_true", help="open the operator app on the first site at the end"
    )
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
    from genba.demo.story import DemoConfig
    from genba.demo.story import run as play

    config = DemoConfig(
        out=args.out, sites=args.sites, rounds=args.rounds, labels_per_class=args.labels_per_class,
        stream_items=args.stream_items, rollout_items=args.rollout_items, eval_items=args.eval_items,
        dp_noise=args.dp_noise, seed=args.seed, gui=args.gui,
    )  # fmt: skip
    play(config)
    return 0


def run_simulation(args: argparse.Namespace) -> int:
    import json

    from genba.demo.simulation import SimulationConfig, simulate

    config = SimulationConfig(
        bundle=args.bundle, trust=args.trust, out=args.out, sites=args.sites, rounds=args.rounds,
        labels_per_class=args.labels_per_class, min_sites=args.min_sites,
    )  # fmt: skip
    print(json.dumps(simulate(config), indent=2, sort_keys=True, default=str))
    return 0
