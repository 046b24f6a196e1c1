"""``python -m edge_agent.training``: train a candidate, print one JSON line; one error line otherwise."""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path

from genba import env as _env  # noqa: F401  (telemetry off, offline on: before anything heavy loads)
from genba.cli import OneLineParser
from genba.errors import GenbaError

PROG = "python -m edge_agent.training"


def build_parser() -> argparse.ArgumentParser:
    from edge_agent.training_modes import TRAINING_MODES, UNLABELLED

    parser = OneLineParser(prog=PROG, description="Train a candidate bundle from the site's training labels.")
    parser.add_argument("--data", type=Path, required=True, help="the site folder (agent.toml, store.db)")
    parser.add_argument("--mode", required=True, choices=TRAINING_MODES, help="what to train")
    parser.add_argument("--out", type=Path, required=True, help="where to write the candidate bundle")
    parser.add_argument("--seed", type=int, default=0, help="seed for the validation split and the fit")
    parser.add_argument("--unlabelled", choices=UNLABELLED, default="off", help="use unlabelled reports")
    parser.add_argument(
        "--signing-key", type=Path, default=None, help="Ed25519 PEM (default: the site's keys/site-sign.pem)"
    )
    parser.add_argument(
        "--provider",
        choices=("auto", "gpu", "cpu"),
        default=None,
        help="override the site's runtime provider",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # A stopped job (the agent shutting down) unwinds like an error: staging and scratch are removed.
    signal.signal(signal.SIGTERM, _stop)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    warnings.filterwarnings("ignore")
    try:
        from edge_agent.training.run import train_candidate

        result = train_candidate(
            args.data,
            mode=args.mode,
            out=args.out,
            signing_key=args.signing_key,
            seed=args.seed,
            provider=args.provider,
            unlabelled=args.unlabelled,
        )
    except GenbaError as error:
        print(f"{PROG}: error: {' '.join(str(error).split())}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    print(json.dumps(result, sort_keys=True, separators=(",", ":")))
    return 0


def _stop(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


if __name__ == "__main__":
    sys.exit(main())
