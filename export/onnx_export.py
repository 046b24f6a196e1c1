"""Hugging Face model directory → fp32 ONNX graph, through optimum's exporter, offline.

Models load with eager attention where they allow it: the exported graph then
has the classic attention pattern that ONNX Runtime's optimizer fuses, which
is the lever for int8 speed on CPU.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from export.sources import ModelSource
from genba.errors import ExportError, ModelSourceError

log = logging.getLogger(__name__)

_TASK_LOADERS = {
    "text-classification": "AutoModelForSequenceClassification",
    "image-classification": "AutoModelForImageClassification",
    "feature-extraction": "AutoModel",
}


def load_torch_model(source: ModelSource, task: str) -> Any:
    """The torch model in eval mode (a SentenceTransformer for sentence-transformers folders)."""
    if source.library == "sentence_transformers":
        return _load_sentence_transformer(source.path)
    import transformers

    loader = getattr(transformers, _TASK_LOADERS[task])
    try:
        try:
            model = loader.from_pretrained(source.path, local_files_only=True, attn_implementation="eager")
        except (ValueError, TypeError):  # architectures without an eager switch
            model = loader.from_pretrained(source.path, local_files_only=True)
    except OSError as exc:
        raise ModelSourceError(f"cannot load the model in {source.path}: {_first_line(exc)}") from exc
    return model.eval()


def _load_sentence_transformer(path: Path) -> Any:
    from sentence_transformers import SentenceTransformer

    try:
        model = SentenceTransformer(
            str(path), device="cpu", local_files_only=True, model_kwargs={"attn_implementation": "eager"}
        )
    except (OSError, ValueError) as exc:
        raise ModelSourceError(f"cannot load the sentence-transformers model in {path}: {exc}") from exc
    return model.eval()


def export_fp32(model: Any, task: str, out_dir: Path, opset: int) -> Path:
    """Export ``model`` with optimum; returns the path of the single fp32 graph."""
    from optimum.exporters.onnx import onnx_export_from_model

    out_dir.mkdir(parents=True, exist_ok=True)
    # optimum advises installing accelerate for tied-weight deduplication; the models
    # exported here have no tied weights in their graphs, so the advice is noise.
    logging.getLogger("optimum.exporters.onnx.base").setLevel(logging.ERROR)
    try:
        onnx_export_from_model(model, out_dir, task=task, opset=opset, do_validation=False, device="cpu")
    except (ValueError, KeyError, RuntimeError) as exc:
        raise ExportError(f"ONNX export failed: {_first_line(exc)}") from exc
    graph = out_dir / "model.onnx"
    if not graph.is_file():
        raise ExportError(f"ONNX export wrote no model.onnx in {out_dir}")
    return graph


def save_text_preprocessing(source_dir: Path, out_dir: Path) -> dict[str, Any]:
    """Save the fast tokenizer's files; returns what the runtime needs to tokenize."""
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(source_dir, local_files_only=True, use_fast=True)
    except (OSError, ValueError) as exc:
        raise ModelSourceError(f"cannot load the tokenizer in {source_dir}: {_first_line(exc)}") from exc
    if not getattr(tokenizer, "is_fast", False):
        raise ModelSourceError(f"the tokenizer in {source_dir} has no fast (tokenizers) version")
    tokenizer.save_pretrained(out_dir)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    return {"kind": "text", "tokenizer": "preprocess/tokenizer.json", "pad_id": int(pad_id)}


def save_image_preprocessing(source_dir: Path, out_dir: Path) -> dict[str, Any]:
    """Save the image processor's config; returns the resolved resize/normalize spec."""
    from transformers import AutoImageProcessor

    try:
        processor = AutoImageProcessor.from_pretrained(source_dir, local_files_only=True)
    except (OSError, ValueError) as exc:
        raise ModelSourceError(f"cannot load the image processor in {source_dir}: {exc}") from exc
    processor.save_pretrained(out_dir)
    size = dict(getattr(processor, "size", {}) or {})
    height = size.get("height") or size.get("shortest_edge")
    width = size.get("width") or size.get("shortest_edge")
    if not height or not width:
        raise ModelSourceError(f"the image processor in {source_dir} gives no image size")
    return {
        "kind": "image",
        "height": int(height),
        "width": int(width),
        "rescale_factor": float(getattr(processor, "rescale_factor", 1 / 255))
        if getattr(processor, "do_rescale", True)
        else 1.0,
        **_normalization(processor, source_dir),
        "resample": int(getattr(processor, "resample", 2)),
        "normalization": "image-processor",
    }


def _normalization(processor: Any, source_dir: Path) -> dict[str, list[float]]:
    """The processor's own mean and std, never a guess: a wrong one passes every gate (torch and
    ONNX are fed the same wrong input) and costs accuracy at the sites."""
    if not getattr(processor, "do_normalize", True):
        return {"mean": [0.0, 0.0, 0.0], "std": [1.0, 1.0, 1.0]}
    mean, std = getattr(processor, "image_mean", None), getattr(processor, "image_std", None)
    if mean is None or std is None:
        raise ModelSourceError(
            f"the image processor in {source_dir} normalizes but gives no image_mean/image_std: "
            "add the values the model was trained with to its preprocessor_config.json"
        )
    as_list = [float(mean)] * 3 if isinstance(mean, int | float) else [float(v) for v in mean]
    std_list = [float(std)] * 3 if isinstance(std, int | float) else [float(v) for v in std]
    return {"mean": as_list, "std": std_list}


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
