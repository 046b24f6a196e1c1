"""Precision variants of a backbone graph: fused fp32, fp16, int8 dynamic, int8 static.

Fusing first (attention, layer norm, GELU into ONNX Runtime's contrib ops) is
what makes int8 pay off on CPU: the quantizer then emits QAttention and
integer MatMuls over whole blocks instead of dozens of small ops.
"""

from __future__ import annotations

import contextlib
import io
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from genba.errors import ExportError

log = logging.getLogger(__name__)

#: ONNX Runtime's transformer optimizer knows these families (by config.model_type).
_FUSION_MODEL_TYPES = {
    "bert": "bert",
    "roberta": "bert",
    "xlm-roberta": "bert",
    "distilbert": "bert",
    "electra": "bert",
    "mpnet": "bert",
    "vit": "vit",
    "deit": "vit",
}

_NOT_FUSED_MARK = "backbone-fused.none"

VARIANTS_BY_PRECISION: dict[str, tuple[str, ...]] = {
    "fp32": ("fp32",),
    "fp16": ("fp16",),
    "int8": ("int8-per-channel", "int8-mixed", "int8-per-tensor"),
    "int8-static": ("int8-static",),
}


@dataclass(frozen=True)
class Variant:
    """One candidate backbone graph on disk."""

    name: str
    precision: str
    path: Path
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Skipped:
    name: str
    reason: str


def candidate_names(
    requested: str, has_calibration: bool, variant: str | None = None
) -> tuple[list[str], list[Skipped]]:
    """Which variants to build for ``--precision``; ``auto`` builds all that can run here.

    ``variant`` names the one variant to build, whatever ``requested`` says.
    """
    if variant is not None:
        return [variant], []
    if requested != "auto":
        return list(VARIANTS_BY_PRECISION[requested]), []
    names = ["fp32", "int8-per-channel", "int8-mixed", "int8-per-tensor"]
    skipped: list[Skipped] = []
    if has_calibration:
        names.append("int8-static")
    else:
        skipped.append(Skipped("int8-static", "no --calibration data given"))
    # fp16 is the cuda target's variant (export.cuda_target), measured where it runs.
    skipped.append(Skipped("fp16", "fp16 is the cuda target's variant (--targets), not a cpu candidate"))
    return names, skipped


def build_variant(
    name: str,
    fp32_graph: Path,
    workdir: Path,
    model_type: str,
    calibration: Sequence[dict[str, np.ndarray]],
    probe: Sequence[dict[str, np.ndarray]] = (),
    max_size_ratio: float = 0.3,
) -> Variant:
    """Build one named variant from the plain fp32 export.

    ``probe`` inputs drive the sensitivity ranking of ``int8-mixed``, whose
    fp32 layers may grow the graph to at most ``max_size_ratio`` of fp32.
    """
    fused = fuse(fp32_graph, model_type, workdir)
    base = fused or fp32_graph
    out = workdir / f"backbone-{name}.onnx"
    with _quiet_quantizer():
        try:
            if name == "fp32":
                return Variant(name, "fp32", base, {"fused": fused is not None})
            if name == "fp16":
                _to_fp16(base, out)
                return Variant(name, "fp16", out, {"fused": fused is not None})
            if name in ("int8-per-channel", "int8-per-tensor"):
                per_channel = name == "int8-per-channel"
                _quantize_dynamic(base, out, per_channel)
                details = {"fused": fused is not None, "per_channel": per_channel, "mode": "dynamic"}
                return Variant(name, "int8", out, details)
            if name == "int8-mixed":
                kept = _quantize_mixed(base, out, workdir, probe or calibration, max_size_ratio)
                details = {
                    "fused": fused is not None,
                    "per_channel": True,
                    "mode": "dynamic",
                    "fp32_nodes": kept,
                }
                return Variant(name, "int8", out, details)
            if name == "int8-static":
                _quantize_static(fp32_graph, out, calibration)
                details = {"fused": False, "per_channel": True, "mode": "static", "format": "QDQ"}
                return Variant(name, "int8-static", out, details)
        except (RuntimeError, ValueError, KeyError) as exc:
            raise ExportError(f"building the {name} variant failed: {exc}") from exc
    raise ExportError(f"unknown variant {name!r}")


def fuse(fp32_graph: Path, model_type: str, workdir: Path) -> Path | None:
    """Fuse transformer subgraphs with ONNX Runtime's optimizer; None when it does not apply."""
    family = _FUSION_MODEL_TYPES.get(model_type)
    if family is None:
        return None
    out = workdir / "backbone-fused.onnx"
    if out.exists():
        return out
    if (workdir / _NOT_FUSED_MARK).exists():
        return None
    from onnxruntime.transformers.fusion_options import FusionOptions
    from onnxruntime.transformers.optimizer import optimize_model

    options = FusionOptions(family)
    # Symbolic shape inference trips over the attention-mask Expand that transformers
    # emits, which silently disables SkipLayerNormalization fusion. Residual Adds in
    # these encoders always join equal shapes, so the fusion is safe without it.
    options.enable_shape_inference = False
    with _quiet_quantizer():
        try:
            optimized = optimize_model(
                str(fp32_graph),
                model_type=family,
                num_heads=0,
                hidden_size=0,
                optimization_options=options,
                use_gpu=False,
            )
        except Exception as exc:  # the optimizer raises assorted errors on unknown patterns
            log.info("graph fusion skipped: %s", exc)
            (workdir / _NOT_FUSED_MARK).touch()
            return None
    stats = optimized.get_fused_operator_statistics()
    if not any(stats.get(op, 0) for op in ("Attention", "MultiHeadAttention")):
        log.info("graph fusion found no attention blocks; keeping the plain graph")
        (workdir / _NOT_FUSED_MARK).touch()  # every variant asks; the answer will not change
        return None
    optimized.save_model_to_file(str(out))
    return out


def _quantize_mixed(
    base: Path, out: Path, workdir: Path, probe: Sequence[dict[str, np.ndarray]], max_size_ratio: float
) -> list[str]:
    from export import mixed

    if not probe:
        raise ValueError("int8-mixed needs sample inputs to rank layer sensitivity")
    full_int8 = workdir / "backbone-int8-per-channel.onnx"
    if not full_int8.exists():
        _quantize_dynamic(base, full_int8, per_channel=True)
    budget = int(max_size_ratio * base.stat().st_size) - full_int8.stat().st_size
    ranking = mixed.rank_nodes(base, probe, _quantize_except, workdir)
    kept = mixed.choose_fp32_nodes(ranking, budget)
    _quantize_dynamic(base, out, per_channel=True, exclude=kept)
    return kept


def _quantize_except(source: Path, out: Path, exclude: list[str]) -> None:
    _quantize_dynamic(source, out, per_channel=True, exclude=exclude)


def _quantize_dynamic(source: Path, out: Path, per_channel: bool, exclude: Sequence[str] = ()) -> None:
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(
        str(source),
        str(out),
        per_channel=per_channel,
        nodes_to_exclude=list(exclude),
        weight_type=QuantType.QInt8,
        # The fused contrib ops defeat ONNX shape inference; their outputs are float.
        extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
    )


def _quantize_static(source: Path, out: Path, calibration: Sequence[dict[str, np.ndarray]]) -> None:
    import onnx
    from onnxruntime.quantization import (
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    if not calibration:
        raise ValueError("int8-static needs calibration inputs")
    quantize_static(
        str(source),
        str(out),
        _CalibrationReader(calibration),
        quant_format=QuantFormat.QDQ,
        op_types_to_quantize=["MatMul", "Gemm"],
        per_channel=True,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
        calibrate_method=CalibrationMethod.MinMax,
        extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
    )


def _to_fp16(source: Path, out: Path) -> None:
    import onnx
    from onnxruntime.transformers.onnx_model import OnnxModel

    model = OnnxModel(onnx.load(str(source)))
    # Inputs and outputs stay fp32 so the runtime and the head do not change.
    model.convert_float_to_float16(keep_io_types=True)
    model.save_model_to_file(str(out))


class _CalibrationReader:
    """ONNX Runtime's CalibrationDataReader protocol over prepared feeds."""

    def __init__(self, feeds: Sequence[dict[str, np.ndarray]]) -> None:
        self._iterator: Iterator[dict[str, np.ndarray]] = iter(feeds)

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._iterator, None)


@contextlib.contextmanager
def _quiet_quantizer() -> Iterator[None]:
    """The quantizer and optimizer log advice on the root logger and print to stdout.

    Keep both out of the CLI's output, whose stdout is a JSON document.
    """
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        root.setLevel(level)
