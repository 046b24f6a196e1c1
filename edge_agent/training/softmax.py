"""Class-balanced, L2-regularised softmax regression with example weights and an optional prior head."""

from __future__ import annotations

import numpy as np

from export.graphs import HeadWeights


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
) -> HeadWeights:
    """Class-balanced, L2-regularised softmax regression with a weight per example (L-BFGS).

    A class's balancing weight comes from its total example weight, and the loss is the
    weighted mean over examples, so an example of weight 2 counts exactly as two copies of
    it would, and all-ones weights give ``export.head_training.fit_linear_head``'s objective
    and starting point.

    With a ``prior`` (the parent's head) the fit starts from it and the L2 penalty pulls
    toward it instead of toward zero: a site's few labels adjust what IT's head learned
    rather than replace it.
    """
    import torch

    features_np = np.ascontiguousarray(embeddings, dtype=np.float32)
    targets_np = np.asarray(label_indices, dtype=np.int64)
    weights_np = np.asarray(sample_weights, dtype=np.float64)
    if (
        features_np.ndim != 2
        or targets_np.shape != (len(features_np),)
        or weights_np.shape != targets_np.shape
    ):
        raise ValueError("embeddings [n, dim], label_indices [n] and sample_weights [n] must agree")
    if len(targets_np) and (targets_np.min() < 0 or targets_np.max() >= num_labels):
        raise ValueError(f"label indices must lie in [0, {num_labels})")
    if not np.all(np.isfinite(weights_np)) or np.any(weights_np < 0) or not np.any(weights_np > 0):
        raise ValueError("sample_weights must be finite, >= 0, and not all zero")

    generator = torch.Generator().manual_seed(seed)
    features = torch.from_numpy(features_np)
    targets = torch.from_numpy(targets_np)
    weights = torch.from_numpy(weights_np.astype(np.float32))
    totals = torch.zeros(num_labels).index_add_(0, targets, weights)
    class_weights = torch.where(
        totals > 0, totals.sum() / (num_labels * totals.clamp(min=1e-12)), torch.zeros_like(totals)
    )
    per_example = weights * class_weights[targets]
    normaliser = per_example.sum()
    linear = torch.nn.Linear(features.shape[1], num_labels)
    with torch.no_grad():
        if prior is None:
            linear.weight.normal_(0.0, 0.01, generator=generator)
            linear.bias.zero_()
        else:
            linear.weight.copy_(torch.from_numpy(np.asarray(prior.weight, dtype=np.float32)))
            linear.bias.copy_(torch.from_numpy(np.asarray(prior.bias, dtype=np.float32)))
    anchor = linear.weight.detach().clone() if prior is not None else torch.zeros_like(linear.weight)
    optimizer = torch.optim.LBFGS(
        linear.parameters(), lr=1.0, max_iter=max_iterations, line_search_fn="strong_wolfe"
    )

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        losses = torch.nn.functional.cross_entropy(linear(features), targets, reduction="none")
        loss = (per_example * losses).sum() / normaliser + l2 * (linear.weight - anchor).pow(2).sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    return HeadWeights(linear.weight.detach().numpy().copy(), linear.bias.detach().numpy().copy())
