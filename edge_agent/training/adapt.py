"""Learning from the site's unlabelled reports: the encoder adapted to their language before it learns labels.

``--unlabelled adapt`` (``last-k`` and ``contrastive``): unsupervised SimCSE on the site's own
unlabelled texts. Each text is paired with itself; the model, in training mode, embeds both with
different dropout, and sentence-transformers' ``MultipleNegativesRankingLoss`` pulls the two
views together and pushes the batch's other texts away. One epoch over the texts, the top
``last_k`` blocks, AdamW at ``adapt_learning_rate``. The supervised step then starts from the
adapted encoder.

Which texts (:func:`unlabelled_texts`): the newest ``adapt_max_texts`` distinct reports that no
operator labelled and whose content falls in the training split (``edge_agent.split``), so no
held-out report (which judges candidates, by content) has been seen by the encoder, even without
its label. They are read from the store and held in memory: nothing of them is written, and they
never leave the site (the candidate carries weights, and its gates' samples are the labelled
training texts).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from edge_agent.config import TrainingConfig
from edge_agent.training.last_k import Encode, freeze_trained, unfreeze_top
from edge_agent.training.source import SourceModel


def unlabelled_texts(store: Any, site_name: str, holdout_fraction: float, limit: int) -> list[str]:
    """The site's unlabelled training-split texts, newest first, at most ``limit``."""
    from edge_agent.split import SplitRule
    from edge_agent.training.data import TRAIN_SPLIT

    rule = SplitRule(site_name, holdout_fraction)
    texts = []
    for payload in store.unlabelled_payloads("text", limit * 2):  # about a third falls in held-out
        if rule.split_for("text", payload) == TRAIN_SPLIT:
            texts.append(payload.decode("utf-8"))
            if len(texts) == limit:
                break
    return texts


def adapt_encoder(
    source: SourceModel,
    encode: Encode,
    texts: Sequence[str],
    config: TrainingConfig,
    *,
    seed: int = 0,
    device: Any = None,
) -> dict[str, Any]:
    """SimCSE over ``texts`` on the source model, in place; what it did, for the lineage."""
    import torch
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

    started = time.perf_counter()
    device = device or torch.device("cpu")
    torch.manual_seed(seed)
    unfreeze_top(source, config.last_k)
    model = source.model.to(device)
    loss_fn = MultipleNegativesRankingLoss(model)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=config.adapt_learning_rate, weight_decay=0.01)
    order = np.random.default_rng(seed).permutation(len(texts))
    model.train()
    losses = []
    for start in range(0, len(order), config.adapt_batch_size):
        batch = [texts[i] for i in order[start : start + config.adapt_batch_size]]
        if len(batch) < 2:  # one text has no other to be told apart from
            continue
        features = source.tensors(encode(batch), device)
        loss = loss_fn([features, features], torch.zeros(len(batch), device=device))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    freeze_trained(model)  # the supervised step unfreezes what it trains
    return {
        "method": "adapt",
        "recipe": "SimCSE (dropout views, sentence-transformers MultipleNegativesRankingLoss), one epoch",
        "texts": len(texts),
        "characters": int(sum(len(t) for t in texts)),
        "batches": len(losses),
        "loss_first": round(losses[0], 6) if losses else None,
        "loss_last": round(losses[-1], 6) if losses else None,
        "seconds": round(time.perf_counter() - started, 3),
    }
