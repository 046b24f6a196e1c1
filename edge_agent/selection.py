"""The labelling queue's choice: the inputs the current model is least sure of, without near-duplicates.

Items are ranked by margin (top probability minus the runner-up, smallest first: the
model hesitates most between two classes there), then taken greedily in that order,
skipping any whose embedding is closer than ``diversity`` (cosine) to one already chosen,
so operators are not asked the same question twice. Ties keep input order, so the same
arrays always give the same queue. NumPy only: the agent can rank without torch.
"""

from __future__ import annotations

import math

import numpy as np


def margins(probabilities: np.ndarray) -> np.ndarray:
    """Top-1 minus top-2 probability per row (a single-class row's margin is its probability)."""
    scores = _probabilities(probabilities)
    if scores.shape[1] == 1:
        return scores[:, 0].copy()
    top_two = np.partition(scores, scores.shape[1] - 2, axis=1)[:, -2:]
    return top_two[:, 1] - top_two[:, 0]


def select_for_labelling(
    probabilities: np.ndarray, embeddings: np.ndarray, k: int, *, diversity: float = 0.9
) -> list[int]:
    """Row positions of up to ``k`` items to ask operators about, most uncertain first.

    An item whose cosine similarity to an item already chosen exceeds ``diversity`` is
    skipped, so fewer than ``k`` come back only when every remaining item is such a
    near-duplicate. ``diversity=1`` turns the check off (ranking by margin alone).
    """
    scores = _probabilities(probabilities)
    vectors = np.asarray(embeddings, dtype=np.float64)
    if vectors.ndim != 2 or vectors.shape[0] != scores.shape[0]:
        raise ValueError(
            f"embeddings must be [n, dim] with one row per probability row; got {vectors.shape} "
            f"for {scores.shape[0]} rows"
        )
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 0:
        raise ValueError(f"k must be an integer >= 0; got {k!r}")
    if not (isinstance(diversity, int | float) and math.isfinite(diversity) and -1.0 <= diversity <= 1.0):
        raise ValueError(f"diversity must be a cosine similarity in [-1, 1]; got {diversity!r}")
    if not np.all(np.isfinite(vectors)):
        raise ValueError("embeddings must be finite")
    order = np.argsort(margins(scores), kind="stable")  # stable: ties keep input order
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    unit = vectors / np.where(norms > 0, norms, 1.0)  # a zero vector is similar to nothing
    closest = np.full(len(unit), -np.inf)  # each item's highest similarity to anything chosen
    chosen: list[int] = []
    for position in order:
        if len(chosen) >= k:
            break
        if closest[position] > diversity:
            continue
        chosen.append(int(position))
        np.maximum(closest, unit @ unit[position], out=closest)
    return chosen


def _probabilities(probabilities: np.ndarray) -> np.ndarray:
    scores = np.asarray(probabilities, dtype=np.float64)
    if scores.ndim != 2 or scores.shape[1] < 1:
        raise ValueError(f"probabilities must be [n, classes]; got shape {scores.shape}")
    if not np.all(np.isfinite(scores)):
        raise ValueError("probabilities must be finite")
    return scores
