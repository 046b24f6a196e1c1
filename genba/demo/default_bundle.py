"""Build the embedded default classifier into a signed bundle and print its validation report.

This is ``make demo`` until the end-to-end demo exists: everything it makes
lives under the output folder, and running it again rebuilds from scratch.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any


def run_demo(out: Path, seed: int = 0) -> int:
    from export.default_model import (
        DEFAULT_MODEL_NAME,
        export_default_bundle,
        train_default_head,
        write_default_data,
    )

    steps: dict[str, float] = {}
    out.mkdir(parents=True, exist_ok=True)
    key = _signing_key(out / "keys" / "it-sign.pem")
    clock = time.perf_counter()
    data = write_default_data(out / "data", seed=seed)
    _say("training the default head on the central split")
    head = train_default_head(seed=seed)
    steps["train_head_s"] = time.perf_counter() - clock
    bundle = out / "bundles" / f"{DEFAULT_MODEL_NAME}-v1"
    if bundle.exists():
        shutil.rmtree(bundle)  # the demo is re-runnable: rebuild rather than refuse
    clock = time.perf_counter()
    result = export_default_bundle(bundle, data, head, signing_key=key, progress=_say)
    steps["export_s"] = time.perf_counter() - clock
    print(json.dumps(_report(result.bundle, result.manifest, key, data.generator_version, steps), indent=2))
    return 0


def _signing_key(path: Path) -> Path:
    from genba import keys

    if not path.exists():
        keys.write_key_pair(keys.generate_signing_key(), path)
    return path


def _report(
    bundle: Path, manifest: dict[str, Any], key: Path, generator: str, steps: dict[str, float]
) -> dict[str, Any]:
    from genba.commands import summarize

    validation = manifest["validation"]
    return {
        "bundle": str(bundle),
        "trust_key": str(key.with_name(key.name + ".pub")),
        "generator_version": generator,
        "summary": summarize(manifest),
        "candidates": [
            {
                k: c[k]
                for k in (
                    "name",
                    "passed",
                    "chosen",
                    "latency_ms_b1",
                    "file_bytes",
                    "mean_cosine",
                    "accuracy",
                    "accuracy_delta_pts",
                    "gates",
                )
            }
            for c in validation["candidates"]
        ],
        "skipped": validation["skipped"],
        "steps_s": {k: round(v, 1) for k, v in steps.items()},
    }


def _say(message: str) -> None:
    print(f"… {message}", file=sys.stderr, flush=True)
