"""The labelling queue's choice: most uncertain first, no near-duplicates, deterministic."""

from __future__ import annotations

import numpy as np
import pytest

from edge_agent.selection import margins, select_for_labelling


def _probabilities(*rows: tuple[float, ...]) -> np.ndarray:
    return np.array(rows, dtype=np.float64)


def test_margins_are_top_one_minus_top_two() -> None:
    found = margins(_probabilities((0.7, 0.2, 0.1), (0.4, 0.35, 0.25), (0.1, 0.1, 0.8)))
    assert found == pytest.approx([0.5, 0.05, 0.7])


def test_the_smallest_margin_comes_first() -> None:
    probabilities = _probabilities((0.9, 0.1), (0.55, 0.45), (0.7, 0.3), (0.5, 0.5))
    embeddings = np.eye(4)  # all orthogonal: diversity never skips
    assert select_for_labelling(probabilities, embeddings, 4) == [3, 1, 2, 0]
    assert select_for_labelling(probabilities, embeddings, 2) == [3, 1]


def test_near_duplicates_of_a_chosen_item_are_skipped() -> None:
    probabilities = _probabilities((0.5, 0.5), (0.51, 0.49), (0.6, 0.4), (0.9, 0.1))
    embeddings = np.array([[1.0, 0.0], [0.99, 0.05], [0.0, 1.0], [0.7, 0.7]])
    # Item 1 is nearly item 0 (cosine > 0.99); item 3 is 0.71 from both others.
    assert select_for_labelling(probabilities, embeddings, 3, diversity=0.9) == [0, 2, 3]
    assert select_for_labelling(probabilities, embeddings, 3, diversity=1.0) == [0, 1, 2]


def test_fewer_than_k_come_back_only_when_the_rest_are_near_duplicates() -> None:
    probabilities = _probabilities((0.5, 0.5), (0.6, 0.4), (0.7, 0.3))
    embeddings = np.array([[1.0, 0.0], [2.0, 0.01], [3.0, 0.0]])  # one direction, three lengths
    assert select_for_labelling(probabilities, embeddings, 3) == [0]


def test_ties_keep_input_order_and_the_result_is_repeatable() -> None:
    rng = np.random.default_rng(3)
    probabilities = np.tile([[0.5, 0.3, 0.2]], (50, 1))
    embeddings = rng.normal(size=(50, 16))
    first = select_for_labelling(probabilities, embeddings, 10, diversity=0.5)
    assert first == select_for_labelling(probabilities.copy(), embeddings.copy(), 10, diversity=0.5)
    assert first == sorted(first)
    assert len(first) == len(set(first)) == 10


def test_chosen_items_are_never_closer_than_the_diversity_bound() -> None:
    rng = np.random.default_rng(7)
    embeddings = rng.normal(size=(200, 8))
    logits = rng.normal(size=(200, 4))
    probabilities = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    chosen = select_for_labelling(probabilities, embeddings, 30, diversity=0.6)
    unit = embeddings[chosen] / np.linalg.norm(embeddings[chosen], axis=1, keepdims=True)
    similarity = unit @ unit.T
    np.fill_diagonal(similarity, -1.0)
    assert similarity.max() <= 0.6


def test_zero_vectors_and_k_zero_are_handled() -> None:
    probabilities = _probabilities((0.5, 0.5), (0.6, 0.4))
    assert select_for_labelling(probabilities, np.zeros((2, 3)), 2) == [0, 1]
    assert select_for_labelling(probabilities, np.eye(2), 0) == []
    assert select_for_labelling(np.zeros((0, 2)), np.zeros((0, 3)), 5) == []


@pytest.mark.parametrize(
    ("probabilities", "embeddings", "k", "diversity", "message"),
    [
        (np.zeros(3), np.zeros((3, 2)), 1, 0.9, "probabilities must be"),
        (np.full((2, 2), np.nan), np.zeros((2, 2)), 1, 0.9, "finite"),
        (np.zeros((3, 2)), np.zeros((2, 2)), 1, 0.9, "one row per probability row"),
        (np.zeros((2, 2)), np.zeros((2, 2)), -1, 0.9, "k must be"),
        (np.zeros((2, 2)), np.zeros((2, 2)), 1, 1.5, "diversity must be"),
    ],
)
def test_bad_arguments_are_refused(
    probabilities: np.ndarray, embeddings: np.ndarray, k: int, diversity: float, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        select_for_labelling(probabilities, embeddings, k, diversity=diversity)
