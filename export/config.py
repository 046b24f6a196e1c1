"""Export settings: one frozen dataclass for the pipeline, one for its gates."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from genba.errors import ConfigError

Task = Literal["text-classification", "image-classification", "feature-extraction"]
Precision = Literal["auto", "fp32", "fp16", "int8", "int8-static"]

#: Where a bundle's backbone variants will run: ``cpu`` (chosen by measurement) and ``cuda`` (fp16).
TARGETS: tuple[str, ...] = ("cpu", "cuda")
TASKS: tuple[str, ...] = ("text-classification", "image-classification", "feature-extraction")
PRECISIONS: tuple[str, ...] = ("auto", "fp32", "fp16", "int8", "int8-static")
VARIANTS: tuple[str, ...] = (
    "fp32",
    "fp16",
    "int8-per-channel",
    "int8-mixed",
    "int8-per-tensor",
    "int8-static",
)


@dataclass(frozen=True)
class Tolerance:
    """How far a variant's outputs may drift from torch on the sample inputs.

    ``max_abs_diff`` bounds the largest absolute difference of embeddings and
    logits (None: not checked, as for int8 where only direction is meaningful);
    ``min_mean_cosine`` bounds the mean cosine similarity of the embeddings.
    """

    max_abs_diff: float | None
    min_mean_cosine: float


def _default_tolerances() -> dict[str, Tolerance]:
    return {
        "fp32": Tolerance(max_abs_diff=1e-3, min_mean_cosine=0.9999),
        "fp16": Tolerance(max_abs_diff=3e-2, min_mean_cosine=0.999),
        "int8": Tolerance(max_abs_diff=None, min_mean_cosine=0.97),
        "int8-static": Tolerance(max_abs_diff=None, min_mean_cosine=0.97),
    }


@dataclass(frozen=True)
class GateConfig:
    """Gates every variant must pass; a failure fails the export, never a warning."""

    tolerances: dict[str, Tolerance] = field(default_factory=_default_tolerances)
    #: Task accuracy may fall at most this many points below torch (with --eval data).
    max_accuracy_drop_pts: float = 1.0
    #: Sample inputs compared with torch when no eval or calibration file is given.
    sample_count: int = 16


@dataclass(frozen=True)
class ExportConfig:
    """Everything ``genba export`` needs, validated as a whole."""

    task: Task
    out: Path
    model_dir: Path | None = None
    labels: tuple[str, ...] | None = None
    precision: Precision = "auto"
    calibration: Path | None = None
    eval: Path | None = None
    signing_key: Path | None = None
    name: str | None = None
    version: int = 1
    #: 0 for IT's releases; a site's re-export of its own candidate is a revision (genba.versions).
    revision: int = 0
    max_length: int = 128
    opset: int = 18
    threads: int = 0
    latency_runs: int = 20
    #: Interleaved timing rounds of the cpu variants (export.speed): 9 rounds give a 95% bound.
    latency_rounds: int = 9
    #: int8-mixed may keep layers in fp32 until its graph reaches this share of the fp32 size.
    max_int8_size_ratio: float = 0.3
    #: Build only this named variant (e.g. ``int8-per-channel``) instead of every one ``precision``
    #: allows: a re-export that must keep its parent's exact precision (site last-k training).
    variant: str | None = None
    #: One backbone variant per target in the bundle; ``precision`` and ``variant`` choose the
    #: ``cpu`` one, the ``cuda`` one is always fp16 (the head stays fp32 and is shared).
    targets: tuple[str, ...] | None = None
    gates: GateConfig = field(default_factory=GateConfig)

    def __post_init__(self) -> None:
        problems: list[str] = []
        if self.task not in TASKS:
            problems.append(f"unknown task {self.task!r}; choose one of {', '.join(TASKS)}")
        if self.precision not in PRECISIONS:
            problems.append(f"unknown precision {self.precision!r}; choose one of {', '.join(PRECISIONS)}")
        if self.labels is not None and len(set(self.labels)) != len(self.labels):
            problems.append("labels must be distinct")
        if self.labels is not None and any(not label.strip() for label in self.labels):
            problems.append("labels must not be empty")
        if self.task == "feature-extraction" and self.labels:
            problems.append("feature-extraction bundles have no labels; drop --labels")
        if self.precision == "int8-static" and self.calibration is None:
            problems.append("precision int8-static needs --calibration FILE (JSONL inputs)")
        if self.variant is not None and self.variant not in VARIANTS:
            problems.append(f"unknown variant {self.variant!r}; choose one of {', '.join(VARIANTS)}")
        if self.targets is None:
            pass
        elif not self.targets or len(set(self.targets)) != len(self.targets):
            problems.append("targets must name each target once: cpu, cuda or both (cpu,cuda)")
        elif not set(self.targets) <= set(TARGETS):
            problems.append(
                f"unknown targets {sorted(set(self.targets) - set(TARGETS))}; choose from cpu, cuda"
            )
        if self.version < 1:
            problems.append("version must be a positive integer")
        if self.revision < 0:
            problems.append("revision must be 0 (a release) or a positive integer (a site candidate)")
        if not 8 <= self.max_length <= 8192:
            problems.append("max_length must be between 8 and 8192")
        if not 0.0 < self.max_int8_size_ratio <= 1.0:
            problems.append("max_int8_size_ratio must be in (0, 1]")
        if self.latency_rounds < 1:
            problems.append("latency_rounds must be >= 1 (5 or more give the speed rule its bound)")
        if self.threads < 0 or self.latency_runs < 1:
            problems.append("threads must be >= 0 and latency_runs >= 1")
        if problems:
            raise ConfigError(problems)

    @property
    def model_name(self) -> str:
        if self.name:
            return self.name
        return self.model_dir.name if self.model_dir is not None else "model"

    @property
    def export_targets(self) -> tuple[str, ...]:
        """The targets to build: those named, else both (then a cuda variant that fails its gates
        is left out with the reason in the manifest, instead of failing the export)."""
        return self.targets if self.targets is not None else TARGETS

    @property
    def is_classifier(self) -> bool:
        return self.task != "feature-extraction"
