"""Benchmark: how often ``--mode auto`` trains a mode no better than production, and how often a better one.

``auto`` (:func:`edge_agent.training.auto.choose_mode`, default settings: 5 folds, ``auto_alpha``
0.1) judges the modes by cross-validation, and its McNemar test treats the labels answered by the
same fold's model as independent. This benchmark checks on synthetic embeddings, where the truth
is known, that the procedure keeps its promise anyway. Each trial draws a site's labels
(``per_class`` for each of 6 classes, 16-dimensional Gaussian classes, about 80% separable) and a
production head, then runs auto's real code with head as the only mode (no text model: what an
image site gets):

* ``null``: production is a head fitted by the same code on as many labels of its own, drawn from
  the same classes: site training is no better than production by construction (it is
  exchangeable with it, and pulled toward it as the site head is toward IT's). ``p_choose_null``
  must stay at or below ``auto_alpha``.
* ``flawed``: production's head calls one class something else (its weights for that class
  scaled by -0.3): a mode trained on the site's labels is much better. ``p_choose_flawed`` is the
  power.

Also the same trials judged the earlier way, on one stratified validation fifth
(``split_p_choose_*``), for comparison. Prints one JSON document.

    .venv/bin/python bench/auto_choice.py [--trials 100] [--per-class 5 20]
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

import numpy as np

CLASSES = 6
DIMENSIONS = 16


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--trials", type=int, default=100)
    parser.add_argument("--per-class", type=int, nargs="+", default=[5, 20])
    args = parser.parse_args()
    started = time.perf_counter()
    figures: dict[str, Any] = {"trials": args.trials, "classes": CLASSES, "dimensions": DIMENSIONS}
    for per_class in args.per_class:
        for scenario in ("null", "flawed"):
            chosen = [_trial(per_class, scenario, seed) for seed in range(args.trials)]
            cv = sum(c for c, _ in chosen) / args.trials
            split = sum(s for _, s in chosen) / args.trials
            figures[f"p_choose_{scenario}_at_{per_class}"] = round(cv, 3)
            figures[f"split_p_choose_{scenario}_at_{per_class}"] = round(split, 3)
    figures["seconds"] = round(time.perf_counter() - started, 1)
    print(json.dumps(figures, indent=2))
    return 0


def _classes(rng: np.random.Generator) -> np.ndarray:
    return rng.normal(0.0, 1.0, (CLASSES, DIMENSIONS)).astype(np.float32)


def _draw(means: np.ndarray, per_class: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    targets = np.repeat(np.arange(CLASSES), per_class)
    vectors = means[targets] + rng.normal(0.0, 0.9, (len(targets), DIMENSIONS)).astype(np.float32)
    return vectors, targets


def _trial(per_class: int, scenario: str, seed: int) -> tuple[bool, bool]:
    """(auto chose head, the single-split version would have) on one draw."""
    from edge_agent.config import TrainingConfig
    from edge_agent.training.auto import AutoInputs, choose_mode
    from edge_agent.training.errors import AutoDeclinedError
    from edge_agent.training.head import fit_head
    from export.graphs import HeadWeights

    rng = np.random.default_rng([per_class, seed])
    means = _classes(np.random.default_rng(seed))
    central_vectors, central_targets = _draw(means, per_class, rng)
    production = fit_head(central_vectors, central_targets, CLASSES, seed=seed).weights
    if scenario == "flawed":
        weights = production.weight.copy()
        weights[0] *= -0.3
        production = HeadWeights(weights, production.bias)
    vectors, targets = _draw(means, per_class, rng)
    inputs = AutoInputs(targets=targets, parent=production, vectors=vectors)
    try:
        choose_mode(inputs, TrainingConfig(), seed=seed)
        chose = True
    except AutoDeclinedError:
        chose = False
    return chose, _single_split_chose(inputs, TrainingConfig(), seed)


def _single_split_chose(inputs: Any, config: Any, seed: int) -> bool:
    """The earlier auto: head fitted on four fifths, McNemar on the fifth held out."""
    from edge_agent.training.auto import paired_evidence
    from edge_agent.training.head import answered_right, fit_head, stratified_split

    targets = inputs.targets
    train, held = stratified_split(targets, config.validation_fraction, seed)
    if not len(held):
        return False
    fit = fit_head(inputs.vectors[train], targets[train], CLASSES, seed=seed, prior=inputs.parent)
    mode = answered_right(fit.weights, inputs.vectors[held], targets[held])
    production = answered_right(inputs.parent, inputs.vectors[held], targets[held])
    return bool(paired_evidence(mode, production, config.auto_alpha, tried=1)["better"])


if __name__ == "__main__":
    raise SystemExit(main())
