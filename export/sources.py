"""Inspect a model directory before anything heavy happens: is it a model, can we export it?"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from genba.errors import ModelSourceError, UnsupportedArchitectureError, UsageError

Library = Literal["transformers", "sentence_transformers", "torch"]
Modality = Literal["text", "image"]

_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin", "model.safetensors.index.json")
_CLASSIFIER_SUFFIXES = {
    "text-classification": "ForSequenceClassification",
    "image-classification": "ForImageClassification",
}


@dataclass(frozen=True)
class ModelSource:
    """What a model directory holds, as far as the export needs to know."""

    path: Path
    library: Library
    model_type: str
    architectures: tuple[str, ...]
    modality: Modality
    config_labels: tuple[str, ...] | None

    def has_classifier_for(self, task: str) -> bool:
        suffix = _CLASSIFIER_SUFFIXES.get(task)
        return suffix is not None and any(a.endswith(suffix) for a in self.architectures)


def inspect_model_dir(path: Path, task: str) -> ModelSource:
    """Check ``path`` is an exportable model for ``task``; raise a one-line error otherwise."""
    config = _read_config(path)
    model_type = str(config.get("model_type") or "")
    if not model_type:
        raise ModelSourceError(f"{path}/config.json names no model_type; it is not a Hugging Face model")
    library: Library = "sentence_transformers" if (path / "modules.json").is_file() else "transformers"
    _require_weights(path)
    _require_known_to_transformers(model_type)
    _require_exportable(model_type, task)
    modality = _modality(path)
    if task == "image-classification" and modality != "image":
        raise UsageError(f"{path} is a text model; use --task text-classification or feature-extraction")
    if task == "text-classification" and modality != "text":
        raise UsageError(f"{path} is an image model; use --task image-classification or feature-extraction")
    return ModelSource(
        path=path,
        library=library,
        model_type=model_type,
        architectures=tuple(config.get("architectures") or ()),
        modality=modality,
        config_labels=_config_labels(config),
    )


def _read_config(path: Path) -> dict[str, Any]:
    if not path.exists():
        raise ModelSourceError(f"model directory {path} not found")
    if not path.is_dir():
        raise ModelSourceError(f"{path} is not a directory; pass the folder a model was saved to")
    config_path = path / "config.json"
    if not config_path.is_file():
        raise ModelSourceError(
            f"{path} is not a model directory (no config.json); pass a folder written by save_pretrained"
        )
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelSourceError(f"{config_path} cannot be read as JSON: {exc}") from exc
    if not isinstance(config, dict):
        raise ModelSourceError(f"{config_path} is not a model configuration")
    return config


def _require_weights(path: Path) -> None:
    if not any((path / name).is_file() for name in _WEIGHT_FILES):
        raise ModelSourceError(f"{path} holds no model weights (model.safetensors or pytorch_model.bin)")


def _require_known_to_transformers(model_type: str) -> None:
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING_NAMES

    if model_type not in CONFIG_MAPPING_NAMES:
        raise UnsupportedArchitectureError(
            f"architecture {model_type!r} is not supported: this transformers version does not know it"
        )


def _require_exportable(model_type: str, task: str) -> None:
    import optimum.exporters.onnx.model_configs  # noqa: F401  (registers the ONNX configs)
    from optimum.exporters.tasks import TasksManager

    try:
        tasks = TasksManager.get_supported_tasks_for_model_type(
            model_type, "onnx", library_name="transformers"
        )
    except KeyError as exc:
        raise UnsupportedArchitectureError(
            f"architecture {model_type!r} is not supported for ONNX export by optimum; "
            "choose a model of a supported architecture (BERT, RoBERTa, ViT, ...)"
        ) from exc
    if task not in tasks:
        raise UnsupportedArchitectureError(
            f"architecture {model_type!r} cannot be exported for {task} "
            f"(it supports: {', '.join(sorted(tasks))})"
        )


def _modality(path: Path) -> Modality:
    processor = path / "preprocessor_config.json"
    if processor.is_file():
        try:
            data = json.loads(processor.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise ModelSourceError(f"{processor} cannot be read as JSON: {exc}") from exc
        if isinstance(data, dict) and "image_mean" in data:
            return "image"
    if (
        (path / "tokenizer.json").is_file()
        or (path / "vocab.txt").is_file()
        or (path / "tokenizer_config.json").is_file()
    ):
        return "text"
    raise ModelSourceError(
        f"{path} has neither a tokenizer nor an image processor; save one next to the model"
    )


def _config_labels(config: dict[str, Any]) -> tuple[str, ...] | None:
    id2label = config.get("id2label")
    if not isinstance(id2label, dict) or not id2label:
        return None
    try:
        ordered = [str(id2label[key]) for key in sorted(id2label, key=lambda k: int(k))]
    except (TypeError, ValueError):
        return None
    return tuple(ordered)
