"""The manifest's content: runtime versions, reference statistics, lineage."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from importlib import metadata
from typing import Any

import numpy as np

from genba.runtime.model import softmax

_VERSIONED = (
    "genba",
    "onnxruntime-gpu",
    "onnxruntime",
    "onnx",
    "torch",
    "transformers",
    "optimum",
    "optimum-onnx",
)


def runtime_versions() -> dict[str, str]:
    versions: dict[str, str] = {}
    for name in _VERSIONED:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def reference_statistics(
    outputs: dict[str, np.ndarray], labels: Sequence[str] | None, source: str
) -> dict[str, Any]:
    """What "normal" looks like on the validation data: the starting point for drift checks."""
    embedding = outputs["embedding"].astype(np.float64) if "embedding" in outputs else None
    stats: dict[str, Any] = {"source": source, "count": int(len(next(iter(outputs.values()))))}
    if embedding is not None:
        norms = np.linalg.norm(embedding, axis=1)
        stats["embedding"] = {
            "dim": int(embedding.shape[1]),
            "mean": _floats(embedding.mean(axis=0)),
            "std": _floats(embedding.std(axis=0)),
            "norm_quantiles": _quantiles(norms),
        }
    if "logits" in outputs and labels:
        probabilities = softmax(outputs["logits"].astype(np.float64))
        top = probabilities.max(axis=1)
        counts, edges = np.histogram(top, bins=10, range=(0.0, 1.0))
        predicted = np.argmax(probabilities, axis=1)
        stats["scores"] = {
            "quantiles": _quantiles(top),
            "histogram": {"edges": _floats(edges), "counts": [int(c) for c in counts]},
        }
        stats["predicted_label_counts"] = {
            label: int((predicted == i).sum()) for i, label in enumerate(labels)
        }
    return stats


def lineage(source: dict[str, Any], parent: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "parent": parent,
        "federated_run": None,
        "round": None,
        "rollback": False,
        "source": source,
    }


def timestamp(now: dt.datetime | None = None) -> str:
    moment = now or dt.datetime.now(dt.UTC)
    return moment.astimezone(dt.UTC).isoformat(timespec="seconds")


def _quantiles(values: np.ndarray) -> dict[str, float]:
    points = {"p05": 5, "p25": 25, "p50": 50, "p75": 75, "p95": 95}
    return {name: round(float(np.percentile(values, q)), 6) for name, q in points.items()}


def _floats(values: np.ndarray) -> list[float]:
    return [round(float(v), 6) for v in values]
