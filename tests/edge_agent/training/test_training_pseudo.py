"""Confident pseudo-labels and the weighted head fit that counts them for less."""

from __future__ import annotations

import numpy as np
import pytest

from edge_agent.training.head import fit_head
from edge_agent.training.pseudo import (
    confident_pseudo_labels,
    fit_head_with_pseudo_labels,
    fit_weighted_linear_head,
)
from export.head_training import fit_linear_head


def _blobs(per_class: int, seed: int, classes: int = 3, dim: int = 8) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = np.eye(classes, dim) * 3.0
    labels = np.repeat(np.arange(classes), per_class)
    return (centres[labels] + rng.normal(size=(len(labels), dim))).astype(np.float32), labels


def _logits(features: np.ndarray, head: object) -> np.ndarray:
    return features @ head.weight.T + head.bias  # type: ignore[attr-defined]


def test_confident_items_and_their_top_class_are_chosen() -> None:
    probabilities = np.array([[0.95, 0.05], [0.6, 0.4], [0.02, 0.98], [0.9, 0.1]])
    indices, labels = confident_pseudo_labels(probabilities, 0.9)
    assert indices.tolist() == [0, 2, 3]
    assert labels.tolist() == [0, 1, 0]
    none, no_labels = confident_pseudo_labels(probabilities, 0.99)
    assert none.tolist() == [] and no_labels.tolist() == []


@pytest.mark.parametrize("threshold", [0.0, 1.5, float("nan")])
def test_a_threshold_outside_zero_to_one_is_refused(threshold: float) -> None:
    with pytest.raises(ValueError, match="threshold"):
        confident_pseudo_labels(np.full((2, 2), 0.5), threshold)


def test_unit_weights_give_fit_linear_heads_head() -> None:
    features, labels = _blobs(10, seed=1)
    labels[:4] = 0  # unbalanced, so class balancing matters
    ours = fit_weighted_linear_head(features, labels, np.ones(len(labels)), 3, seed=2, l2=1e-2)
    reference = fit_linear_head(features, labels.tolist(), 3, seed=2, l2=1e-2)
    np.testing.assert_allclose(_logits(features, ours), _logits(features, reference), atol=1e-2)


def test_a_weight_of_two_counts_as_two_copies() -> None:
    features, labels = _blobs(6, seed=4)
    weights = np.ones(len(labels))
    weights[[0, 7]] = 2.0
    weighted = fit_weighted_linear_head(features, labels, weights, 3, seed=0, l2=1e-2)
    copies = np.concatenate([np.arange(len(labels)), [0, 7]])
    duplicated = fit_linear_head(features[copies], labels[copies].tolist(), 3, seed=0, l2=1e-2)
    np.testing.assert_allclose(_logits(features, weighted), _logits(features, duplicated), atol=1e-2)


def test_a_smaller_weight_pulls_the_head_less() -> None:
    features, labels = _blobs(8, seed=5)
    # Points that sit in class 0's region, pseudo-labelled class 1: the heavier they weigh,
    # the more class-1 probability the head gives there.
    wrong = features[labels == 0][:4]
    pulled = []
    for weight in (0.1, 0.9):
        fit = fit_head_with_pseudo_labels(
            features, labels, wrong, np.ones(4, dtype=np.int64), 3, pseudo_weight=weight, seed=0
        )
        logits = _logits(wrong, fit.weights)
        probabilities = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
        pulled.append(probabilities[:, 1].mean())
        assert fit.report["pseudo"]["count"] == 4 and fit.report["pseudo"]["weight"] == weight
    assert pulled[0] < pulled[1]


def test_without_pseudo_labels_the_head_is_fit_heads() -> None:
    features, labels = _blobs(6, seed=6)
    fit = fit_head_with_pseudo_labels(
        features, labels, np.zeros((0, features.shape[1])), np.zeros(0, dtype=np.int64), 3, seed=1
    )
    plain = fit_head(features, labels, 3, seed=1)
    np.testing.assert_array_equal(fit.weights.weight, plain.weights.weight)
    assert fit.report["pseudo"]["count"] == 0


def test_the_same_inputs_give_the_same_head() -> None:
    features, labels = _blobs(6, seed=8)
    extra, extra_labels = _blobs(3, seed=9)
    first = fit_head_with_pseudo_labels(features, labels, extra, extra_labels, 3, seed=3)
    second = fit_head_with_pseudo_labels(features, labels, extra, extra_labels, 3, seed=3)
    np.testing.assert_array_equal(first.weights.weight, second.weights.weight)


@pytest.mark.parametrize("weight", [0.0, 1.0, -0.5])
def test_pseudo_weight_must_be_below_one_and_positive(weight: float) -> None:
    features, labels = _blobs(4, seed=0)
    with pytest.raises(ValueError, match="pseudo_weight"):
        fit_head_with_pseudo_labels(features, labels, features, labels, 3, pseudo_weight=weight)


def test_bad_sample_weights_are_refused() -> None:
    features, labels = _blobs(4, seed=0)
    with pytest.raises(ValueError, match="sample_weights"):
        fit_weighted_linear_head(features, labels, np.zeros(len(labels)), 3)
    with pytest.raises(ValueError, match="must agree"):
        fit_weighted_linear_head(features, labels, np.ones(3), 3)
