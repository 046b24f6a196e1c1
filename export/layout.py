"""Decide a bundle's graph layout and produce its fp32 graphs with the matching torch reference."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from export import graphs
from export.graphs import HeadWeights
from export.onnx_export import export_fp32, load_torch_model
from export.reference import TorchReference
from export.sources import ModelSource
from genba.errors import ModelSourceError


@dataclass(frozen=True)
class ExportedGraphs:
    """fp32 graphs on disk: ``main`` is the backbone (split) or the whole model (single)."""

    layout: str  # "split" or "single"
    main: Path
    head: HeadWeights | None
    reference: TorchReference
    input_names: tuple[str, ...]


def export_graphs(
    source: ModelSource, task: str, workdir: Path, opset: int, head: HeadWeights | None
) -> ExportedGraphs:
    """Export the model and shape it into the bundle's layout (see DESIGN: two graphs by default)."""
    classifier = task != "feature-extraction"
    if source.library == "sentence_transformers":
        if classifier and head is None:
            raise ModelSourceError(
                f"{source.path} is a sentence-embedding model with no classification head; "
                "export it with --task feature-extraction, or train a head first"
            )
        model = load_torch_model(source, "feature-extraction")
        raw = export_fp32(model, "feature-extraction", workdir / "optimum", opset)
        backbone = graphs.sentence_backbone(graphs.load(raw))
        reference = TorchReference(model, "sentence", source.modality, head)
        return _split(backbone, head, reference, workdir)
    if head is not None or not classifier:
        model = load_torch_model(source, "feature-extraction")
        raw = export_fp32(model, "feature-extraction", workdir / "optimum", opset)
        backbone = graphs.pooled_backbone(graphs.load(raw), source.modality)
        reference = TorchReference(model, "features", source.modality, head)
        return _split(backbone, head, reference, workdir)
    if not source.has_classifier_for(task):
        raise ModelSourceError(
            f"{source.path} has no classification head (architectures: "
            f"{', '.join(source.architectures) or 'none'}); use --task feature-extraction"
        )
    model = load_torch_model(source, task)
    raw = export_fp32(model, task, workdir / "optimum", opset)
    return _classifier_layout(graphs.load(raw), model, source, workdir)


def _classifier_layout(full: Any, model: Any, source: ModelSource, workdir: Path) -> ExportedGraphs:
    reference = TorchReference(model, "classifier", source.modality)
    split = graphs.split_classifier(full)
    if split is None:
        path = graphs.save(full, workdir / "model-fp32.onnx")
        return ExportedGraphs("single", path, None, reference, _input_names(full))
    backbone, head = split
    return _split(backbone, head, reference, workdir)


def _split(
    backbone: Any, head: HeadWeights | None, reference: TorchReference, workdir: Path
) -> ExportedGraphs:
    path = graphs.save(backbone, workdir / "backbone-fp32.onnx")
    return ExportedGraphs("split", path, head, reference, _input_names(backbone))


def _input_names(model: Any) -> tuple[str, ...]:
    return tuple(i.name for i in model.graph.input)
