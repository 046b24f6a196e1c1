"""Fuzz every reader with a large budget: bundles, archives, backups, manifests, agent.toml, JSONL, pictures.

Runs each target of tests/fuzz (the same strategies and checks ``make test`` runs with a small
budget) with ``--examples`` inputs, counts the inputs tried and the crashes (an untyped exception,
a message of more than one line, a hang, a stray or half-written file), and prints one JSON object:

    .venv/bin/python bench/fuzz.py --examples 2000 [--target manifest ...]

    {"fuzz_inputs": {"manifest": 2000, ...}, "fuzz_crashes": {"manifest": 0, ...}, "seconds": ...}

Each crash's kind (exception and place) goes to stderr. ``run(examples)`` returns the same
object, for ``make reliability``. Runs are derandomized: the same budget tries the same inputs.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any

from genba import env as _env  # noqa: F401  (telemetry off before onnxruntime loads)

ROOT = Path(__file__).resolve().parents[1]
FUZZ_DIR = ROOT / "tests" / "fuzz"
TARGETS = (
    "bundle_directory", "bundle_archive", "archive_extract", "backup_restore",
    "manifest", "agent_toml", "jsonl_inputs", "image_decode",
)  # fmt: skip


def _load(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _target(name: str) -> Any:
    _load(FUZZ_DIR / "conftest.py", "genba_fuzz_conftest")  # registers the harness and samples
    return _load(FUZZ_DIR / f"test_{name}.py", f"genba_fuzz_{name}").TARGET


def run(examples: int, targets: tuple[str, ...] = TARGETS) -> dict[str, Any]:
    """Fuzz ``targets`` with ``examples`` inputs each; the JSON summary as a dict."""
    started = time.perf_counter()
    inputs: dict[str, int] = {}
    crashes: dict[str, int] = {}
    for name in targets:
        target = _target(name)
        fuzzing = sys.modules["genba_fuzzing"]
        result = fuzzing.run_target(target, examples)
        inputs[name], crashes[name] = result.inputs, result.crashes
        print(
            f"{name}: {result.inputs} inputs; calls {result.accepted} accepted, {result.refused} refused",
            file=sys.stderr,
        )
        for kind, count in sorted(result.kinds.items()):
            print(f"{name}: {count} crash(es): {kind}", file=sys.stderr)
            if os.environ.get("GENBA_FUZZ_VERBOSE"):
                print(f"    first: {result.first[kind]}", file=sys.stderr)
    return {
        "fuzz_inputs": inputs,
        "fuzz_crashes": crashes,
        "seconds": round(time.perf_counter() - started, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=2000, help="inputs per target")
    parser.add_argument("--target", action="append", choices=TARGETS, help="only these targets")
    args = parser.parse_args(argv)
    print(json.dumps(run(args.examples, tuple(args.target or TARGETS))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
