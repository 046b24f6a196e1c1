"""``--mode auto``: the training mode this site's labels pay for, judged on labels no trial trained on.

1. The training labels are split into ``[training] auto_folds`` stratified, seeded folds (fewer
   when no class has that many labels).
2. Each mode in ``[training] auto_modes`` (by default ``head`` and ``last-k``; ``contrastive``
   may be added) trains once per fold on the other folds and answers the fold left out, so
   every label is answered once by a model that never saw it. ``last-k`` and ``contrastive``
   need a text model with a head graph (``contrastive`` also 2 labels in each of 2 classes in
   every fold's training share); otherwise they are skipped with the reason.
3. Production answers every label too. The mode with the most right answers is the candidate
   (a tie goes to the quicker mode: head, then last-k, then contrastive).
4. It trains only if those answers show it better than production, paired: of the labels exactly
   one of the two answered right (the discordant pairs), the mode must win so many that a mode
   no better than production would do so with probability at most ``[training] auto_alpha``
   (one-sided exact sign test, McNemar's), Bonferroni-corrected for the modes tried, since the
   best of several is picked. Otherwise nothing is trained and :class:`AutoDeclinedError` says
   so in one line: a few labels cannot tell a better mode from a lucky one, and a candidate no
   better than production would make the site worse than what IT shipped or only hold the
   shadow slot. With one label in every class nothing can be held out: nothing is trained.

Cross-validation rather than one validation split: a fifth of 20 labels per class is 4 per class,
where a mode 6 points better than production wins 2 or 3 discordant pairs, which no test can tell
from luck; with every label answered once the same mode has five times as many. Production is
fixed (it never trained on these labels), so each discordant pair compares it with a model that
did not see that label either. The fold models train on (k-1)/k of the labels and the winner then
trains on all of them, so the evidence, if anything, understates the winner.

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

from edge_agent.config import AUTO_MODES, TrainingConfig
from edge_agent.training.errors import AutoDeclinedError, TooFewPairsError
from edge_agent.training.head import HeadTrainingConfig, answered_right, fit_head, stratified_folds
from export.graphs import HeadWeights

#: Quickest first: a tie goes to the earlier mode.
ORDER = AUTO_MODES


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
    folds = stratified_folds(targets, config.auto_folds, seed)
    if not folds:
        raise AutoDeclinedError.too_few(len(targets))
    production = answered_right(inputs.parent, inputs.vectors, targets)
    scores: dict[str, Any] = {}
    right: dict[str, np.ndarray] = {}
    for mode in ORDER:
        if mode not in config.auto_modes:
            scores[mode] = {"skipped": "not in [training] auto_modes"}
            continue
        scores[mode], answered = _trial(mode, inputs, folds, config, seed, head_config)
        if answered is not None:
            right[mode] = answered
    if not right:
        raise AutoDeclinedError.none_can_train({mode: trial["skipped"] for mode, trial in scores.items()})
    counts = {mode: int(answered.sum()) for mode, answered in right.items()}
    production_right = int(production.sum())
    best = max(counts, key=lambda mode: (counts[mode], -ORDER.index(mode)))
    evidence = paired_evidence(right[best], production, config.auto_alpha, tried=len(right))
    report = {
        "folds": len(folds),
        "scored": int(len(targets)),
        "production_right": production_right,
        "modes": scores,
        "best": best,
        "evidence": evidence,
        "seconds": round(time.perf_counter() - started, 3),
    }
    if not evidence["better"]:
        raise AutoDeclinedError.not_shown_better(
            len(targets), len(folds), production_right, best, counts[best], evidence
        )
    tie = list(counts.values()).count(counts[best]) > 1
    why = (
        f"{best} answered {counts[best]} of {len(targets)} labels right in {len(folds)}-fold "
        f"cross-validation, production {production_right}: {evidence['mode_only']} to "
        f"{evidence['production_only']} where only one was right "
        f"(p = {evidence['p_value']:.3g} <= {evidence['level']:.3g})"
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
        "p_value": float(f"{p_value:.6g}"),  # significant digits: 2**-30 is not 0
        "alpha": alpha,
        "level": round(level, 6),
        "test": "one-sided exact McNemar (sign test on discordant pairs), Bonferroni over the modes tried",
        "better": bool(mode_only > production_only and p_value <= level),
    }


def _trial(
    mode: str,
    inputs: AutoInputs,
    folds: list[tuple[np.ndarray, np.ndarray]],
    config: TrainingConfig,
    seed: int,
    head_config: HeadTrainingConfig | None,
) -> tuple[dict[str, Any], np.ndarray | None]:
    """One mode trained once per fold and scored on the fold left out: (right answers and seconds,
    or why not; which labels it answered right)."""
    started = time.perf_counter()
    targets = np.asarray(inputs.targets, dtype=np.int64)
    answered = np.zeros(len(targets), dtype=bool)
    if mode == "head":
        for train, held in folds:
            fit = fit_head(inputs.vectors[train], targets[train], inputs.parent.num_labels, seed=seed,
                           config=head_config, prior=inputs.parent)  # fmt: skip
            answered[held] = answered_right(fit.weights, inputs.vectors[held], targets[held])
        return _scored(answered, started), answered
    if inputs.texts is None or inputs.new_source is None or inputs.encode is None:
        return {"skipped": inputs.encoder_unavailable}, None
    from edge_agent.training.contrastive import embed_texts, fine_tune_contrastive, require_pairs
    from edge_agent.training.last_k import fine_tune

    if mode == "contrastive":
        try:
            for train, _ in folds:
                require_pairs(targets[train])
        except TooFewPairsError:
            return {"skipped": "a fold's training share holds fewer than 2 labels in 2 classes"}, None
    tune = fine_tune_contrastive if mode == "contrastive" else fine_tune
    texts = inputs.texts
    for train, held in folds:
        source = inputs.new_source()
        tuned = tune(source, inputs.encode, [texts[i] for i in train], targets[train], inputs.parent,
                     config, seed=seed, device=inputs.device)  # fmt: skip
        vectors = embed_texts(source, inputs.encode, [texts[i] for i in held], inputs.device)
        answered[held] = answered_right(tuned.head, vectors, targets[held])
    return _scored(answered, started), answered


def _scored(answered: np.ndarray, started: float) -> dict[str, Any]:
    return {"right": int(answered.sum()), "seconds": round(time.perf_counter() - started, 3)}
