"""export → variants → gates → signed bundle.

Everything that can be wrong with the user's input is checked before the
model is loaded; the bundle is staged beside ``out`` and renamed into place
only after every gate passed, so a failure leaves nothing behind.
"""

from __future__ import annotations

import datetime as dt
import logging
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from export import graphs, quantize, samples
from export.config import ExportConfig
from export.graphs import HeadWeights
from export.layout import ExportedGraphs, export_graphs
from export.manifest import lineage, reference_statistics, runtime_versions, timestamp
from export.onnx_export import save_image_preprocessing, save_text_preprocessing
from export.sources import ModelSource, inspect_model_dir
from export.validate import (
    CandidateReport,
    EvalSet,
    accuracy,
    apply_gates,
    compare_outputs,
    make_eval_set,
    median_latency_ms,
)
from genba import keys
from genba.bundle import BundleWriter
from genba.errors import GateFailedError, UsageError
from genba.inputs import Example, read_jsonl
from genba.runtime import GraphSet, RuntimeConfig
from genba.runtime.preprocess import Feeds, Preprocessor, preprocessor_for
from genba.runtime.sessions import CUDA, active_provider, create_session, cuda_possible

log = logging.getLogger(__name__)
Progress = Callable[[str], None]
_BATCH = 32
_CALIBRATION_LIMIT = 128
_PROBE_LIMIT = 64


@dataclass(frozen=True)
class ExportResult:
    bundle: Path
    manifest: dict[str, Any]

    @property
    def report(self) -> dict[str, Any]:
        return dict(self.manifest["validation"])


@dataclass(frozen=True)
class Inputs:
    labels: tuple[str, ...] | None
    eval: list[Example] | None
    calibration: list[Example] | None


@dataclass(frozen=True)
class Examples:
    """Eval and calibration inputs handed over in memory, checked like the files would be."""

    eval: list[Example] | None = None
    calibration: list[Example] | None = None

    def checked(self, modality: str, labels: tuple[str, ...] | None) -> Inputs:
        samples.check_modality(self.eval, modality, "eval", None)
        samples.check_modality(self.calibration, modality, "calibration", None)
        if self.eval and labels:
            samples.check_labels(self.eval, labels, None)
        return Inputs(labels=labels, eval=self.eval or None, calibration=self.calibration or None)


Amend = Callable[[dict[str, Any]], dict[str, Any]]


def export_model(
    config: ExportConfig,
    head: HeadWeights | None = None,
    progress: Progress | None = None,
    now: dt.datetime | None = None,
    *,
    examples: Examples | None = None,
    amend: Amend | None = None,
) -> ExportResult:
    """Export a model directory; raises a GenbaError (and leaves no bundle) on any failure.

    ``examples`` gives the eval and calibration inputs in memory instead of ``config.eval`` and
    ``config.calibration`` files (a site re-exporting its own model never writes its data to a
    file); ``amend`` edits the manifest (lineage, model identity) before it is signed.
    """
    if config.model_dir is None:
        raise UsageError("no model directory given")
    source = inspect_model_dir(config.model_dir, config.task)
    labels = _resolve_labels(config, source, head)
    inputs = (
        read_inputs(config, source.modality, labels)
        if examples is None
        else examples.checked(source.modality, labels)
    )

    def make_graphs(work: Path) -> ExportedGraphs:
        return export_graphs(source, config.task, work, config.opset, head)

    def make_preprocessing(root: Path, input_names: tuple[str, ...]) -> dict[str, Any]:
        return _save_preprocessing(source, root, config, input_names)

    return build_bundle(config, source, inputs, make_graphs, make_preprocessing, progress, now, amend)


def build_bundle(
    config: ExportConfig,
    source: ModelSource,
    inputs: Inputs,
    make_graphs: Callable[[Path], ExportedGraphs],
    make_preprocessing: Callable[[Path, tuple[str, ...]], dict[str, Any]],
    progress: Progress | None = None,
    now: dt.datetime | None = None,
    amend: Amend | None = None,
) -> ExportResult:
    """The shared back half: graphs → variants → gates → staged, signed, renamed bundle."""
    say = progress or (lambda message: log.info(message))
    signing_key = keys.load_private_key(config.signing_key) if config.signing_key else None
    with BundleWriter(config.out) as writer, tempfile.TemporaryDirectory(prefix="genba-export-") as work:
        say(f"exporting {source.model_type} ({source.library}) to ONNX")
        exported = make_graphs(Path(work))
        spec = make_preprocessing(writer.root, exported.input_names)
        preprocessor = preprocessor_for(writer.root, spec)
        runtime = RuntimeConfig(provider="auto", intra_op_threads=config.threads)
        head_bytes = _head_bytes(exported.head, config.opset)
        candidates = _evaluate_candidates(
            config, source, exported, inputs, preprocessor, runtime, head_bytes, Path(work), say
        )
        chosen = _choose(candidates.reports, config)
        chosen_path = candidates.paths[chosen.name]
        graph_table = _install_graphs(writer.root, exported, chosen, chosen_path, head_bytes)
        stats_outputs = _run_chosen(chosen_path, head_bytes, exported.layout, candidates.stats_feeds, runtime)
        manifest = {
            "model": {"name": config.model_name, "version": config.version, "created_at": timestamp(now)},
            "task": config.task,
            "labels": list(inputs.labels) if inputs.labels else None,
            "input": spec,
            "graphs": graph_table,
            "precision": {"backbone": chosen.precision, "variant": chosen.name, "details": chosen.details},
            "opset": config.opset,
            "runtime": runtime_versions(),
            "validation": candidates.summary(chosen),
            "reference_stats": reference_statistics(stats_outputs, inputs.labels, candidates.stats_source),
            "lineage": lineage(
                {
                    "model_type": source.model_type,
                    "library": source.library,
                    "architectures": list(source.architectures),
                }
            ),
        }
        if amend is not None:
            manifest = amend(manifest)
        path = writer.commit(manifest, signing_key)
        written = writer.manifest
    assert written is not None
    return ExportResult(bundle=path, manifest=written)


def read_inputs(config: ExportConfig, modality: str, labels: tuple[str, ...] | None) -> Inputs:
    """Read and check the eval and calibration files before any heavy work starts."""
    eval_examples = read_jsonl(config.eval, "eval", require_labels=True) if config.eval else None
    calibration = read_jsonl(config.calibration, "calibration") if config.calibration else None
    samples.check_modality(eval_examples, modality, "eval", config.eval)
    samples.check_modality(calibration, modality, "calibration", config.calibration)
    if eval_examples and labels:
        samples.check_labels(eval_examples, labels, config.eval)
    return Inputs(labels=labels, eval=eval_examples, calibration=calibration)


def _resolve_labels(
    config: ExportConfig, source: ModelSource, head: HeadWeights | None
) -> tuple[str, ...] | None:
    if not config.is_classifier:
        return None
    outputs = head.num_labels if head is not None else len(source.config_labels or ())
    if config.labels is not None:
        if outputs and len(config.labels) != outputs:
            raise UsageError(
                f"label count mismatch: the model has {outputs} outputs "
                f"but --labels gives {len(config.labels)}"
            )
        return config.labels
    if head is None and source.config_labels and source.has_classifier_for(config.task):
        return source.config_labels
    raise UsageError("this model has no label names; pass --labels a,b,c (one per output)")


def _save_preprocessing(
    source: ModelSource, root: Path, config: ExportConfig, input_names: tuple[str, ...]
) -> dict[str, Any]:
    folder = root / "preprocess"
    if source.modality == "text":
        spec = save_text_preprocessing(source.path, folder)
        spec["max_length"] = config.max_length
    else:
        spec = save_image_preprocessing(source.path, folder)
    spec["graph_inputs"] = list(input_names)
    return spec


def _head_bytes(head: HeadWeights | None, opset: int) -> bytes | None:
    return graphs.head_graph(head, opset).SerializeToString() if head is not None else None


@dataclass
class _Candidates:
    reports: list[CandidateReport]
    paths: dict[str, Path]
    skipped: list[quantize.Skipped]
    torch_accuracy: float | None
    sample_count: int
    eval_count: int
    stats_feeds: list[dict[str, np.ndarray]]
    stats_source: str

    def summary(self, chosen: CandidateReport) -> dict[str, Any]:
        return {
            "chosen": chosen.name,
            "torch_accuracy": self.torch_accuracy,
            "sample_count": self.sample_count,
            "eval_count": self.eval_count,
            "candidates": [r.to_json() for r in self.reports],
            "skipped": [{"name": s.name, "reason": s.reason} for s in self.skipped],
        }


@dataclass
class _GateData:
    """Everything every variant is judged on, prepared once: the same arrays torch saw."""

    sample_items: list[Any]
    sample_feeds: dict[str, np.ndarray]
    torch_outputs: dict[str, np.ndarray]
    eval_set: EvalSet | None
    torch_accuracy: float | None
    calibration_feeds: list[dict[str, np.ndarray]]
    probe_feeds: list[dict[str, np.ndarray]]


def _gate_data(
    config: ExportConfig, modality: str, exported: ExportedGraphs, inputs: Inputs, preprocessor: Preprocessor
) -> _GateData:
    sample_items = samples.gate_samples(modality, inputs.eval, inputs.calibration, config.gates.sample_count)
    sample_feeds = preprocessor.encode(sample_items)
    eval_set = _eval_set(inputs, preprocessor)
    calibration = samples.payloads(inputs.calibration)[:_CALIBRATION_LIMIT]
    return _GateData(
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


def _evaluate_candidates(
    config: ExportConfig,
    source: ModelSource,
    exported: ExportedGraphs,
    inputs: Inputs,
    preprocessor: Preprocessor,
    runtime: RuntimeConfig,
    head_bytes: bytes | None,
    work: Path,
    say: Progress,
) -> _Candidates:
    data = _gate_data(config, source.modality, exported, inputs, preprocessor)
    cuda = _cuda_active(runtime, exported.main)
    names, skipped = quantize.candidate_names(
        config.precision, bool(data.calibration_feeds), cuda, config.variant
    )
    latency_feeds = [preprocessor.encode([item]) for item in data.sample_items[:8]]
    reports, paths = [], {}
    for name in names:
        say(f"building and checking the {name} variant")
        variant = quantize.build_variant(
            name,
            exported.main,
            work,
            source.model_type,
            data.calibration_feeds,
            probe=data.probe_feeds,
            max_size_ratio=config.max_int8_size_ratio,
        )
        graph_set = _graph_set(variant.path, head_bytes, exported.layout, runtime)
        report = _measure(variant, graph_set, data, latency_feeds, config.latency_runs)
        tolerance = config.gates.tolerances[variant.precision]
        reports.append(apply_gates(report, tolerance, config.gates, data.eval_set is not None))
        paths[name] = variant.path
    return _Candidates(
        reports=reports,
        paths=paths,
        skipped=skipped,
        torch_accuracy=data.torch_accuracy,
        sample_count=len(data.sample_items),
        eval_count=len(inputs.eval or ()),
        stats_feeds=_stats_feeds(data, inputs, preprocessor),
        stats_source="eval" if inputs.eval else "samples",
    )


def _measure(
    variant: quantize.Variant, graph_set: GraphSet, data: _GateData, latency_feeds: list[Feeds], runs: int
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
    report.latency_ms_b1 = median_latency_ms(graph_set, latency_feeds, runs)
    return report


def _stats_feeds(data: _GateData, inputs: Inputs, preprocessor: Preprocessor) -> list[Feeds]:
    """The validation inputs the reference statistics describe, tokenized once where possible."""
    if data.eval_set is not None:
        return data.eval_set.batches
    if inputs.eval:
        return [preprocessor.encode(b) for b in samples.batched(samples.payloads(inputs.eval), _BATCH)]
    return [data.sample_feeds]


def _eval_set(inputs: Inputs, preprocessor: Preprocessor) -> EvalSet | None:
    if not inputs.eval or not inputs.labels:
        return None
    index = {label: i for i, label in enumerate(inputs.labels)}
    batches = [preprocessor.encode(b) for b in samples.batched(samples.payloads(inputs.eval), _BATCH)]
    return make_eval_set(batches, [index[e.label] for e in inputs.eval if e.label is not None])


def _choose(reports: list[CandidateReport], config: ExportConfig) -> CandidateReport:
    passing = [r for r in reports if r.passed]
    if not passing:
        why = "; ".join(
            f"{r.name} ({', '.join(r.failures()) or 'no gate could be computed'})" for r in reports
        )
        report = {"candidates": [r.to_json() for r in reports]}
        raise GateFailedError(f"export refused: no variant passed its gates: {why}", report)
    chosen = min(passing, key=lambda r: r.latency_ms_b1 or float("inf"))
    chosen.chosen = True
    return chosen


def _install_graphs(
    root: Path, exported: ExportedGraphs, chosen: CandidateReport, path: Path, head_bytes: bytes | None
) -> dict[str, Any]:
    if exported.layout == "single":
        shutil.copyfile(path, root / "model.onnx")
        return {"model": {"file": "model.onnx", "precision": chosen.precision, "outputs": ["logits"]}}
    shutil.copyfile(path, root / "backbone.onnx")
    table: dict[str, Any] = {
        "backbone": {"file": "backbone.onnx", "precision": chosen.precision, "outputs": ["embedding"]}
    }
    if head_bytes is not None:
        (root / "head.onnx").write_bytes(head_bytes)
        table["head"] = {
            "file": "head.onnx",
            "precision": "fp32",
            "inputs": ["embedding"],
            "outputs": ["logits"],
        }
    return table


def _graph_set(path: Path, head_bytes: bytes | None, layout: str, runtime: RuntimeConfig) -> GraphSet:
    if layout == "single":
        return GraphSet({"model": path.read_bytes()}, runtime)
    graph_bytes = {"backbone": path.read_bytes()}
    if head_bytes is not None:
        graph_bytes["head"] = head_bytes
    return GraphSet(graph_bytes, runtime)


def _run_chosen(
    path: Path,
    head_bytes: bytes | None,
    layout: str,
    feeds: list[dict[str, np.ndarray]],
    runtime: RuntimeConfig,
) -> dict[str, np.ndarray]:
    graph_set = _graph_set(path, head_bytes, layout, runtime)
    outputs = [graph_set.run_feeds(batch) for batch in feeds]
    return {key: np.concatenate([o[key] for o in outputs]) for key in outputs[0]}


def _cuda_active(runtime: RuntimeConfig, graph: Path) -> bool:
    """Whether the provider policy lands on CUDA here (fp16 is only a candidate then).

    Loading a session to find out is only worth it where a GPU can exist at all.
    """
    if not cuda_possible(runtime):
        return False
    return active_provider(create_session(graph, runtime)) == CUDA
