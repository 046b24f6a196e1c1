"""``--mode auto``: the training mode this site's labels pay for, judged on labels no mode trained on.

1. A stratified, seeded validation split of the training labels is put aside
   (``[training] validation_fraction``; every class keeps one label for training).
2. Each eligible mode trains on the rest: ``head`` always; ``last-k`` and ``contrastive`` for
   text models with a head graph (``contrastive`` only when the rest holds 2 labels in each of
   2 classes).
3. Production and each mode answer the validation labels. The mode with the most right answers
   wins if it has more than production; a tie goes to the quicker mode (head, then last-k, then
   contrastive). When no mode beats production, nothing is trained: :class:`AutoDeclinedError`
   says so in one line. A candidate the site's own labels call no better would only hold the
   shadow slot.
4. With too few labels to hold any out (two or fewer in every class), ``head`` is chosen: it
   starts from, and is pulled toward, production's head, the closest to what serves.

The winner then trains on every training label as if it had been named; the candidate's report
keeps every score and the reason (:attr:`AutoChoice.report`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from edge_agent.config import TrainingConfig
from edge_agent.training.errors import AutoDeclinedError, TooFewPairsError
from edge_agent.training.head import HeadTrainingConfig, fit_head, score_head, stratified_split
from export.graphs import HeadWeights

#: Quickest first: a tie goes to the earlier mode.
ORDER = ("head", "last-k", "contrastive")


@dataclass(frozen=True)
class AutoChoice:
    mode: str
    report: dict[str, Any]


@dataclass(frozen=True)
class AutoInputs:
    """What the trials need. ``vectors``: production's embeddings of every training item, in order.

    ``texts`` and ``new_source`` (a fresh source model per call: a trial changes it) are None for
    models only ``head`` can train (images, one-graph models)."""

    targets: np.ndarray
    parent: HeadWeights
    vectors: np.ndarray
    texts: Sequence[str] | None = None
    new_source: Callable[[], Any] | None = None
    encode: Callable[[Sequence[str]], Any] | None = None
    device: Any = None
    #: Why ``last-k`` and ``contrastive`` cannot train this model, when they cannot.
    encoder_unavailable: str = "only head trains this model (not a text model with a head graph)"


def choose_mode(
    inputs: AutoInputs, config: TrainingConfig, seed: int = 0, head_config: HeadTrainingConfig | None = None
) -> AutoChoice:
    """The mode to train with, and why; raises AutoDeclinedError when no mode beats production."""
    started = time.perf_counter()
    targets = np.asarray(inputs.targets, dtype=np.int64)
    train, validation = stratified_split(targets, config.validation_fraction, seed)
    if not len(validation):
        why = "too few labels to hold any out (2 or fewer per class): head, the closest to production"
        return AutoChoice("head", {"chosen": "head", "why": why, "validation_size": 0})
    production = _right_answers(inputs.parent, inputs.vectors[validation], targets[validation])
    scores: dict[str, Any] = {}
    for mode in ORDER:
        scores[mode] = _trial(mode, inputs, train, validation, config, seed, head_config)
    tried = {mode: s["right"] for mode, s in scores.items() if "right" in s}
    best = max(tried, key=lambda mode: (tried[mode], -ORDER.index(mode)))
    report = {
        "validation_size": int(len(validation)),
        "train_size": int(len(train)),
        "production_right": production,
        "modes": scores,
        "seconds": round(time.perf_counter() - started, 3),
    }
    if tried[best] <= production:
        raise AutoDeclinedError(len(validation), production, best, tried[best])
    tie = list(tried.values()).count(tried[best]) > 1
    why = (
        f"{best} answered {tried[best]} of {len(validation)} validation labels right, production "
        f"{production}{'; a tie goes to the quicker mode' if tie else ''}"
    )
    return AutoChoice(best, {**report, "chosen": best, "why": why})


def _trial(
    mode: str,
    inputs: AutoInputs,
    train: np.ndarray,
    validation: np.ndarray,
    config: TrainingConfig,
    seed: int,
    head_config: HeadTrainingConfig | None,
) -> dict[str, Any]:
    """One mode trained on ``train`` and scored on ``validation``: right answers and seconds (or why not)."""
    started = time.perf_counter()
    targets = np.asarray(inputs.targets, dtype=np.int64)
    num_labels = inputs.parent.num_labels
    if mode == "head":
        vectors, prior = inputs.vectors, inputs.parent
        fit = fit_head(vectors[train], targets[train], num_labels, seed=seed, config=head_config, prior=prior)
        right = _right_answers(fit.weights, inputs.vectors[validation], targets[validation])
        return {"right": right, "seconds": round(time.perf_counter() - started, 3)}
    if inputs.texts is None or inputs.new_source is None or inputs.encode is None:
        return {"skipped": inputs.encoder_unavailable}
    from edge_agent.training.contrastive import embed_texts, fine_tune_contrastive, require_pairs
    from edge_agent.training.last_k import fine_tune

    if mode == "contrastive":
        try:
            require_pairs(targets[train])
        except TooFewPairsError:
            return {"skipped": "fewer than 2 labels in 2 classes once the validation labels are put aside"}
    source = inputs.new_source()
    texts = [inputs.texts[i] for i in train]
    tune = fine_tune_contrastive if mode == "contrastive" else fine_tune
    tuned = tune(
        source, inputs.encode, texts, targets[train], inputs.parent, config, seed=seed, device=inputs.device
    )
    vectors = embed_texts(source, inputs.encode, [inputs.texts[i] for i in validation], inputs.device)
    right = _right_answers(tuned.head, vectors, targets[validation])
    return {"right": right, "seconds": round(time.perf_counter() - started, 3)}


def _right_answers(head: HeadWeights, vectors: np.ndarray, targets: np.ndarray) -> int:
    accuracy, _ = score_head(head, vectors, targets)
    return int(round(accuracy * len(targets)))
