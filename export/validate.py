"""Gates: each variant is run through genba.runtime and compared with torch.

Outputs on the sample inputs must stay within the precision's tolerance, and
with labelled ``--eval`` data the task accuracy may drop at most the configured
number of points below torch. A variant that fails a gate is never chosen.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from export.config import GateConfig, Tolerance
from genba.runtime import GraphSet
from genba.runtime.preprocess import Feeds

_EVAL_BATCH = 32


@dataclass
class EvalSet:
    """Labelled evaluation data, preprocessed once: feeds in batches plus label indices."""

    batches: list[Feeds]
    labels: np.ndarray


@dataclass
class CandidateReport:
    name: str
    precision: str
    file_bytes: int
    provider: str = ""
    latency_ms_b1: float | None = None
    max_abs_diff: float | None = None
    mean_cosine: float | None = None
    min_cosine: float | None = None
    label_agreement: float | None = None
    accuracy: float | None = None
    accuracy_delta_pts: float | None = None
    details: dict[str, Any] = field(default_factory=dict)
    gates: dict[str, dict[str, Any]] = field(default_factory=dict)
    passed: bool = False
    chosen: bool = False

    def failures(self) -> list[str]:
        return [
            f"{name}: {gate['value']} vs limit {gate['limit']}"
            for name, gate in self.gates.items()
            if not gate["passed"]
        ]

    def to_json(self) -> dict[str, Any]:
        return {k: _rounded(v) for k, v in asdict(self).items()}


def compare_outputs(
    ours: Mapping[str, np.ndarray], reference: Mapping[str, np.ndarray]
) -> dict[str, float | None]:
    """Largest absolute difference over embedding and logits, and embedding cosines."""
    diffs = [
        float(np.max(np.abs(ours[k] - reference[k])))
        for k in ("embedding", "logits")
        if k in ours and k in reference
    ]
    figures: dict[str, float | None] = {"max_abs_diff": max(diffs) if diffs else None}
    # Single-graph bundles expose only logits; their direction is what is compared then.
    direction = next((k for k in ("embedding", "logits") if k in ours and k in reference), None)
    if direction is not None:
        cosines = row_cosines(ours[direction], reference[direction])
        figures.update(mean_cosine=float(cosines.mean()), min_cosine=float(cosines.min()))
    else:
        figures.update(mean_cosine=None, min_cosine=None)
    if "logits" in ours and "logits" in reference:
        agree = np.argmax(ours["logits"], axis=-1) == np.argmax(reference["logits"], axis=-1)
        figures["label_agreement"] = float(agree.mean())
    else:
        figures["label_agreement"] = None
    return figures


def accuracy(run: Any, eval_set: EvalSet) -> float:
    """Share of eval examples whose argmax logit is the label; ``run(feeds)`` gives outputs."""
    predictions = np.concatenate([np.argmax(run(batch)["logits"], axis=-1) for batch in eval_set.batches])
    return float((predictions == eval_set.labels).mean())


def median_latency_ms(graphs: GraphSet, single_inputs: Sequence[Feeds], runs: int) -> float:
    """Median single-input latency over typical inputs, after warm-up (the first runs build kernels)."""
    for feeds in single_inputs[:3]:
        graphs.run_feeds(feeds)
    timings = []
    for run in range(runs):
        feeds = single_inputs[run % len(single_inputs)]
        start = time.perf_counter()
        graphs.run_feeds(feeds)
        timings.append((time.perf_counter() - start) * 1000.0)
    return statistics.median(timings)


def apply_gates(
    report: CandidateReport, tolerance: Tolerance, gates: GateConfig, has_eval: bool
) -> CandidateReport:
    """Record every gate's value, limit and verdict; the candidate passes only if all pass."""
    checks: dict[str, dict[str, Any]] = {}
    if tolerance.max_abs_diff is not None and report.max_abs_diff is not None:
        checks["max_abs_diff"] = _gate(
            report.max_abs_diff, tolerance.max_abs_diff, report.max_abs_diff <= tolerance.max_abs_diff
        )
    if report.mean_cosine is not None:
        checks["mean_cosine"] = _gate(
            report.mean_cosine, tolerance.min_mean_cosine, report.mean_cosine >= tolerance.min_mean_cosine
        )
    if has_eval and report.accuracy_delta_pts is not None:
        limit = gates.max_accuracy_drop_pts
        checks["accuracy_drop_pts"] = _gate(
            report.accuracy_delta_pts, limit, report.accuracy_delta_pts <= limit
        )
    report.gates = checks
    report.passed = bool(checks) and all(check["passed"] for check in checks.values())
    return report


def make_eval_set(feeds_batches: Sequence[Feeds], label_indices: Sequence[int]) -> EvalSet:
    return EvalSet(list(feeds_batches), np.asarray(label_indices, dtype=np.int64))


def _gate(value: float, limit: float, passed: bool) -> dict[str, Any]:
    return {"value": _rounded(value), "limit": limit, "passed": bool(passed)}


def row_cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a2, b2 = a.reshape(len(a), -1).astype(np.float64), b.reshape(len(b), -1).astype(np.float64)
    norms = np.linalg.norm(a2, axis=1) * np.linalg.norm(b2, axis=1)
    return np.asarray((a2 * b2).sum(axis=1) / np.maximum(norms, 1e-12))


def _rounded(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 6)
    return value
