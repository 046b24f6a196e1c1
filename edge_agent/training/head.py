"""Fit a classification head on cached embeddings: class-balanced, L2-regularised softmax regression.

The L2 strength is chosen by stratified, seeded k-fold cross-validation on the TRAINING labels
only: every value on the grid is fitted on k-1 folds and scored on the one left out, so every
label is scored once. Of the values whose accuracy is within one standard error of the best,
the most regularised wins (the "one standard error" rule: with a few labels the best score is
partly luck, and the stronger pull toward the parent, or toward zero, is the safer bet). The
head is then refitted on all training labels with it. The same embeddings, labels and seed give
the same head. Above ``cv_max_labels`` one stratified validation split stands in for the folds
(it then holds enough labels on its own, and the fit costs one pass per grid value).
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from export.graphs import HeadWeights
from export.head_training import fit_linear_head
from genba.errors import ConfigError


@dataclass(frozen=True)
class HeadTrainingConfig:
    l2_grid: tuple[float, ...] = (1e-5, 1e-4, 1e-3, 1e-2, 1e-1)
    #: With a parent head to start from, L2 pulls toward it: larger values keep more of IT's head.
    anchored_l2_grid: tuple[float, ...] = (1e-3, 1e-2, 1e-1, 1.0, 10.0)
    max_iterations: int = 200
    validation_fraction: float = 0.2
    #: Cross-validation folds (fewer when no class has that many labels).
    folds: int = 5
    #: Above this many labels, one validation split (``validation_fraction``) replaces the folds.
    cv_max_labels: int = 500
    #: Used when the labels are too few to hold any out (each class needs two to lend one).
    default_l2: float = 1e-3
    anchored_default_l2: float = 1e-1
    #: torch threads for the fit (0: torch's default, one per core). A head is a few hundred
    #: labels by a few hundred numbers: more threads save nothing on it, and when the cores are
    #: shared (the agent serving, other processes fitting) their waiting turns each of the fit's
    #: thousands of small steps into a wait for the cores (bench/head_fit_threads.py).
    threads: int = 1

    def __post_init__(self) -> None:
        problems = []
        for name, grid in (("l2_grid", self.l2_grid), ("anchored_l2_grid", self.anchored_l2_grid)):
            if not grid or any(not (math.isfinite(v) and v >= 0) for v in grid):
                problems.append(f"{name} must hold one or more finite values >= 0")
        if self.max_iterations < 1:
            problems.append("max_iterations must be >= 1")
        if not 0.0 <= self.validation_fraction < 1.0:
            problems.append("validation_fraction must be >= 0 and < 1")
        if self.folds < 2:
            problems.append("folds must be >= 2")
        if self.cv_max_labels < 0:
            problems.append("cv_max_labels must be >= 0")
        if not (math.isfinite(self.default_l2) and self.default_l2 >= 0):
            problems.append("default_l2 must be a finite value >= 0")
        if self.threads < 0:
            problems.append("threads must be >= 0 (0 = torch's default, one per core)")
        if problems:
            raise ConfigError(problems)


@dataclass(frozen=True)
class HeadFit:
    weights: HeadWeights
    report: dict[str, Any]


def stratified_split(label_indices: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train, validation) positions: about ``fraction`` of each class held out, one kept for training."""
    rng = np.random.default_rng(seed)
    train: list[int] = []
    validation: list[int] = []
    for label in np.unique(label_indices):
        positions = np.flatnonzero(label_indices == label)
        rng.shuffle(positions)
        held = min(int(round(len(positions) * fraction)), len(positions) - 1)
        validation.extend(positions[:held].tolist())
        train.extend(positions[held:].tolist())
    return np.array(sorted(train), dtype=np.int64), np.array(sorted(validation), dtype=np.int64)


def fit_head(
    embeddings: np.ndarray,
    label_indices: np.ndarray,
    num_labels: int,
    *,
    seed: int = 0,
    config: HeadTrainingConfig | None = None,
    prior: HeadWeights | None = None,
) -> HeadFit:
    """Choose L2 by cross-validation on the training labels, then refit on all of them.

    ``prior``: the parent's head. The fit starts from it and is pulled toward it, so a
    handful of site labels refine IT's head instead of replacing it (measured in
    bench/few_labels.py: from scratch, 20 labels per class fall short of the default head).
    """
    config = config or HeadTrainingConfig()
    start = time.perf_counter()
    features = np.ascontiguousarray(embeddings, dtype=np.float32)
    targets = np.asarray(label_indices, dtype=np.int64)
    folds = _folds(targets, config, seed)
    grid_values = config.anchored_l2_grid if prior is not None else config.l2_grid
    grid: list[dict[str, Any]] = []
    scored = sum(len(validation) for _, validation in folds)
    if folds:
        for l2 in grid_values:
            right, loss_sum = 0.0, 0.0
            for train, validation in folds:
                head = _fit(features[train], targets[train], num_labels, seed, l2, config, prior)
                accuracy, loss = score_head(head, features[validation], targets[validation])
                right, loss_sum = right + accuracy * len(validation), loss_sum + loss * len(validation)
            grid.append(
                {
                    "l2": l2,
                    "validation_accuracy": round(right / scored, 6),
                    "validation_loss": round(loss_sum / scored, 6),
                }
            )
        best = _one_standard_error(grid, scored)
        chosen_l2, validation_accuracy = float(best["l2"]), best["validation_accuracy"]
    else:
        chosen_l2 = config.default_l2 if prior is None else config.anchored_default_l2
        validation_accuracy = None
    weights = _fit(features, targets, num_labels, seed, chosen_l2, config, prior)
    report = {
        "examples": int(len(targets)),
        "folds": len(folds),
        "validation_size": int(scored),
        "validation_accuracy": validation_accuracy,
        "chosen": {"l2": chosen_l2, "max_iterations": config.max_iterations},
        "selection": _selection(len(folds)),
        "grid": grid,
        "refit_on": "all training labels",
        "anchored_to_parent": prior is not None,
        "train_accuracy": score_head(weights, features, targets)[0],
        "seed": seed,
        "config": {**asdict(config), "l2_grid": list(grid_values)},
        "seconds": round(time.perf_counter() - start, 4),
    }
    return HeadFit(weights=weights, report=report)


def _folds(targets: np.ndarray, config: HeadTrainingConfig, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """(train, validation) positions per fold; none when the labels are too few to hold any out."""
    if len(np.unique(targets)) < 2:
        return []
    if len(targets) > config.cv_max_labels:
        train, validation = stratified_split(targets, config.validation_fraction, seed)
        return [(train, validation)] if len(validation) else []
    return stratified_folds(targets, config.folds, seed)


def stratified_folds(targets: np.ndarray, folds: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """(train, held-out) positions of ``folds`` seeded, stratified folds (fewer when no class has
    that many labels; none when no class has two): every label is held out exactly once."""
    counts = np.bincount(targets)
    k = min(folds, int(counts.max()))
    if k < 2:
        return []
    rng = np.random.default_rng(seed)
    fold_of = np.empty(len(targets), dtype=np.int64)
    offset = 0
    for label in np.unique(targets):
        positions = np.flatnonzero(targets == label)
        rng.shuffle(positions)
        # Rotating the start spreads classes with fewer labels than folds over different folds.
        fold_of[positions] = (offset + np.arange(len(positions))) % k
        offset += len(positions)
    return [(np.flatnonzero(fold_of != f), np.flatnonzero(fold_of == f)) for f in range(k)]


def _one_standard_error(grid: list[dict[str, Any]], scored: int) -> dict[str, Any]:
    """The most regularised grid value whose accuracy is within one standard error of the best."""
    best = max(row["validation_accuracy"] for row in grid)
    error = math.sqrt(best * (1.0 - best) / scored)
    near = [row for row in grid if row["validation_accuracy"] >= best - error - 1e-12]
    return max(near, key=lambda row: (row["l2"], row["validation_accuracy"], -row["validation_loss"]))


def _selection(folds: int) -> str:
    if folds == 0:
        return "default (too few labels to hold out)"
    how = "one validation split" if folds == 1 else f"{folds}-fold cross-validation"
    return f"{how}: the most regularised L2 within one standard error of the best accuracy"


def _fit(
    features: np.ndarray,
    targets: np.ndarray,
    num_labels: int,
    seed: int,
    l2: float,
    config: HeadTrainingConfig,
    prior: HeadWeights | None = None,
) -> HeadWeights:
    iterations, threads = config.max_iterations, config.threads
    if prior is not None:
        from export.head_training import fit_weighted_linear_head

        ones = np.ones(len(targets))
        return fit_weighted_linear_head(
            features, targets, ones, num_labels, seed=seed, l2=l2, max_iterations=iterations, prior=prior,
            threads=threads,
        )  # fmt: skip
    return fit_linear_head(
        features, targets.tolist(), num_labels, seed=seed, l2=l2, max_iterations=iterations, threads=threads
    )


def score_head(head: HeadWeights, features: np.ndarray, targets: np.ndarray) -> tuple[float, float]:
    """(accuracy, mean cross-entropy) of a head on labelled embeddings."""
    logits = head_logits(head, features)
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_probabilities = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    loss = float(-log_probabilities[np.arange(len(targets)), targets].mean())
    accuracy = float(answered_right(head, features, targets, logits).mean())
    return round(accuracy, 6), round(loss, 6)


def answered_right(
    head: HeadWeights, features: np.ndarray, targets: np.ndarray, logits: np.ndarray | None = None
) -> np.ndarray:
    """Per labelled embedding: is the head's top answer its label."""
    logits = head_logits(head, features) if logits is None else logits
    return np.asarray(np.argmax(logits, axis=1) == targets)


def head_logits(head: HeadWeights, features: np.ndarray) -> np.ndarray:
    """The head's logits in float64."""
    return features.astype(np.float64) @ head.weight.T.astype(np.float64) + head.bias.astype(np.float64)
