"""Which of a bundle's variants a machine serves, and on which provider.

- ``cpu``, or ``auto`` without a GPU: the ``cpu`` variant (the portable one) on the CPU provider.
- ``gpu`` / ``auto`` with a GPU: the ``cuda`` variant (a bundle without one: its only variant).
  Its placement is checked twice: predicted from CUDA's kernel registry before any session is
  made, then measured from one profiled run. Compute operators on the CPU mean the variant would
  run partly on the CPU at a fraction of the GPU's speed (int8 graphs: 7.5–10x slower), so
  ``gpu`` refuses it with one line naming them, and ``auto`` serves the ``cpu`` variant on the CPU
  instead and says why.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from genba.bundle import VerifiedBundle
from genba.errors import IntegrityError, PlacementError
from genba.runtime.config import RuntimeConfig
from genba.runtime.placement import CUDA, PlacementReport, kernel_table, merge, predict
from genba.runtime.preprocess import Feeds
from genba.runtime.sessions import cuda_possible
from genba.variants import VariantSpec, for_gpu, portable

if TYPE_CHECKING:
    from genba.runtime.model import GraphSet  # model.py imports this module

log = logging.getLogger(__name__)


@dataclass
class Served:
    """The variant being served, its sessions, and why it was chosen."""

    variant: VariantSpec
    graphs: GraphSet
    reason: str
    placement: PlacementReport | None = None
    predicted: PlacementReport | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "variant": self.variant.name,
            "precision": self.variant.precision_label,
            "reason": self.reason,
            "placement": self.placement.to_json() if self.placement else None,
            "predicted_placement": self.predicted.to_json() if self.predicted else None,
        }


def serve(bundle: VerifiedBundle, config: RuntimeConfig, probe: Feeds) -> Served:
    """Sessions for the variant this machine should serve (see the module's rules)."""
    from genba.runtime.model import GraphSet

    manifest = bundle.manifest
    cpu_variant = portable(manifest)
    cpu_config = dataclasses.replace(config, provider="cpu")
    if not cuda_possible(config):
        why = "provider policy cpu" if config.provider == "cpu" else "no GPU on this machine"
        return Served(cpu_variant, GraphSet(graph_bytes(bundle, cpu_variant), cpu_config), why)
    gpu_variant = for_gpu(manifest)
    graphs = graph_bytes(bundle, gpu_variant)
    predicted = predicted_placement(graphs)
    if predicted is not None and predicted.compute_falls_back:
        return _fall_back(bundle, config, cpu_variant, gpu_variant, predicted, predicted=predicted)
    graph_set = GraphSet(graphs, config, probe=probe)  # 'gpu' without CUDA raises ProviderUnavailableError
    if graph_set.provider != CUDA:  # auto, and the CUDA provider did not load
        if gpu_variant.name == cpu_variant.name:
            return Served(cpu_variant, graph_set, "the CUDA provider did not load", predicted=predicted)
        return Served(
            cpu_variant,
            GraphSet(graph_bytes(bundle, cpu_variant), cpu_config),
            "the CUDA provider did not load",
            predicted=predicted,
        )
    placement = graph_set.placement
    if placement is not None and placement.compute_falls_back:
        return _fall_back(bundle, config, cpu_variant, gpu_variant, placement, predicted=predicted)
    return Served(gpu_variant, graph_set, "GPU present", placement=placement, predicted=predicted)


def predicted_placement(graphs: Mapping[str, bytes]) -> PlacementReport | None:
    """Placement on CUDA predicted from the recorded kernel registry (None without one)."""
    table = kernel_table()
    if table is None or importlib.util.find_spec("onnx") is None or not _same_onnxruntime(table.onnxruntime):
        return None  # nothing (valid) to predict from: the measured placement still decides at load
    return merge([predict(data, table) for data in graphs.values()])


def graph_bytes(bundle: VerifiedBundle, variant: VariantSpec) -> dict[str, bytes]:
    """Each graph of the variant, read once and checked against the manifest's hash."""
    return {role: _checked_bytes(bundle, spec.file) for role, spec in variant.graphs.items()}


def _fall_back(
    bundle: VerifiedBundle,
    config: RuntimeConfig,
    cpu_variant: VariantSpec,
    gpu_variant: VariantSpec,
    placement: PlacementReport,
    *,
    predicted: PlacementReport | None,
) -> Served:
    from genba.runtime.model import GraphSet

    what = (
        f"the {gpu_variant.label} variant would run compute operators on the CPU under CUDA "
        f"({placement.describe()}; {placement.source})"
    )
    if config.provider == "gpu":
        raise PlacementError(
            f"provider 'gpu' refused: {what}; export the bundle with a cuda target "
            "(genba export --targets cpu,cuda) or serve with --provider auto or cpu"
        )
    log.warning("%s; serving the %s variant on the CPU", what, cpu_variant.label)
    cpu_config = dataclasses.replace(config, provider="cpu")
    measured = placement if placement.source == "measured" else None
    return Served(
        cpu_variant,
        GraphSet(graph_bytes(bundle, cpu_variant), cpu_config),
        f"{what}: serving {cpu_variant.label} on the CPU",
        placement=measured,
        predicted=predicted,
    )


def _checked_bytes(bundle: VerifiedBundle, name: str) -> bytes:
    data = bundle.file(name).read_bytes()
    if hashlib.sha256(data).hexdigest() != bundle.manifest.files[name].sha256:
        raise IntegrityError(f"bundle file {name} does not match its hash (modified or corrupt)")
    return data


def _same_onnxruntime(recorded: str) -> bool:
    """A kernel table describes one onnxruntime-gpu release; another release may have other kernels."""
    from importlib import metadata

    for name in ("onnxruntime-gpu", "onnxruntime"):
        try:
            return metadata.version(name) == recorded
        except metadata.PackageNotFoundError:
            continue
    return False
