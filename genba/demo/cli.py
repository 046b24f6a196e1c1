"""``genba demo``: build the embedded default classifier into a signed bundle and report it."""

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


def run(args: argparse.Namespace) -> int:
    from genba.demo.default_bundle import run_demo

    return run_demo(args.out, seed=args.seed)
