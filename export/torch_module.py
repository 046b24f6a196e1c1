"""Export a plain torch module (not a Hugging Face model) into a bundle.

Example — an image classifier whose backbone yields a pooled vector::

    from export import ImagePreprocessing, from_torch

    result = from_torch(
        backbone,                                  # nn.Module: pixel_values -> [batch, hidden]
        {"pixel_values": torch.randn(1, 3, 64, 64)},
        Path("bundles/camera-v1"),
        task="image-classification",
        preprocessing=ImagePreprocessing(          # the normalization the model was trained with
            height=64, width=64, mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225)
        ),
        labels=("ok", "crack"),
        head=classifier,                           # nn.Linear(hidden, 2): a two-graph bundle
        signing_key=Path("keys/it-sign.pem"),
    )

``mean`` and ``std`` have no default: a wrong guess passes every gate (torch and
ONNX get the same wrong input) and silently costs accuracy. A model trained with a
Hugging Face image processor can use ``ImagePreprocessing.from_image_processor(dir)``.

Without ``head`` the module's output is the bundle's single output: ``logits``
for classifiers (one graph), ``embedding`` for feature extraction. The same
variants, gates and atomic signed write as ``genba export`` apply.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import numbers
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np

from export.config import ExportConfig, GateConfig, Precision, Task
from export.graphs import EMBEDDING, LOGITS, HeadWeights
from export.layout import ExportedGraphs
from export.onnx_export import save_text_preprocessing
from export.pipeline import ExportResult, Progress, build_bundle, read_inputs
from export.reference import TorchReference
from export.sources import Modality, ModelSource
from genba.errors import ConfigError, ExportError, ModelSourceError, UsageError

Normalization = Literal["explicit", "image-processor"]
PROCESSOR_CONFIG = "preprocessor_config.json"
_RESAMPLE_FILTERS = range(6)  # PIL: nearest, lanczos, bilinear, bicubic, box, hamming


@dataclass(frozen=True)
class ImagePreprocessing:
    """Resize to height × width, scale by ``rescale_factor``, normalize per channel (RGB).

    ``mean`` and ``std`` have no default: they must be the normalization the model
    was trained with. A wrong guess passes every gate (torch and ONNX are fed the
    same wrong input) and silently costs accuracy. :meth:`from_image_processor`
    reads them from a Hugging Face ``preprocessor_config.json`` instead.
    """

    height: int
    width: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    rescale_factor: float = 1 / 255
    resample: int = 2  # PIL bilinear
    normalization: Normalization = field(default="explicit", kw_only=True)  # recorded in the manifest

    modality: ClassVar[Modality] = "image"

    def __post_init__(self) -> None:
        problems: list[str] = []
        mean = _per_channel("mean", self.mean, problems)
        std = _per_channel("std", self.std, problems)
        if std is not None and min(std) <= 0:
            problems.append(
                f"ImagePreprocessing std values must be > 0 (pixels are divided by them), got {std}"
            )
        problems += _scalar_problems(self)
        if problems:
            raise ConfigError(problems)
        # store plain tuples and numbers, whatever sequence or numpy scalar was passed
        object.__setattr__(self, "mean", mean)
        object.__setattr__(self, "std", std)
        for name, kind in (("height", int), ("width", int), ("rescale_factor", float), ("resample", int)):
            object.__setattr__(self, name, kind(getattr(self, name)))

    @classmethod
    def from_image_processor(cls, path_or_dir: str | Path) -> ImagePreprocessing:
        """The resize and normalization of a Hugging Face image processor (no transformers needed).

        ``path_or_dir`` is a ``preprocessor_config.json`` or the folder holding one.
        """
        path = Path(path_or_dir)
        file = path / PROCESSOR_CONFIG if path.is_dir() else path
        config = _read_processor_config(file)
        height, width = _processor_size(config, file)
        if _flag(config, "do_normalize", file):
            mean, std = config.get("image_mean"), config.get("image_std")
            if mean is None or std is None:
                raise ModelSourceError(
                    f"{file} normalizes but states no image_mean/image_std; pass mean=... and std=... "
                    "to ImagePreprocessing yourself"
                )
        else:
            mean, std = (0.0, 0.0, 0.0), (1.0, 1.0, 1.0)
        rescale = config.get("rescale_factor", 1 / 255) if _flag(config, "do_rescale", file) else 1.0
        try:
            return cls(
                height=height,
                width=width,
                mean=_broadcast(mean),
                std=_broadcast(std),
                rescale_factor=rescale,
                resample=config.get("resample", 2),
                normalization="image-processor",
            )
        except ConfigError as exc:
            raise ModelSourceError(
                f"{file} does not fit Genba's image path: {'; '.join(exc.problems)}"
            ) from exc

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
            "normalization": self.normalization,
        }


def _scalar_problems(pre: ImagePreprocessing) -> list[str]:
    problems = [
        f"ImagePreprocessing {name} must be a positive number of pixels, got {size!r}"
        for name, size in (("height", pre.height), ("width", pre.width))
        if isinstance(size, bool) or not isinstance(size, numbers.Integral) or size <= 0
    ]
    rescale = _finite(pre.rescale_factor)
    if rescale is None or rescale <= 0:
        problems.append(f"ImagePreprocessing rescale_factor must be > 0, got {pre.rescale_factor!r}")
    if isinstance(pre.resample, bool) or pre.resample not in _RESAMPLE_FILTERS:
        problems.append(
            f"ImagePreprocessing resample must be a PIL filter number 0-5 (2 bilinear, 3 bicubic), "
            f"got {pre.resample!r}"
        )
    if pre.normalization not in ("explicit", "image-processor"):
        problems.append("ImagePreprocessing normalization must be 'explicit' or 'image-processor'")
    return problems


def _per_channel(name: str, value: Any, problems: list[str]) -> tuple[float, ...] | None:
    if isinstance(value, str | bytes) or not isinstance(value, Iterable):
        problems.append(f"ImagePreprocessing {name} must be 3 numbers, one per RGB channel, got {value!r}")
        return None
    values = tuple(value)
    if len(values) != 3:
        problems.append(
            f"ImagePreprocessing {name} has {len(values)} value(s) but Genba feeds images as 3 RGB "
            f"channels, channels-first: give one per channel (a grayscale model repeats its value, "
            f"e.g. {name}=(0.1307,) * 3, and takes 3 channels)"
        )
        return None
    floats = tuple(_finite(v) for v in values)
    if any(v is None for v in floats):
        problems.append(f"ImagePreprocessing {name} values must be finite numbers, got {values!r}")
        return None
    return tuple(float(v) for v in floats if v is not None)


def _finite(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _broadcast(value: Any) -> Any:
    """A single number in a processor config applies to every channel, as in transformers."""
    return (value,) * 3 if isinstance(value, int | float) and not isinstance(value, bool) else value


def _read_processor_config(file: Path) -> dict[str, Any]:
    try:
        config = json.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ModelSourceError(f"no image processor config at {file}") from exc
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelSourceError(f"cannot read the image processor config {file}: {exc}") from exc
    if not isinstance(config, dict):
        raise ModelSourceError(f"{file} is not an image processor config (not a JSON object)")
    return config


def _processor_size(config: Mapping[str, Any], file: Path) -> tuple[Any, Any]:
    size = config.get("size")
    if isinstance(size, int) and not isinstance(size, bool):
        return size, size
    if isinstance(size, dict):
        height = size.get("height") or size.get("shortest_edge")
        width = size.get("width") or size.get("shortest_edge")
        if height and width:
            return height, width
    raise ModelSourceError(f"{file} gives no image size (size.height/width or size.shortest_edge)")


def _flag(config: Mapping[str, Any], key: str, file: Path) -> bool:
    value = config.get(key, True)
    if not isinstance(value, bool):
        raise ModelSourceError(f"{file}: {key} must be true or false, got {value!r}")
    return value


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
    if isinstance(settings.preprocessing, ImagePreprocessing):
        _check_image_inputs(example_inputs)
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


def _check_image_inputs(example_inputs: Mapping[str, Any]) -> None:
    """Genba feeds an image model one [batch, 3, height, width] RGB tensor: refuse anything else by name."""
    shapes = {name: list(getattr(tensor, "shape", ())) for name, tensor in example_inputs.items()}
    if len(shapes) != 1:
        raise ModelSourceError(
            f"from_torch: an image model takes one input (pixel values), got {len(shapes)}: "
            f"{', '.join(shapes) or 'none'}; give one example tensor of shape [batch, 3, height, width]"
        )
    ((name, shape),) = shapes.items()
    if len(shape) != 4 or shape[1] != 3:
        channels = f"{shape[1]} channel(s)" if len(shape) == 4 else f"{len(shape)} dimensions"
        raise ModelSourceError(
            f"from_torch: example input {name!r} has shape {shape} ({channels}), but Genba feeds image "
            "models 3 RGB channels, channels-first [batch, 3, height, width]; a 1-channel (grayscale) "
            "model must take 3: wrap it to average them first (x.mean(dim=1, keepdim=True)) and give "
            "ImagePreprocessing 3 equal values, e.g. mean=(0.1307,) * 3"
        )


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
