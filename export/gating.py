"""What every variant is judged on (prepared once) and how one variant is measured against torch."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from export import quantize, samples
from export.config import ExportConfig
from export.layout import ExportedGraphs
from export.validate import (
    CandidateReport,
    EvalSet,
    accuracy,
    compare_outputs,
    make_eval_set,
    median_latency_ms,
)
from genba.inputs import Example
from genba.runtime import GraphSet, RuntimeConfig
from genba.runtime.preprocess import Feeds, Preprocessor

BATCH = 32
_CALIBRATION_LIMIT = 128
_PROBE_LIMIT = 64


@dataclass(frozen=True)
class Inputs:
    labels: tuple[str, ...] | None
    eval: list[Example] | None
    calibration: list[Example] | None


@dataclass
class GateData:
    """Everything every variant is judged on, prepared once: the same arrays torch saw."""

    sample_items: list[Any]
    sample_feeds: dict[str, np.ndarray]
    torch_outputs: dict[str, np.ndarray]
    eval_set: EvalSet | None
    torch_accuracy: float | None
    calibration_feeds: list[dict[str, np.ndarray]]
    probe_feeds: list[dict[str, np.ndarray]]


def gate_data(
    config: ExportConfig, modality: str, exported: ExportedGraphs, inputs: Inputs, preprocessor: Preprocessor
) -> GateData:
    sample_items = samples.gate_samples(modality, inputs.eval, inputs.calibration, config.gates.sample_count)
    sample_feeds = preprocessor.encode(sample_items)
    eval_set = eval_set_of(inputs, preprocessor)
    calibration = samples.payloads(inputs.calibration)[:_CALIBRATION_LIMIT]
    return GateData(
        sample_items=sample_items,
        sample_feeds=sample_feeds,
        torch_outputs=exported.reference.run(sample_feeds),
        eval_set=eval_set,
        torch_accuracy=accuracy(exported.reference.run, eval_set) if eval_set else None,
        calibration_feeds=[preprocessor.encode(batch) for batch in samples.batched(calibration, 8)],
        # Layer sensitivity is ranked on calibration data first, so the eval split judges it fresh.
        probe_feeds=[
            preprocessor.encode(batch)
            for batch in samples.batched((calibration + sample_items)[:_PROBE_LIMIT], 16)
        ],
    )


def measure(
    variant: quantize.Variant, graph_set: GraphSet, data: GateData, latency_feeds: list[Feeds], runs: int
) -> CandidateReport:
    """One variant's figures: drift from torch, accuracy against torch's, median latency."""
    report = CandidateReport(
        variant.name, variant.precision, variant.path.stat().st_size, details=variant.details
    )
    report.provider = graph_set.provider
    figures = compare_outputs(graph_set.run_feeds(data.sample_feeds), data.torch_outputs)
    report.max_abs_diff, report.mean_cosine = figures["max_abs_diff"], figures["mean_cosine"]
    report.min_cosine, report.label_agreement = figures["min_cosine"], figures["label_agreement"]
    if data.eval_set is not None and data.torch_accuracy is not None:
        report.accuracy = accuracy(graph_set.run_feeds, data.eval_set)
        report.accuracy_delta_pts = round((data.torch_accuracy - report.accuracy) * 100.0, 4)
    if runs:  # 0: the caller times the variants itself (interleaved, export.speed)
        report.latency_ms_b1 = median_latency_ms(graph_set, latency_feeds, runs)
    return report


def eval_set_of(inputs: Inputs, preprocessor: Preprocessor) -> EvalSet | None:
    if not inputs.eval or not inputs.labels:
        return None
    index = {label: i for i, label in enumerate(inputs.labels)}
    batches = [preprocessor.encode(b) for b in samples.batched(samples.payloads(inputs.eval), BATCH)]
    return make_eval_set(batches, [index[e.label] for e in inputs.eval if e.label is not None])


def graph_set(
    path: Path, head_bytes: bytes | None, layout: str, runtime: RuntimeConfig, probe: Feeds | None = None
) -> GraphSet:
    """Sessions for one variant; with ``probe``, a CUDA one also measures its placement."""
    if layout == "single":
        return GraphSet({"model": path.read_bytes()}, runtime, probe=probe)
    graph_bytes = {"backbone": path.read_bytes()}
    if head_bytes is not None:
        graph_bytes["head"] = head_bytes
    return GraphSet(graph_bytes, runtime, probe=probe)
