"""The ``cuda`` target's backbone: fp16 (inputs, outputs and the head stay fp32), gated against torch.

IT usually exports on a machine without a GPU, so the fp16 graph is gated on the CPU provider
there (ONNX Runtime runs fp16 on the CPU, slowly but with the same arithmetic); where CUDA is
active it is also gated on CUDA, with its measured placement. Its placement on CUDA is also
predicted from the CUDA provider's kernel registry (``genba.runtime.placement``): a graph whose
compute operators have no CUDA kernel is refused here, before a GPU site ever loads it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from export import quantize
from export.config import ExportConfig
from export.gating import GateData, graph_set, measure
from export.layout import ExportedGraphs
from export.validate import CandidateReport, apply_gates
from genba.errors import GateFailedError
from genba.runtime import RuntimeConfig
from genba.runtime.placement import PlacementReport
from genba.runtime.preprocess import Feeds
from genba.runtime.sessions import CUDA, cuda_possible
from genba.runtime.targets import predicted_placement

CUDA_VARIANT = "fp16"


@dataclass(frozen=True)
class CudaVariant:
    path: Path
    precision: str
    details: dict[str, Any]
    report: CandidateReport  # gated on the CPU provider
    on_cuda: CandidateReport | None  # gated again on CUDA where this machine has it
    predicted: PlacementReport | None
    measured: PlacementReport | None

    def validation(self) -> dict[str, Any]:
        return {
            "gated_on": [self.report.provider, *([self.on_cuda.provider] if self.on_cuda else [])],
            "report": self.report.to_json(),
            "on_cuda": self.on_cuda.to_json() if self.on_cuda else None,
            "predicted_placement": self.predicted.to_json() if self.predicted else None,
            "measured_placement": self.measured.to_json() if self.measured else None,
        }


def build_cuda_variant(
    config: ExportConfig,
    exported: ExportedGraphs,
    model_type: str,
    data: GateData,
    head_bytes: bytes | None,
    latency_feeds: list[Feeds],
    work: Path,
) -> CudaVariant:
    """Build the fp16 backbone and gate it; raises GateFailedError (nothing written) if it fails."""
    variant = quantize.build_variant(CUDA_VARIANT, exported.main, work, model_type, data.calibration_feeds)
    tolerance = config.gates.tolerances[variant.precision]
    has_eval = data.eval_set is not None
    on_cpu = graph_set(variant.path, head_bytes, exported.layout, _runtime(config, "cpu"))
    report = apply_gates(
        measure(variant, on_cpu, data, latency_feeds, config.latency_runs), tolerance, config.gates, has_eval
    )
    graphs = {"backbone" if exported.layout == "split" else "model": variant.path.read_bytes()}
    predicted = predicted_placement(graphs)
    on_cuda, measured = _gate_on_cuda(config, exported, variant, data, head_bytes, latency_feeds)
    _require_passed(report, on_cuda, predicted, measured)
    return CudaVariant(
        variant.path, variant.precision, dict(variant.details), report, on_cuda, predicted, measured
    )


def _gate_on_cuda(
    config: ExportConfig,
    exported: ExportedGraphs,
    variant: quantize.Variant,
    data: GateData,
    head_bytes: bytes | None,
    latency_feeds: list[Feeds],
) -> tuple[CandidateReport | None, PlacementReport | None]:
    runtime = _runtime(config, "auto")
    if not cuda_possible(runtime):
        return None, None
    graphs = graph_set(variant.path, head_bytes, exported.layout, runtime, probe=latency_feeds[0])
    if graphs.provider != CUDA:
        return None, None
    report = measure(variant, graphs, data, latency_feeds, config.latency_runs)
    tolerance = config.gates.tolerances[variant.precision]
    return apply_gates(report, tolerance, config.gates, data.eval_set is not None), graphs.placement


def _require_passed(
    report: CandidateReport,
    on_cuda: CandidateReport | None,
    predicted: PlacementReport | None,
    measured: PlacementReport | None,
) -> None:
    problems = [
        f"on {r.provider}: {', '.join(r.failures())}" for r in (report, on_cuda) if r and not r.passed
    ]
    for placement in (predicted, measured):
        if placement is not None and placement.compute_falls_back:
            problems.append(
                f"compute operators would run on the CPU ({placement.describe()}; {placement.source})"
            )
    if problems:
        reports = {"cuda": [r.to_json() for r in (report, on_cuda) if r is not None]}
        raise GateFailedError(
            f"export refused: the cuda target's {CUDA_VARIANT} variant failed: {'; '.join(problems)}; "
            "export with --targets cpu to ship the cpu variant alone",
            reports,
        )


def _runtime(config: ExportConfig, provider: str) -> RuntimeConfig:
    return RuntimeConfig(provider=provider, intra_op_threads=config.threads)  # type: ignore[arg-type]
