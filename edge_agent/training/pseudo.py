"""Learning from unlabelled site inputs: confident pseudo-labels, counted for less than an operator's.

``confident_pseudo_labels`` keeps the unlabelled items a model scores at or above a
threshold, labelled with its top class. ``fit_head_with_pseudo_labels`` chooses L2 as
``fit_head`` does, on the operators' labels only (a pseudo-label never validates
anything), then fits one head on labelled + pseudo-labelled embeddings, each pseudo-label
weighted ``pseudo_weight`` (< 1) in a class-balanced, L2-regularised softmax regression
fitted with L-BFGS: ``export.head_training.fit_weighted_linear_head``. torch is imported only
by the fit.
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np

from edge_agent.training.head import HeadFit, HeadTrainingConfig, fit_head
from export.graphs import HeadWeights
from export.head_training import fit_weighted_linear_head

DEFAULT_PSEUDO_WEIGHT = 0.5


def confident_pseudo_labels(probabilities: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """``(indices, label_indices)``: rows whose top score is >= ``threshold``, and that top class."""
    scores = np.asarray(probabilities, dtype=np.float64)
    if scores.ndim != 2 or scores.shape[1] < 1:
        raise ValueError(f"probabilities must be [n, classes]; got shape {scores.shape}")
    if not np.all(np.isfinite(scores)):
        raise ValueError("probabilities must be finite")
    if not (isinstance(threshold, int | float) and math.isfinite(threshold) and 0.0 < threshold <= 1.0):
        raise ValueError(f"threshold must be in (0, 1]; got {threshold!r}")
    indices = np.flatnonzero(scores.max(axis=1) >= threshold).astype(np.int64)
    return indices, np.argmax(scores[indices], axis=1).astype(np.int64)


def fit_head_with_pseudo_labels(
    embeddings: np.ndarray,
    label_indices: np.ndarray,
    pseudo_embeddings: np.ndarray,
    pseudo_label_indices: np.ndarray,
    num_labels: int,
    *,
    pseudo_weight: float = DEFAULT_PSEUDO_WEIGHT,
    seed: int = 0,
    config: HeadTrainingConfig | None = None,
    prior: HeadWeights | None = None,
) -> HeadFit:
    """``fit_head`` on the operators' labels to choose L2, then one weighted fit with the pseudo-labels."""
    if not (
        isinstance(pseudo_weight, int | float) and math.isfinite(pseudo_weight) and 0 < pseudo_weight < 1
    ):
        raise ValueError(f"pseudo_weight must be in (0, 1); got {pseudo_weight!r}")
    start = time.perf_counter()
    base = fit_head(embeddings, label_indices, num_labels, seed=seed, config=config, prior=prior)
    pseudo_targets = np.asarray(pseudo_label_indices, dtype=np.int64)
    labelled = np.asarray(embeddings, dtype=np.float32)
    if not len(pseudo_targets):
        pseudo = _pseudo_report(pseudo_targets, pseudo_weight, num_labels)
        return HeadFit(base.weights, {**base.report, "pseudo": pseudo})
    pseudo_features = np.asarray(pseudo_embeddings, dtype=np.float32)
    if pseudo_features.shape != (len(pseudo_targets), labelled.shape[1]):
        raise ValueError("pseudo_embeddings must be [m, dim] with one row per pseudo-label")
    features = np.concatenate([labelled, pseudo_features])
    targets = np.concatenate([np.asarray(label_indices, dtype=np.int64), pseudo_targets])
    weights = np.concatenate([np.ones(len(labelled)), np.full(len(pseudo_targets), float(pseudo_weight))])
    chosen = base.report["chosen"]
    head = fit_weighted_linear_head(
        features,
        targets,
        weights,
        num_labels,
        seed=seed,
        l2=chosen["l2"],
        max_iterations=chosen["max_iterations"],
        prior=prior,
        threads=base.report["config"]["threads"],
    )
    report = {
        **base.report,
        "refit_on": "all training labels + weighted pseudo-labels",
        "pseudo": _pseudo_report(pseudo_targets, pseudo_weight, num_labels),
        "seconds": round(time.perf_counter() - start, 4),
    }
    return HeadFit(weights=head, report=report)


def _pseudo_report(targets: np.ndarray, weight: float, num_labels: int) -> dict[str, Any]:
    return {
        "count": int(len(targets)),
        "weight": float(weight),
        "class_counts": np.bincount(targets, minlength=num_labels).tolist()
        if len(targets)
        else [0] * num_labels,
    }
