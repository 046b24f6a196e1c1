"""Benchmark: how often the accuracy gate promotes a worse candidate, and how soon a better one.

Candidates with known true accuracy differences (-3, -1, 0, +1, +3 points over the site's
traffic) go through the real gate code (:func:`edge_agent.rollout.accuracy_gate` with the
default :class:`edge_agent.config.GateConfig`) on held-out labels drawn the way a site draws them,
many trials each:

* Traffic: items with a hardness ``h ~ Beta(1.5, 4)``; production is right with probability
  ``0.97 - 0.45 h`` (85% over the traffic) and its confidence margin falls with ``h``.
* Candidate: disagrees with production on harder items more often (``uniform``): where production
  is right it is wrong with probability ``a h``, where production is wrong it is right with
  probability ``b h``, ``a`` and ``b`` set so the candidate's accuracy over the traffic differs by
  exactly the stated points and 8% of items are discordant. ``queue-trap``: a candidate better on
  the hardest third of items (where the labelling queue looks) and worse on the rest, the stated
  difference over the traffic all the same.
* Labels: 30% of contents are held out (content hash). Every 500 items served, operators label
  the 10 least sure unlabelled ones (the uncertainty queue) and a 2% random audit sample (10).
  While the candidate is judged, every held-out item both models answer differently (where the
  candidate and production are right and wrong alike, they answer differently half the time) is
  drawn for a label with the chance ``gates.disagreement_share`` (0.5).
* The gate is checked after every label, as the agent re-evaluates it every few seconds, and the
  candidate is promoted the first time it passes, within ``--budget`` labels of the kind it reads.

Gates compared on the same streams:

* ``today``: the gate before issue 15: ``delta >= 0`` (``max_accuracy_drop_pts = 0``) on the
  held-out labels so far, from 30 labels on.
* ``gate``: the gate as the agent runs it by default (``gates.evidence = "disagreement"``,
  paired, anytime-valid, non-inferiority ``max_accuracy_drop_pts`` (1 point), alpha 0.05): every
  held-out item both answered, the drawn disagreements labelled and weighted by ``1 / share``; the
  budget counts the drawn disagreements' labels.
* ``gate_audit``: the same test on the audit sample's held-out labels only
  (``gates.evidence = "audit"``, unbiased for the traffic, and few: the stream runs until the
  budget of audit labels), at the same margin; ``gate_audit_margin2`` at a 2-point margin, the
  default before the disagreement sample.
* ``gate_all_held_out``: the same test on every held-out label, queue and audit sample
  (``gates.evidence = "all"``): biased towards production's hardest items.

JSON: per scenario, gate and difference, the share of trials promoted and the median held-out
labels to that decision; headline figures for ``gate`` on the ``uniform`` scenario.

    .venv/bin/python bench/rollout_safety.py [--trials 1000] [--budget 300]
"""

from __future__ import annotations

import argparse
import functools
import json
import statistics
import sys
import time
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

DELTAS_PTS = (-3.0, -1.0, 0.0, 1.0, 3.0)
DISCORDANT = 0.08
BATCH, QUEUE_PER_BATCH, AUDIT_SHARE, HOLDOUT = 500, 10, 0.02, 0.3
BOTH_WRONG_DIFFER = 0.5  # both wrong: a different wrong answer half the time (a drawn, useless label)
GATES = ("today", "gate", "gate_audit", "gate_audit_margin2", "gate_all_held_out")


@dataclass(frozen=True)
class Stream:
    """Held-out labels in the order they came: both models' correctness and whether audited."""

    candidate: np.ndarray
    production: np.ndarray
    audited: np.ndarray
    paired: np.ndarray  # every held-out item both answered, in order: its outcome if drawn, else NaN


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--trials", type=int, default=1000)
    parser.add_argument("--budget", type=int, default=300, help="held-out labels a decision may take")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--margin", type=float, help="gates.max_accuracy_drop_pts (default: the agent's)")
    parser.add_argument("--alpha", type=float, help="gates.alpha (default: the agent's)")
    args = parser.parse_args()
    global GATE_CONFIG
    GATE_CONFIG = _gate_config(args.margin, args.alpha)
    rng = np.random.default_rng(args.seed)
    results: dict[str, Any] = {"trials": args.trials, "budget_labels": args.budget, "scenarios": {}}
    results["gate_config"] = {
        "decision": GATE_CONFIG.decision,
        "max_accuracy_drop_pts": GATE_CONFIG.max_accuracy_drop_pts,
        "alpha": GATE_CONFIG.alpha,
        "evidence": GATE_CONFIG.evidence,
        "disagreement_share": GATE_CONFIG.disagreement_share,
    }
    margin2 = replace(GATE_CONFIG, max_accuracy_drop_pts=2.0)
    for scenario in ("uniform", "queue-trap"):
        by_gate: dict[str, dict[str, Any]] = {name: {} for name in GATES}
        for delta in DELTAS_PTS:
            outcomes: dict[str, list[int | None]] = {name: [] for name in by_gate}
            for _ in range(args.trials):
                stream = draw_stream(rng, scenario, delta / 100.0, args.budget)
                outcomes["today"].append(today_decision(stream, args.budget))
                outcomes["gate"].append(sampled_decision(stream, args.budget))
                outcomes["gate_audit"].append(gate_decision(stream, args.budget, audited_only=True))
                outcomes["gate_audit_margin2"].append(
                    gate_decision(stream, args.budget, audited_only=True, config=margin2)
                )
                outcomes["gate_all_held_out"].append(gate_decision(stream, args.budget, audited_only=False))
            for name, decided in outcomes.items():
                by_gate[name][f"{delta:+g}"] = _summary(decided)
        results["scenarios"][scenario] = by_gate
    results |= _headline(results["scenarios"])
    print(json.dumps(results, indent=2, sort_keys=True))
    return 0


def _summary(decided: list[int | None]) -> dict[str, Any]:
    promoted = [n for n in decided if n is not None]
    return {
        "p_promote": round(len(promoted) / len(decided), 4),
        "median_labels_to_promotion": statistics.median(promoted) if promoted else None,
    }


def _headline(scenarios: dict[str, Any]) -> dict[str, Any]:
    gate, today, trap = scenarios["uniform"]["gate"], scenarios["uniform"]["today"], scenarios["queue-trap"]
    audit = scenarios["uniform"]["gate_audit_margin2"]
    return {
        "p_promote_worse_3pts": gate["-3"]["p_promote"],
        "p_promote_worse_1pt": gate["-1"]["p_promote"],
        "p_promote_better_3pts": gate["+3"]["p_promote"],
        "median_labels_to_decision_better_3pts": gate["+3"]["median_labels_to_promotion"],
        "audit_margin2_p_promote_worse_3pts": audit["-3"]["p_promote"],
        "audit_margin2_p_promote_worse_1pt": audit["-1"]["p_promote"],
        "audit_margin2_p_promote_better_3pts": audit["+3"]["p_promote"],
        "queue_trap_audit_p_promote_worse_3pts": trap["gate_audit"]["-3"]["p_promote"],
        "today_p_promote_worse_3pts": today["-3"]["p_promote"],
        "today_p_promote_worse_1pt": today["-1"]["p_promote"],
        "today_p_promote_better_3pts": today["+3"]["p_promote"],
        "queue_trap_p_promote_worse_3pts": trap["gate"]["-3"]["p_promote"],
        "queue_trap_all_held_out_p_promote_worse_3pts": trap["gate_all_held_out"]["-3"]["p_promote"],
    }


# --- streams -----------------------------------------------------------------------------------


def draw_stream(rng: np.random.Generator, scenario: str, delta: float, budget: int) -> Stream:
    """Held-out labels until ``budget`` of them came from the audit sample (the longest a gate reads)."""
    flip = _flip_rates(scenario, delta)
    parts: list[tuple[np.ndarray, ...]] = []
    audited = drawn = 0
    while audited < budget or drawn < budget:
        part = _held_out_labels(rng, flip, batches=40)
        parts.append(part)
        audited += int(part[2].sum())
        drawn += int(np.sum(~np.isnan(part[3])))
    candidate, production, audit, paired = (np.concatenate(column) for column in zip(*parts, strict=True))
    return Stream(candidate, production, audit, paired)


def _held_out_labels(rng: np.random.Generator, flip: Any, batches: int) -> tuple[np.ndarray, ...]:
    """``batches`` batches of served items: what the queue and the audit sample label, held out;
    and the paired sample: every held-out item's outcome where drawn, else NaN."""
    shape = (batches, BATCH)
    hardness = rng.beta(1.5, 4.0, size=shape)
    prod_right = rng.random(shape) < 0.97 - 0.45 * hardness
    to_wrong, to_right = flip(hardness)
    u = rng.random(shape)
    cand_right = np.where(prod_right, u >= to_wrong, u < to_right)
    margin = 1.0 - hardness + rng.normal(0.0, 0.1, size=shape)
    audit = rng.random(shape) < AUDIT_SHARE
    least_sure = np.argsort(np.where(audit, np.inf, margin), axis=1)[:, :QUEUE_PER_BATCH]
    queue = np.zeros(shape, dtype=bool)
    np.put_along_axis(queue, least_sure, True, axis=1)
    held_out = rng.random(shape) < HOLDOUT
    labelled = (queue | audit) & held_out  # in the order they were served
    both_wrong = ~cand_right & ~prod_right
    differ = (cand_right != prod_right) | (both_wrong & (rng.random(shape) < BOTH_WRONG_DIFFER))
    drawn = differ & (rng.random(shape) < GATE_CONFIG.disagreement_share)
    outcome = np.where(drawn, cand_right.astype(float) - prod_right.astype(float), np.nan)
    return cand_right[labelled], prod_right[labelled], audit[labelled], outcome[held_out]


@functools.cache
def _flip_rates(scenario: str, delta: float) -> Any:
    """Per-item chances the candidate turns production's right answer wrong, and its wrong one right,
    scaled so the traffic sees ``delta`` accuracy difference and DISCORDANT discordant items."""
    h = np.random.default_rng(12345).beta(1.5, 4.0, size=400_000)
    p = 0.97 - 0.45 * h
    cut = float(np.quantile(h, 2 / 3))
    shape_wrong, shape_right = _flip_shapes(scenario, h, cut)
    e_wrong, e_right = float(np.mean(p * shape_wrong)), float(np.mean((1 - p) * shape_right))
    a, b = (DISCORDANT - delta) / 2 / e_wrong, (DISCORDANT + delta) / 2 / e_right

    def rates(hardness: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        w, r = _flip_shapes(scenario, hardness, cut)
        return np.clip(a * w, 0, 1), np.clip(b * r, 0, 1)

    return rates


def _flip_shapes(scenario: str, hardness: np.ndarray, cut: float) -> tuple[np.ndarray, np.ndarray]:
    """How the two flip chances grow with hardness, before scaling: alike (``uniform``), or better on
    the hardest third (the queue's items) and worse on the rest (``queue-trap``)."""
    if scenario == "uniform":
        return hardness, hardness
    hard = hardness > cut
    return np.where(hard, 0.2 * hardness, hardness), np.where(hard, 3.0 * hardness, 0.4 * hardness)


# --- decisions ---------------------------------------------------------------------------------

GATE_CONFIG: Any = None


def _gate_config(margin: float | None, alpha: float | None) -> Any:
    from edge_agent.config import GateConfig

    default = GateConfig()
    return GateConfig(
        max_accuracy_drop_pts=default.max_accuracy_drop_pts if margin is None else margin,
        alpha=default.alpha if alpha is None else alpha,
    )



def today_decision(stream: Stream, budget: int, min_labels: int = 30) -> int | None:
    """The gate before this change, on all held-out labels: promoted at the first ``delta >= 0``."""
    diff = np.cumsum(stream.candidate[:budget].astype(int) - stream.production[:budget].astype(int))
    passed = np.flatnonzero(diff[min_labels - 1 :] >= 0)
    return int(passed[0]) + min_labels if passed.size else None


def sampled_decision(stream: Stream, budget: int) -> int | None:
    """The gate's own code on the paired sample (``gates.evidence = "disagreement"``): the drawn
    labels it had read when it first passed, or None within ``budget`` of them."""
    from edge_agent.rollout import Sampled, accuracy_gate
    from edge_agent.store import PairedAnswer

    drawn_so_far = np.cumsum(~np.isnan(stream.paired))
    end = int(np.searchsorted(drawn_so_far, budget, side="right"))  # items up to the budget-th label
    pairs = tuple(
        PairedAnswer(i, "c", "p", False)
        if np.isnan(outcome)
        else PairedAnswer(i, *_ANSWERS[int(outcome)], True, "ok")
        for i, outcome in enumerate(stream.paired[:end])
    )
    gate = accuracy_gate(GATE_CONFIG, Sampled(pairs, GATE_CONFIG.disagreement_share, 0))
    if not gate.passed:
        return None
    return int(drawn_so_far[int((gate.evidence or {})["established_at"]) - 1])


#: Candidate and production answers giving each outcome with the label "ok": +1, 0 (both wrong), -1.
_ANSWERS = {1: ("ok", "dent"), 0: ("scratch", "dent"), -1: ("dent", "ok")}


def gate_decision(stream: Stream, budget: int, *, audited_only: bool, config: Any = None) -> int | None:
    """The gate's own code on the held-out labels (all, or the audit sample's): the label count at
    which it first passed, or None within ``budget``."""
    from edge_agent.rollout import Judged, accuracy_gate

    config = config or GATE_CONFIG

    keep = stream.audited if audited_only else np.ones(stream.candidate.size, dtype=bool)
    candidate, production = stream.candidate[keep][:budget], stream.production[keep][:budget]
    ids = range(candidate.size)
    judged = Judged(
        labels=dict.fromkeys(ids, "ok"),
        candidate={i: "ok" if candidate[i] else "dent" for i in ids},
        production={i: "ok" if production[i] else "dent" for i in ids},
        problem=None,
        order=tuple(ids),
    )
    gate = accuracy_gate(config, judged)
    evidence = gate.evidence or {}
    if not gate.passed:
        return None
    return max(int(evidence["established_at"]), config.min_labels)


if __name__ == "__main__":
    started = time.perf_counter()
    code = main()
    print(f"# {time.perf_counter() - started:.0f} s", file=sys.stderr)
    sys.exit(code)
