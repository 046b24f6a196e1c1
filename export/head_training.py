"""Fit a linear classification head on fixed embeddings (IT's default head; sites reuse it)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from export.graphs import HeadWeights


def fit_linear_head(
    embeddings: np.ndarray,
    label_indices: Sequence[int],
    num_labels: int,
    seed: int = 0,
    l2: float = 1e-3,
    max_iterations: int = 200,
) -> HeadWeights:
    """Class-balanced, L2-regularised softmax regression, fitted full-batch with L-BFGS.

    Balanced weights keep a rare class (a site's few missing-part reports) from
    being ignored; L2 keeps the head stable with only a handful of labels.
    """
    import torch

    generator = torch.Generator().manual_seed(seed)
    features = torch.from_numpy(np.ascontiguousarray(embeddings, dtype=np.float32))
    targets = torch.as_tensor(np.asarray(label_indices, dtype=np.int64))
    counts = torch.bincount(targets, minlength=num_labels).float()
    class_weights = torch.where(
        counts > 0, counts.sum() / (num_labels * counts.clamp(min=1)), torch.zeros_like(counts)
    )
    linear = torch.nn.Linear(features.shape[1], num_labels)
    with torch.no_grad():
        linear.weight.normal_(0.0, 0.01, generator=generator)
        linear.bias.zero_()
    optimizer = torch.optim.LBFGS(
        linear.parameters(), lr=1.0, max_iter=max_iterations, line_search_fn="strong_wolfe"
    )
    loss_fn = torch.nn.CrossEntropyLoss(weight=class_weights)

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = loss_fn(linear(features), targets) + l2 * linear.weight.pow(2).sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    return HeadWeights(linear.weight.detach().numpy().copy(), linear.bias.detach().numpy().copy())
