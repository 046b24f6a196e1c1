"""Fit a linear classification head on fixed embeddings (IT's default head; sites reuse it)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np

from export.graphs import HeadWeights


@contextmanager
def torch_threads(threads: int) -> Iterator[None]:
    """Run torch on ``threads`` intra-op threads inside the block (0: leave torch's own setting).

    torch's setting is process-wide: it is put back when the block ends, however it ends.
    """
    import torch

    if threads <= 0:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def fit_linear_head(
    embeddings: np.ndarray,
    label_indices: Sequence[int],
    num_labels: int,
    seed: int = 0,
    l2: float = 1e-3,
    max_iterations: int = 200,
    threads: int = 1,
) -> HeadWeights:
    """Class-balanced, L2-regularised softmax regression, fitted full-batch with L-BFGS on
    ``threads`` torch threads (:func:`torch_threads`).

    Balanced weights keep a rare class (a site's few missing-part reports) from
    being ignored; L2 keeps the head stable with only a handful of labels.
    """
    import torch

    features = torch.from_numpy(np.ascontiguousarray(embeddings, dtype=np.float32))
    targets = torch.as_tensor(np.asarray(label_indices, dtype=np.int64))
    counts = torch.bincount(targets, minlength=num_labels).float()
    linear = starting_head(features.shape[1], num_labels, seed, prior=None)
    loss_fn = torch.nn.CrossEntropyLoss(weight=class_balancing(counts, num_labels))
    return _minimise(
        linear,
        lambda: loss_fn(linear(features), targets) + l2 * linear.weight.pow(2).sum(),
        max_iterations,
        threads,
    )


def fit_weighted_linear_head(
    embeddings: np.ndarray,
    label_indices: np.ndarray,
    sample_weights: np.ndarray,
    num_labels: int,
    *,
    seed: int = 0,
    l2: float = 1e-3,
    max_iterations: int = 200,
    prior: HeadWeights | None = None,
    threads: int = 1,
) -> HeadWeights:
    """``fit_linear_head`` with a weight per example and, optionally, a prior head.

    A class's balancing weight comes from its total example weight, and the loss is the
    weighted mean over examples, so an example of weight 2 counts exactly as two copies of
    it would, and all-ones weights give ``fit_linear_head``'s objective and starting point.

    With a ``prior`` (the parent's head) the fit starts from it and the L2 penalty pulls its
    weights and its biases toward the prior's instead of toward zero: a site's few labels adjust
    what IT's head learned rather than replace it. The biases carry how often IT saw each class;
    left free, a handful of class-balanced site labels pull them toward "every class equally
    likely" (bench/few_labels.py measures what that costs).
    """
    import torch

    features_np, targets_np, weights_np = _checked(embeddings, label_indices, sample_weights, num_labels)
    features = torch.from_numpy(features_np)
    targets = torch.from_numpy(targets_np)
    weights = torch.from_numpy(weights_np.astype(np.float32))
    totals = torch.zeros(num_labels).index_add_(0, targets, weights)
    per_example = weights * class_balancing(totals, num_labels)[targets]
    normaliser = per_example.sum()
    linear = starting_head(features.shape[1], num_labels, seed, prior)
    anchor = linear.weight.detach().clone() if prior is not None else torch.zeros_like(linear.weight)
    bias_anchor = linear.bias.detach().clone() if prior is not None else None

    def loss() -> torch.Tensor:
        losses = torch.nn.functional.cross_entropy(linear(features), targets, reduction="none")
        value = (per_example * losses).sum() / normaliser + l2 * (linear.weight - anchor).pow(2).sum()
        if bias_anchor is not None:
            value = value + l2 * (linear.bias - bias_anchor).pow(2).sum()
        return value

    return _minimise(linear, loss, max_iterations, threads)


def _checked(
    embeddings: np.ndarray, label_indices: np.ndarray, sample_weights: np.ndarray, num_labels: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    features = np.ascontiguousarray(embeddings, dtype=np.float32)
    targets = np.asarray(label_indices, dtype=np.int64)
    weights = np.asarray(sample_weights, dtype=np.float64)
    if features.ndim != 2 or targets.shape != (len(features),) or weights.shape != targets.shape:
        raise ValueError("embeddings [n, dim], label_indices [n] and sample_weights [n] must agree")
    if len(targets) and (targets.min() < 0 or targets.max() >= num_labels):
        raise ValueError(f"label indices must lie in [0, {num_labels})")
    if not np.all(np.isfinite(weights)) or np.any(weights < 0) or not np.any(weights > 0):
        raise ValueError("sample_weights must be finite, >= 0, and not all zero")
    return features, targets, weights


def class_balancing(totals: Any, num_labels: int) -> Any:
    """Per-class weights that make every present class count as much as the others."""
    import torch

    return torch.where(
        totals > 0, totals.sum() / (num_labels * totals.clamp(min=1e-12)), torch.zeros_like(totals)
    )


def starting_head(dim: int, num_labels: int, seed: int, prior: HeadWeights | None) -> Any:
    import torch

    linear = torch.nn.Linear(dim, num_labels)
    with torch.no_grad():
        if prior is None:
            linear.weight.normal_(0.0, 0.01, generator=torch.Generator().manual_seed(seed))
            linear.bias.zero_()
        else:
            linear.weight.copy_(torch.from_numpy(np.asarray(prior.weight, dtype=np.float32)))
            linear.bias.copy_(torch.from_numpy(np.asarray(prior.bias, dtype=np.float32)))
    return linear


def _minimise(linear: Any, loss: Callable[[], Any], max_iterations: int, threads: int) -> HeadWeights:
    """L-BFGS on ``threads`` torch threads: a head's steps are too small to share out, and with the
    cores busy elsewhere more threads make each of them wait (bench/head_fit_threads.py)."""
    import torch

    with torch_threads(threads):
        optimizer = torch.optim.LBFGS(
            linear.parameters(), lr=1.0, max_iter=max_iterations, line_search_fn="strong_wolfe"
        )

        def closure() -> Any:
            optimizer.zero_grad()
            value = loss()
            value.backward()
            return value

        optimizer.step(closure)
    return HeadWeights(linear.weight.detach().numpy().copy(), linear.bias.detach().numpy().copy())
