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
from export.cuda_target import CUDA_VARIANT, CudaVariant, build_cuda_variant
from export.gating import BATCH, GateData, Inputs, gate_data, graph_set, measure
from export.graphs import HeadWeights
from export.layout import ExportedGraphs, export_graphs
from export.manifest import lineage, reference_statistics, runtime_versions, timestamp
from export.onnx_export import save_image_preprocessing, save_text_preprocessing
from export.sources import ModelSource, inspect_model_dir
from export.speed import Choice, Decision, SpeedRule, choose, cycling, interleaved_latencies
from export.validate import CandidateReport, apply_gates
from genba import keys
from genba.bundle import BundleWriter, Manifest, draft_manifest
from genba.errors import GateFailedError, UsageError
from genba.inputs import Example, read_jsonl
from genba.runtime import GraphSet, RuntimeConfig
from genba.runtime.preprocess import Feeds, Preprocessor, preprocessor_for
from genba.runtime.sessions import CPU, CUDA
from genba.versions import ModelVersion

log = logging.getLogger(__name__)
Progress = Callable[[str], None]


@dataclass(frozen=True)
class ExportResult:
    bundle: Path
    manifest: Manifest

    @property
    def report(self) -> dict[str, Any]:
        return dict(self.manifest.validation or {})


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


Amend = Callable[[Manifest], Manifest]


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
    """The shared back half: graphs → variants per target → gates → staged, signed, renamed bundle."""
    say = progress or (lambda message: log.info(message))
    signing_key = keys.load_private_key(config.signing_key) if config.signing_key else None
    with BundleWriter(config.out) as writer, tempfile.TemporaryDirectory(prefix="genba-export-") as work:
        say(f"exporting {source.model_type} ({source.library}) to ONNX")
        exported = make_graphs(Path(work))
        spec = make_preprocessing(writer.root, exported.input_names)
        preprocessor = preprocessor_for(writer.root, spec)
        # The cpu variant is measured where it will run: on the CPU provider, even on a GPU machine.
        runtime = RuntimeConfig(provider="cpu", intra_op_threads=config.threads)
        head_bytes = _head_bytes(exported.head, config.opset)
        data = gate_data(config, source.modality, exported, inputs, preprocessor)
        latency_feeds = [preprocessor.encode([item]) for item in data.sample_items[:8]]
        variants: dict[str, Any] = {}
        top: tuple[dict[str, Any], dict[str, Any], Path] | None = None
        validation: dict[str, Any] = {}
        if "cpu" in config.export_targets:
            candidates = _evaluate_candidates(
                config, source, exported, data, runtime, head_bytes, latency_feeds, Path(work), say
            )
            chosen = _choose(candidates.reports, candidates.decision)
            path = candidates.paths[chosen.name]
            table = _install_graphs(writer.root, exported, chosen.precision, path, head_bytes, suffix="")
            precision = {"backbone": chosen.precision, "variant": chosen.name, "details": chosen.details}
            variants["cpu"] = {"provider": CPU, "graphs": table, "precision": precision}
            top, validation = (table, precision, path), candidates.summary(chosen)
        cuda = None
        if "cuda" in config.export_targets:
            say("building and checking the cuda target's fp16 variant")
            try:
                cuda = build_cuda_variant(
                    config, exported, source.model_type, data, head_bytes, latency_feeds, Path(work)
                )
            except GateFailedError as failure:
                if config.targets is not None or top is None:
                    raise  # asked for by name, or the only target: no bundle without it
                # Not asked for by name: ship the cpu variant alone and say why in the manifest.
                say(f"no cuda variant: {failure}")
                validation["skipped_targets"] = {"cuda": str(failure)}
        if cuda is not None:
            table = _install_graphs(
                writer.root, exported, cuda.precision, cuda.path, head_bytes, suffix="-cuda"
            )
            precision = {"backbone": cuda.precision, "variant": CUDA_VARIANT, "details": cuda.details}
            variants["cuda"] = {
                "provider": CUDA,
                "graphs": table,
                "precision": precision,
                "validation": cuda.validation(),
            }
            if top is None:
                top, validation = (table, precision, cuda.path), _cuda_only_summary(data, inputs, cuda)
        assert top is not None  # ExportConfig requires at least one target
        graph_table, top_precision, top_path = top
        stats_outputs = _run_chosen(
            top_path, head_bytes, exported.layout, _stats_feeds(data, inputs, preprocessor), runtime
        )
        fields = {
            "model": {
                "name": config.model_name,
                **ModelVersion(config.version, config.revision).manifest_fields(),
                "created_at": timestamp(now),
            },
            "task": config.task,
            "labels": list(inputs.labels) if inputs.labels else None,
            "input": spec,
            "graphs": graph_table,
            "precision": top_precision,
            "variants": variants,
            "opset": config.opset,
            "runtime": runtime_versions(),
            "validation": validation,
            "reference_stats": reference_statistics(
                stats_outputs, inputs.labels, "eval" if inputs.eval else "samples"
            ),
            "lineage": lineage(
                {
                    "model_type": source.model_type,
                    "library": source.library,
                    "architectures": list(source.architectures),
                }
            ),
        }
        manifest = draft_manifest(fields)
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
    decision: Decision
    reports: list[CandidateReport]
    paths: dict[str, Path]
    skipped: list[quantize.Skipped]
    torch_accuracy: float | None
    sample_count: int
    eval_count: int

    def summary(self, chosen: CandidateReport) -> dict[str, Any]:
        return {
            "chosen": chosen.name,
            "torch_accuracy": self.torch_accuracy,
            "sample_count": self.sample_count,
            "eval_count": self.eval_count,
            "candidates": [r.to_json() for r in self.reports],
            "speed": self.decision.to_json(),
            "skipped": [{"name": s.name, "reason": s.reason} for s in self.skipped],
        }


def _evaluate_candidates(
    config: ExportConfig,
    source: ModelSource,
    exported: ExportedGraphs,
    data: GateData,
    runtime: RuntimeConfig,
    head_bytes: bytes | None,
    latency_feeds: list[Feeds],
    work: Path,
    say: Progress,
) -> _Candidates:
    """Build and gate every cpu-target variant ``precision`` allows."""
    names, skipped = quantize.candidate_names(config.precision, bool(data.calibration_feeds), config.variant)
    reports, paths, sessions = [], {}, {}
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
        graphs_run = graph_set(variant.path, head_bytes, exported.layout, runtime)
        report = measure(variant, graphs_run, data, latency_feeds, runs=0)
        tolerance = config.gates.tolerances[variant.precision]
        reports.append(apply_gates(report, tolerance, config.gates, data.eval_set is not None))
        paths[name], sessions[name] = variant.path, graphs_run
    say("timing the variants that passed, interleaved")
    decision = _time_and_choose(config, reports, sessions, latency_feeds)
    return _Candidates(
        decision=decision,
        reports=reports,
        paths=paths,
        skipped=skipped,
        torch_accuracy=data.torch_accuracy,
        sample_count=len(data.sample_items),
        eval_count=len(data.eval_set.labels) if data.eval_set is not None else 0,
    )


def _cuda_only_summary(data: GateData, inputs: Inputs, cuda: CudaVariant) -> dict[str, Any]:
    return {
        "chosen": CUDA_VARIANT,
        "torch_accuracy": data.torch_accuracy,
        "sample_count": len(data.sample_items),
        "eval_count": len(inputs.eval or ()),
        "candidates": [{**cuda.report.to_json(), "chosen": True}],
        "skipped": [],
    }


def _stats_feeds(data: GateData, inputs: Inputs, preprocessor: Preprocessor) -> list[Feeds]:
    """The validation inputs the reference statistics describe, tokenized once where possible."""
    if data.eval_set is not None:
        return data.eval_set.batches
    if inputs.eval:
        return [preprocessor.encode(b) for b in samples.batched(samples.payloads(inputs.eval), BATCH)]
    return [data.sample_feeds]


def _time_and_choose(
    config: ExportConfig, reports: list[CandidateReport], sessions: dict[str, GraphSet], feeds: list[Feeds]
) -> Decision:
    """Time the passing variants in interleaved rounds; among those not shown slower than the
    fastest (export.speed's rule), keep the most accurate. Raises GateFailedError if none passed."""
    if not any(r.passed for r in reports):
        why = "; ".join(
            f"{r.name} ({', '.join(r.failures()) or 'no gate could be computed'})" for r in reports
        )
        raise GateFailedError(
            f"export refused: no variant passed its gates: {why}",
            {"candidates": [r.to_json() for r in reports]},
        )
    choices = [Choice(r.name, r.passed, r.accuracy, r.mean_cosine, tuple(r.failures())) for r in reports]
    passing = {r.name: sessions[r.name] for r in reports if r.passed}
    runs = max(1, config.latency_runs // config.latency_rounds)
    runners = {name: cycling(graphs.run_feeds, feeds) for name, graphs in passing.items()}
    medians = interleaved_latencies(runners, rounds=config.latency_rounds, runs_per_round=runs, warmup=3)
    decision = choose(choices, medians, SpeedRule())
    for report in reports:
        figures = decision.figures.get(report.name)
        if figures is not None and figures.median_ms is not None:
            report.latency_ms_b1 = round(figures.median_ms, 6)
    return decision


def _choose(reports: list[CandidateReport], decision: Decision) -> CandidateReport:
    chosen = next(r for r in reports if r.name == decision.chosen)
    chosen.chosen = True
    return chosen


def _install_graphs(
    root: Path, exported: ExportedGraphs, precision: str, path: Path, head_bytes: bytes | None, suffix: str
) -> dict[str, Any]:
    """Copy one target's backbone (``backbone{suffix}.onnx``) in; the fp32 head is shared by all targets."""
    if exported.layout == "single":
        name = f"model{suffix}.onnx"
        shutil.copyfile(path, root / name)
        return {"model": {"file": name, "precision": precision, "outputs": ["logits"]}}
    name = f"backbone{suffix}.onnx"
    shutil.copyfile(path, root / name)
    table: dict[str, Any] = {"backbone": {"file": name, "precision": precision, "outputs": ["embedding"]}}
    if head_bytes is not None:
        (root / "head.onnx").write_bytes(head_bytes)
        table["head"] = {
            "file": "head.onnx",
            "precision": "fp32",
            "inputs": ["embedding"],
            "outputs": ["logits"],
        }
    return table


def _run_chosen(
    path: Path,
    head_bytes: bytes | None,
    layout: str,
    feeds: list[dict[str, np.ndarray]],
    runtime: RuntimeConfig,
) -> dict[str, np.ndarray]:
    graphs_run = graph_set(path, head_bytes, layout, runtime)
    outputs = [graphs_run.run_feeds(batch) for batch in feeds]
    return {key: np.concatenate([o[key] for o in outputs]) for key in outputs[0]}
