"""Inputs for the gates: the user's eval/calibration data, else built-in generic samples."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from genba.errors import UsageError
from genba.inputs import Example

#: Generic shop-floor sentences, used only to compare ONNX with torch when no data is given.
BUILTIN_TEXTS: tuple[str, ...] = (
    "Scratch on the left side of the housing, about 3 mm long.",
    "Part passed visual inspection, no issues found.",
    "Dent near the mounting flange after the press step.",
    "Oil residue on the connector surface, wiped and re-checked.",
    "Bracket misaligned by roughly two millimetres against the jig.",
    "Missing screw at position 4 on the cover plate.",
    "Surface finish within spec; minor dust removed before packing.",
    "Label printed off-centre, barcode still readable.",
    "Weld seam looks uneven near the corner, please review.",
    "Gasket not seated fully on one side.",
    "No defect observed on line 2 during the night shift.",
    "Paint chip at the edge of P/N 4471-B.",
    "Foreign particle found inside the sensor window.",
    "Clip absent on the harness, sent back for rework.",
    "Hairline mark on the display glass, customer-visible.",
    "Deformation at the rim after drop test.",
)


def payloads(examples: Sequence[Example] | None) -> list[Any]:
    return [example.payload for example in examples] if examples else []


def gate_samples(
    modality: str, eval_examples: Sequence[Example] | None, calibration: Sequence[Example] | None, count: int
) -> list[Any]:
    """The inputs ONNX outputs are compared on: eval first, then calibration, then built-ins."""
    chosen = (payloads(eval_examples) + payloads(calibration))[:count]
    if chosen:
        return chosen
    if modality == "text":
        return list(BUILTIN_TEXTS[:count])
    rng = np.random.default_rng(0)
    return [rng.integers(0, 256, size=(64, 64, 3), dtype=np.uint8) for _ in range(min(count, 8))]


def check_modality(examples: Sequence[Example] | None, modality: str, role: str, path: Path | None) -> None:
    """An image model given text (or the reverse) is a usage error, said before any work."""
    for example in examples or ():
        if (modality == "text") != (example.text is not None):
            wanted = "'text'" if modality == "text" else "'image'"
            raise UsageError(f"{role} file {path}: this is a {modality} model; every line needs {wanted}")


def check_labels(examples: Sequence[Example] | None, labels: Sequence[str], path: Path | None) -> None:
    known = set(labels)
    for example in examples or ():
        if example.label not in known:
            raise UsageError(
                f"eval file {path}: label {example.label!r} is not one of the model's labels "
                f"({', '.join(labels)})"
            )


def batched(items: Sequence[Any], size: int) -> list[list[Any]]:
    return [list(items[i : i + size]) for i in range(0, len(items), size)]
