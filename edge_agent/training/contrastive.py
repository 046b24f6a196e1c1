"""Contrastive few-shot fine-tuning of the encoder (SetFit's recipe), then a head on what it learned.

1. **Pairs from the site's training labels.** In each of ``contrastive_iterations`` passes, every
   labelled text is paired once with another text of its class (target similarity 1) and once with
   a text of another class (target 0), as SetFit generates its pairs; at most
   ``contrastive_max_pairs`` pairs, drawn evenly from the passes. A handful of labels per class
   gives hundreds of pairs: that is why the method pays with few labels.
2. **The encoder learns the site's classes.** The top ``last_k`` transformer blocks are trained
   for one epoch over the pairs with sentence-transformers' ``CosineSimilarityLoss`` (the cosine of
   the two pooled embeddings regressed on the target), AdamW at ``contrastive_learning_rate``.
3. **A head on the new embeddings.** :func:`edge_agent.training.head.fit_head` fits the head on the
   tuned encoder's embeddings of every training text: its L2 chosen by cross-validation on the
   training labels, starting from (and pulled toward) the parent's head.

The result is a :class:`~edge_agent.training.last_k.FineTuned`, re-exported through the same gates
as ``last-k`` (:func:`edge_agent.training.reexport.write_last_k_candidate`). Seeded: the same
labels, model and seed give the same weights on the same device.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

import numpy as np

from edge_agent.config import TrainingConfig
from edge_agent.training.errors import TooFewPairsError
from edge_agent.training.head import HeadTrainingConfig, fit_head
from edge_agent.training.last_k import Encode, FineTuned, freeze_trained, unfreeze_top
from edge_agent.training.source import SourceModel
from export.graphs import HeadWeights

#: Each class needs this many training labels for a pair of two different texts of it.
MIN_PER_CLASS = 2
#: Texts embedded at once when the head's training vectors are computed.
_EMBED_BATCH = 64


def contrastive_pairs(label_indices: np.ndarray, iterations: int, max_pairs: int, seed: int) -> np.ndarray:
    """(first, second, target) rows: per pass, each text with one of its class (1) and one of another (0).

    Raises :class:`TooFewPairsError` unless two or more classes each hold ``MIN_PER_CLASS`` texts.
    Classes with fewer still take part: their texts pair with other classes and, for positives, with
    the one other text they have, if any.
    """
    labels = np.asarray(label_indices, dtype=np.int64)
    require_pairs(labels)
    rng = np.random.default_rng(seed)
    members = {int(c): np.flatnonzero(labels == c) for c in np.unique(labels)}
    rows: list[tuple[int, int, int]] = []
    for _ in range(iterations):
        for anchor in rng.permutation(len(labels)):
            same = members[int(labels[anchor])]
            others = same[same != anchor]
            if len(others):
                rows.append((int(anchor), int(rng.choice(others)), 1))
            different = np.flatnonzero(labels != labels[anchor])
            rows.append((int(anchor), int(rng.choice(different)), 0))
    pairs = np.array(rows, dtype=np.int64)
    if len(pairs) > max_pairs:  # evenly over the passes: the first max_pairs of a shuffled order
        pairs = pairs[np.sort(rng.permutation(len(pairs))[:max_pairs])]
    return pairs


def require_pairs(label_indices: np.ndarray) -> None:
    """Raise :class:`TooFewPairsError` unless two or more classes each hold ``MIN_PER_CLASS`` labels."""
    counts = np.bincount(np.asarray(label_indices, dtype=np.int64))
    if int((counts >= MIN_PER_CLASS).sum()) < 2:
        raise TooFewPairsError({int(c): int(n) for c, n in enumerate(counts) if n}, MIN_PER_CLASS)


def fine_tune_contrastive(
    source: SourceModel,
    encode: Encode,
    texts: Sequence[str],
    label_indices: np.ndarray,
    prior: HeadWeights,
    config: TrainingConfig,
    *,
    seed: int = 0,
    device: Any = None,
    head_config: HeadTrainingConfig | None = None,
) -> FineTuned:
    import torch

    started = time.perf_counter()
    device = device or torch.device("cpu")
    targets = np.asarray(label_indices, dtype=np.int64)
    pairs = contrastive_pairs(targets, config.contrastive_iterations, config.contrastive_max_pairs, seed)
    k = unfreeze_top(source, config.last_k)
    model = source.model.to(device)
    losses = _train_pairs(source, encode, texts, pairs, config, seed, device)
    trained = freeze_trained(model)
    body_s = time.perf_counter() - started
    vectors = embed_texts(source, encode, texts, device)
    fit = fit_head(vectors, targets, prior.num_labels, seed=seed, config=head_config, prior=prior)
    report = {
        "blocks_total": len(source.blocks),
        "blocks_trained": k,
        "examples": int(len(targets)),
        "pairs": int(len(pairs)),
        "positive_pairs": int(pairs[:, 2].sum()),
        "loss": "sentence-transformers CosineSimilarityLoss (SetFit pairs), one epoch",
        "pair_loss_first_tenth": round(float(np.mean(losses[: max(1, len(losses) // 10)])), 6),
        "pair_loss_last_tenth": round(float(np.mean(losses[-max(1, len(losses) // 10) :])), 6),
        "body_seconds": round(body_s, 3),
        "head": fit.report,
        "device": str(device),
        "seed": seed,
        "config": asdict(config),
        "seconds": round(time.perf_counter() - started, 3),
    }
    return FineTuned(head=fit.weights, trained=trained, report=report)


def _train_pairs(
    source: SourceModel,
    encode: Encode,
    texts: Sequence[str],
    pairs: np.ndarray,
    config: TrainingConfig,
    seed: int,
    device: Any,
) -> list[float]:
    """One epoch over the pairs with sentence-transformers' CosineSimilarityLoss; the batch losses."""
    import torch
    from sentence_transformers.sentence_transformer.losses import CosineSimilarityLoss

    torch.manual_seed(seed)
    loss_fn = CosineSimilarityLoss(source.model)
    trainable = [p for p in source.model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=config.contrastive_learning_rate, weight_decay=0.01)
    source.model.train()
    losses = []
    for start in range(0, len(pairs), config.batch_size):
        batch = pairs[start : start + config.batch_size]
        features = [source.tensors(encode([texts[i] for i in batch[:, side]]), device) for side in (0, 1)]
        loss = loss_fn(features, torch.from_numpy(batch[:, 2]).float().to(device))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    return losses


def embed_texts(source: SourceModel, encode: Encode, texts: Sequence[str], device: Any = None) -> np.ndarray:
    """The encoder's pooled embeddings of ``texts`` (eval mode, no gradients), as float32 rows."""
    import torch

    source.model.eval()
    rows = []
    with torch.no_grad():
        for start in range(0, len(texts), _EMBED_BATCH):
            rows.append(source.embed(encode(list(texts[start : start + _EMBED_BATCH])), device).cpu().numpy())
    return np.concatenate(rows).astype(np.float32)
