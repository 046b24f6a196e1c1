"""``genba export``: a thin shell over :func:`export.pipeline.export_model`."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from export.config import PRECISIONS, TASKS


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "export",
        help="pretrained model → validated, quantized, signed ONNX bundle",
        description="Export a local Hugging Face model directory to a Genba bundle, offline.",
    )
    parser.add_argument("model_dir", type=Path, metavar="MODEL_DIR")
    parser.add_argument("--task", required=True, choices=TASKS)
    parser.add_argument(
        "--out", type=Path, required=True, metavar="BUNDLE", help="bundle directory to create"
    )
    parser.add_argument("--labels", help="comma-separated label names, one per model output")
    parser.add_argument(
        "--precision", choices=PRECISIONS, default="auto", help="the cpu variant's precision (auto: measured)"
    )
    parser.add_argument(
        "--targets",
        default=None,
        metavar="LIST",
        help="backbone variants to ship, comma-separated: cpu (int8/fp32, chosen by measurement), "
        "cuda (fp16), each gated against torch; default both, leaving out a cuda variant that fails "
        "its gates (named here, a failing target fails the export)",
    )
    parser.add_argument(
        "--calibration", type=Path, metavar="FILE", help="JSONL inputs for int8 static calibration"
    )
    parser.add_argument("--eval", type=Path, metavar="FILE", help="labelled JSONL for the accuracy gate")
    parser.add_argument(
        "--signing-key", type=Path, metavar="KEY", help="Ed25519 private key that signs the bundle"
    )
    parser.add_argument("--name", help="model name in the manifest (default: the directory name)")
    parser.add_argument("--version", type=int, default=1, help="model version (a positive integer)")
    parser.add_argument("--max-length", type=int, default=128, help="token limit for text models")
    parser.add_argument(
        "--max-accuracy-drop",
        type=float,
        default=1.0,
        metavar="PTS",
        help="largest accuracy drop vs torch the gate allows, in points",
    )
    parser.add_argument("--threads", type=int, default=0, help="ONNX Runtime threads while measuring")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from export.config import ExportConfig, GateConfig
    from export.pipeline import export_model
    from genba.errors import GateFailedError

    labels = tuple(label.strip() for label in args.labels.split(",")) if args.labels else None
    config = ExportConfig(
        model_dir=args.model_dir,
        task=args.task,
        out=args.out,
        labels=labels,
        precision=args.precision,
        calibration=args.calibration,
        eval=args.eval,
        signing_key=args.signing_key,
        name=args.name,
        version=args.version,
        max_length=args.max_length,
        threads=args.threads,
        targets=_targets(args.targets),
        gates=GateConfig(max_accuracy_drop_pts=args.max_accuracy_drop),
    )
    try:
        result = export_model(config, progress=lambda message: print(f"… {message}", file=sys.stderr))
    except GateFailedError as failure:
        print(json.dumps({"bundle": None, "validation": failure.report}, indent=2))
        raise
    print(json.dumps({"bundle": str(result.bundle), "validation": result.report}, indent=2))
    return 0


def _targets(listed: str | None) -> tuple[str, ...] | None:
    return None if listed is None else tuple(target.strip() for target in listed.split(",") if target.strip())
