"""``--mode auto``: the training mode this site's labels pay for, judged on labels no mode trained on.

1. A stratified, seeded validation split of the training labels is put aside
   (``[training] validation_fraction``; every class keeps one label for training).
2. Each eligible mode trains on the rest: ``head`` always; ``last-k`` and ``contrastive`` for
   text models with a head graph (``contrastive`` only when the rest holds 2 labels in each of
   2 classes).
3. Production and each mode answer the validation labels. The mode with the most right answers
   is the candidate (a tie goes to the quicker mode: head, then last-k, then contrastive).
4. It trains only if the validation labels show it better than production, paired: of the
   labels exactly one of the two answers right (the discordant pairs), the mode must win so
   many that a mode no better than production would do so with probability at most
   ``[training] auto_alpha`` (one-sided exact sign test, McNemar's), Bonferroni-corrected for
   the modes tried, since the best of several is picked. Otherwise nothing is trained and
   :class:`AutoDeclinedError` says so in one line: a few labels cannot tell a better mode from
   a lucky one (of 6 validation labels, with three modes tried, a mode must win at least 5 of 5
   where only one was right), and a candidate no better than production would make the site
   worse than what IT shipped or only hold the shadow slot.
   With too few labels to hold any out (two or fewer in every class), nothing is trained either.

The winner then trains on every training label as if it had been named; the candidate's report
keeps every score, the evidence (discordant pairs, p-value, level) and the reason
(:attr:`AutoChoice.report`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from edge_agent.config import TrainingConfig
from edge_agent.training.errors import AutoDeclinedError, TooFewPairsError
from edge_agent.training.head import HeadTrainingConfig, answered_right, fit_head, stratified_split
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
    """The mode to train with, and why; AutoDeclinedError when none is shown better than production."""
    started = time.perf_counter()
    targets = np.asarray(inputs.targets, dtype=np.int64)
    train, validation = stratified_split(targets, config.validation_fraction, seed)
    if not len(validation):
        raise AutoDeclinedError.too_few(len(targets))
    production = answered_right(inputs.parent, inputs.vectors[validation], targets[validation])
    scores: dict[str, Any] = {}
    right: dict[str, np.ndarray] = {}
    for mode in ORDER:
        scores[mode], answered = _trial(mode, inputs, train, validation, config, seed, head_config)
        if answered is not None:
            right[mode] = answered
    counts = {mode: int(answered.sum()) for mode, answered in right.items()}
    production_right = int(production.sum())
    best = max(counts, key=lambda mode: (counts[mode], -ORDER.index(mode)))
    evidence = paired_evidence(right[best], production, config.auto_alpha, tried=len(right))
    report = {
        "validation_size": int(len(validation)),
        "train_size": int(len(train)),
        "production_right": production_right,
        "modes": scores,
        "best": best,
        "evidence": evidence,
        "seconds": round(time.perf_counter() - started, 3),
    }
    if not evidence["better"]:
        raise AutoDeclinedError.not_shown_better(
            len(validation), production_right, best, counts[best], evidence
        )
    tie = list(counts.values()).count(counts[best]) > 1
    why = (
        f"{best} answered {counts[best]} of {len(validation)} validation labels right, "
        f"production {production_right}: {evidence['mode_only']} to {evidence['production_only']} "
        f"where only one was right (p = {evidence['p_value']:.3g} <= {evidence['level']:.3g})"
        f"{'; a tie goes to the quicker mode' if tie else ''}"
    )
    return AutoChoice(best, {**report, "chosen": best, "why": why})


def paired_evidence(mode: np.ndarray, production: np.ndarray, alpha: float, tried: int) -> dict[str, Any]:
    """McNemar's exact one-sided test that ``mode`` answers right more often than ``production``.

    ``mode`` and ``production``: right (True) or wrong per validation label, in the same order.
    The level is ``alpha`` / ``tried`` (Bonferroni: the mode tested is the best of ``tried``).
    """
    mode_only = int(np.sum(mode & ~production))
    production_only = int(np.sum(production & ~mode))
    discordant = mode_only + production_only
    # P(at least mode_only of the discordant pairs go to the mode | each is a fair coin)
    p_value = sum(math.comb(discordant, k) for k in range(mode_only, discordant + 1)) / 2**discordant
    level = alpha / max(tried, 1)
    return {
        "mode_only": mode_only,
        "production_only": production_only,
        "p_value": round(p_value, 6),
        "alpha": alpha,
        "level": round(level, 6),
        "test": "one-sided exact McNemar (sign test on discordant pairs), Bonferroni over the modes tried",
        "better": bool(mode_only > production_only and p_value <= level),
    }


def _trial(
    mode: str,
    inputs: AutoInputs,
    train: np.ndarray,
    validation: np.ndarray,
    config: TrainingConfig,
    seed: int,
    head_config: HeadTrainingConfig | None,
) -> tuple[dict[str, Any], np.ndarray | None]:
    """One mode trained on ``train`` and scored on ``validation``: (right answers and seconds, or why
    not; which validation labels it answered right)."""
    started = time.perf_counter()
    targets = np.asarray(inputs.targets, dtype=np.int64)
    num_labels = inputs.parent.num_labels
    if mode == "head":
        vectors, prior = inputs.vectors, inputs.parent
        fit = fit_head(vectors[train], targets[train], num_labels, seed=seed, config=head_config, prior=prior)
        answered = answered_right(fit.weights, inputs.vectors[validation], targets[validation])
        return {"right": int(answered.sum()), "seconds": round(time.perf_counter() - started, 3)}, answered
    if inputs.texts is None or inputs.new_source is None or inputs.encode is None:
        return {"skipped": inputs.encoder_unavailable}, None
    from edge_agent.training.contrastive import embed_texts, fine_tune_contrastive, require_pairs
    from edge_agent.training.last_k import fine_tune

    if mode == "contrastive":
        try:
            require_pairs(targets[train])
        except TooFewPairsError:
            return {
                "skipped": "fewer than 2 labels in 2 classes once the validation labels are put aside"
            }, None
    source = inputs.new_source()
    texts = [inputs.texts[i] for i in train]
    tune = fine_tune_contrastive if mode == "contrastive" else fine_tune
    tuned = tune(
        source, inputs.encode, texts, targets[train], inputs.parent, config, seed=seed, device=inputs.device
    )
    vectors = embed_texts(source, inputs.encode, [inputs.texts[i] for i in validation], inputs.device)
    answered = answered_right(tuned.head, vectors, targets[validation])
    return {"right": int(answered.sum()), "seconds": round(time.perf_counter() - started, 3)}, answered
