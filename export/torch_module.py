"""Export a plain torch module (not a Hugging Face model) into a bundle.

Example — an image classifier whose backbone yields a pooled vector::

    from export import ImagePreprocessing, from_torch

    result = from_torch(
        backbone,                                  # nn.Module: pixel_values -> [batch, hidden]
        {"pixel_values": torch.randn(1, 3, 64, 64)},
        Path("bundles/camera-v1"),
        task="image-classification",
        preprocessing=ImagePreprocessing(height=64, width=64),
        labels=("ok", "crack"),
        head=classifier,                           # nn.Linear(hidden, 2): a two-graph bundle
        signing_key=Path("keys/it-sign.pem"),
    )

Without ``head`` the module's output is the bundle's single output: ``logits``
for classifiers (one graph), ``embedding`` for feature extraction. The same
variants, gates and atomic signed write as ``genba export`` apply.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from export.config import ExportConfig, GateConfig, Precision, Task
from export.graphs import EMBEDDING, LOGITS, HeadWeights
from export.layout import ExportedGraphs
from export.onnx_export import save_text_preprocessing
from export.pipeline import ExportResult, Progress, build_bundle, read_inputs
from export.reference import TorchReference
from export.sources import Modality, ModelSource
from genba.errors import ExportError, UsageError


@dataclass(frozen=True)
class ImagePreprocessing:
    """Resize to height × width, scale by ``rescale_factor``, normalize per channel (RGB)."""

    height: int
    width: int
    mean: tuple[float, float, float] = (0.5, 0.5, 0.5)
    std: tuple[float, float, float] = (0.5, 0.5, 0.5)
    rescale_factor: float = 1 / 255
    resample: int = 2  # PIL bilinear

    modality: ClassVar[Modality] = "image"

    def spec(self, root: Path) -> dict[str, Any]:
        del root
        return {
            "kind": "image",
            "height": self.height,
            "width": self.width,
            "rescale_factor": self.rescale_factor,
            "mean": list(self.mean),
            "std": list(self.std),
            "resample": self.resample,
        }


@dataclass(frozen=True)
class TextPreprocessing:
    """A folder holding a fast (``tokenizers``) tokenizer saved by ``save_pretrained``."""

    tokenizer_dir: Path
    max_length: int = 128

    modality: ClassVar[Modality] = "text"

    def spec(self, root: Path) -> dict[str, Any]:
        spec = save_text_preprocessing(self.tokenizer_dir, root / "preprocess")
        spec["max_length"] = self.max_length
        return spec


@dataclass(frozen=True)
class TorchExport:
    """Options of :func:`from_torch` beyond the module and its inputs."""

    task: Task
    preprocessing: ImagePreprocessing | TextPreprocessing
    labels: Sequence[str] | None = None
    precision: Precision = "fp32"
    calibration: Path | None = None
    eval: Path | None = None
    signing_key: Path | None = None
    name: str = "torch-model"
    version: int = 1
    opset: int = 18
    gates: GateConfig = field(default_factory=GateConfig)


def from_torch(
    module: Any,
    example_inputs: Mapping[str, Any],
    out: Path,
    *,
    head: Any | None = None,
    progress: Progress | None = None,
    now: dt.datetime | None = None,
    **options: Any,
) -> ExportResult:
    """Export ``module`` (and an optional ``nn.Linear`` head) to a validated, signed bundle."""
    settings = TorchExport(**options)
    config = ExportConfig(
        task=settings.task,
        out=out,
        labels=tuple(settings.labels) if settings.labels else None,
        precision=settings.precision,
        calibration=settings.calibration,
        eval=settings.eval,
        signing_key=settings.signing_key,
        name=settings.name,
        version=settings.version,
        opset=settings.opset,
        gates=settings.gates,
    )
    if config.is_classifier and not config.labels:
        raise UsageError("from_torch needs labels=... for a classification task")
    source = ModelSource(
        path=Path(settings.name),
        library="torch",
        model_type=type(module).__name__.lower(),
        architectures=(type(module).__qualname__,),
        modality=settings.preprocessing.modality,
        config_labels=None,
    )
    inputs = read_inputs(config, source.modality, config.labels)
    head_weights = _head_weights(head)
    single_output = LOGITS if config.is_classifier and head_weights is None else EMBEDDING

    def make_graphs(work: Path) -> ExportedGraphs:
        path = _torch_onnx_export(
            module, example_inputs, work / "module-fp32.onnx", single_output, config.opset
        )
        reference = TorchReference(
            module, "module", source.modality, head_weights, module_output=single_output
        )
        layout = "single" if single_output == LOGITS else "split"
        return ExportedGraphs(layout, path, head_weights, reference, tuple(example_inputs))

    def make_preprocessing(root: Path, input_names: tuple[str, ...]) -> dict[str, Any]:
        spec = settings.preprocessing.spec(root)
        spec["graph_inputs"] = list(input_names)
        return spec

    return build_bundle(config, source, inputs, make_graphs, make_preprocessing, progress, now)


def _head_weights(head: Any | None) -> HeadWeights | None:
    if head is None:
        return None
    import torch

    if not isinstance(head, torch.nn.Linear):
        raise UsageError("head must be a torch.nn.Linear (embedding → logits)")
    bias = head.bias.detach().numpy() if head.bias is not None else np.zeros(head.out_features, np.float32)
    return HeadWeights(head.weight.detach().numpy().copy(), bias.copy())


def _torch_onnx_export(
    module: Any, example_inputs: Mapping[str, Any], path: Path, output: str, opset: int
) -> Path:
    import torch

    names = list(example_inputs)
    dynamic_axes: dict[str, dict[int, str]] = {name: {0: "batch"} for name in names}
    for name, tensor in example_inputs.items():
        if tensor.dim() == 2:  # token inputs: [batch, sequence]
            dynamic_axes[name][1] = "sequence"
    dynamic_axes[output] = {0: "batch"}
    module.eval()
    try:
        torch.onnx.export(
            module,
            (),
            str(path),
            kwargs=dict(example_inputs),
            input_names=names,
            output_names=[output],
            dynamic_axes=dynamic_axes,
            opset_version=opset,
            dynamo=False,
            external_data=False,
        )
    except Exception as exc:  # the exporter raises many error types for unsupported ops
        raise ExportError(f"torch.onnx export of {type(module).__name__} failed: {exc}") from exc
    return path
