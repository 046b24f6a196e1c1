"""A robust ``auto``: interleaved latency rounds, and the most accurate variant among the fastest.

Timing one variant after another lets machine noise (another process on a core, a
thermal dip) land on whichever variant happens to be running; on a loaded 2-core
machine that picked int8-mixed (-0.9 points) over int8-per-channel (+0.2) on a
6.7 vs 3.9 ms single-median difference. Here every variant runs once per round, in
an order that rotates, so noise hits all of them alike, and each round gives one
paired comparison with the fastest. A variant counts as slower only when the paired
ratios show it, beyond a practical tolerance, with the rule's confidence; among the
variants that are not shown slower the most accurate one is kept.
"""

from __future__ import annotations

import random
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, NoReturn, TypeVar

import numpy as np

from genba.errors import ConfigError, GateFailedError

T = TypeVar("T")


@dataclass(frozen=True)
class SpeedRule:
    """When a variant counts as as fast as the fastest.

    A variant is within the noise of the fastest when the one-sided distribution-free
    lower confidence bound on its median paired ratio (its round median / the fastest's,
    same round) is at most ``1 + tolerance``: only a variant shown, at ``confidence``, to
    be more than ``tolerance`` slower loses its place to speed. The bound is an order
    statistic of the ratios (sign test); it exists from 5 rounds at the default 0.95.
    """

    #: Coverage of the one-sided lower bound on the median paired ratio.
    confidence: float = 0.95
    #: Slowdown that does not matter in practice (0.10: up to 10% slower still ties).
    tolerance: float = 0.10

    def __post_init__(self) -> None:
        problems = []
        if not 0.5 <= self.confidence < 1.0:
            problems.append("speed rule confidence must be in [0.5, 1)")
        if not 0.0 <= self.tolerance < 10.0:
            problems.append("speed rule tolerance must be in [0, 10)")
        if problems:
            raise ConfigError(problems)

    def describe(self) -> str:
        return (
            "fastest: the passing variant with the lowest median of its round medians; tied: passing "
            f"variants whose one-sided {self.confidence:g} sign-test lower bound on the median paired "
            f"per-round latency ratio to the fastest is <= {1 + self.tolerance:g} (the median ratio "
            "itself when there are too few rounds for the bound); chosen: the tied variant with the "
            "highest accuracy, then mean cosine, then the lowest median latency"
        )


@dataclass(frozen=True)
class Choice:
    """What the rule knows of one candidate besides its timings."""

    name: str
    passed: bool
    accuracy: float | None = None
    mean_cosine: float | None = None
    #: The failed gates, for the error message when nothing passed (``CandidateReport.failures()``).
    failures: tuple[str, ...] = ()


@dataclass(frozen=True)
class VariantSpeed:
    """One candidate's figures; ratios are paired per round against the fastest passing variant."""

    passed: bool
    accuracy: float | None
    mean_cosine: float | None
    round_ms: tuple[float, ...]
    median_ms: float | None
    median_ratio: float | None
    lower_bound: float | None
    within_noise: bool


@dataclass(frozen=True)
class Decision:
    """The chosen variant and every figure that decided it."""

    chosen: str
    fastest: str
    tied: tuple[str, ...]
    figures: Mapping[str, VariantSpeed]
    rule: SpeedRule
    rounds: int
    #: Which order statistic of the sorted ratios is the lower bound; None: too few rounds.
    bound_rank: int | None
    note: str | None

    def to_json(self) -> dict[str, Any]:
        return {
            "rule": self.rule.describe(),
            "confidence": self.rule.confidence,
            "tolerance": self.rule.tolerance,
            "rounds": self.rounds,
            "bound": None if self.bound_rank is None else {"order_statistic": self.bound_rank},
            "note": self.note,
            "fastest": self.fastest,
            "tied": list(self.tied),
            "chosen": self.chosen,
            "variants": {name: _rounded(asdict(figures)) for name, figures in self.figures.items()},
        }


def interleaved_latencies(
    runners: Mapping[str, Callable[[], object]],
    rounds: int,
    runs_per_round: int,
    warmup: int,
    clock: Callable[[], float] = time.perf_counter,
    order_seed: int = 0,
) -> dict[str, list[float]]:
    """Each runner's median latency (ms) in every round; all runners run in every round.

    Runners are warmed up first (the first calls build kernels and allocate arenas).
    The round order comes from ``round_orders``, so no runner always goes first.
    """
    problems = []
    if not runners:
        problems.append("no runners to time")
    if rounds < 1 or runs_per_round < 1 or warmup < 0:
        problems.append("rounds and runs_per_round must be >= 1 and warmup >= 0")
    if problems:
        raise ConfigError(problems)
    for run in runners.values():
        for _ in range(warmup):
            run()
    medians: dict[str, list[float]] = {name: [] for name in runners}
    for order in round_orders(list(runners), rounds, order_seed):
        for name in order:
            timings = [_elapsed_ms(runners[name], clock) for _ in range(runs_per_round)]
            medians[name].append(statistics.median(timings))
    return medians


def round_orders(names: Sequence[str], rounds: int, seed: int = 0) -> list[tuple[str, ...]]:
    """The order of every round: a seeded shuffle per cycle of ``len(names)`` rounds, rotated by one
    each round, so within a cycle every name runs once in every position (first included)."""
    rng = random.Random(seed)
    orders: list[tuple[str, ...]] = []
    base = list(names)
    for index in range(rounds):
        step = index % max(len(base), 1)
        if step == 0:
            rng.shuffle(base)
        orders.append(tuple(base[step:] + base[:step]))
    return orders


def cycling(run: Callable[[T], object], inputs: Sequence[T]) -> Callable[[], object]:
    """A runner for ``interleaved_latencies`` that feeds ``inputs`` in turn, one per call."""
    if not inputs:
        raise ConfigError(["no inputs to time"])
    calls = 0

    def runner() -> object:
        nonlocal calls
        feeds = inputs[calls % len(inputs)]
        calls += 1
        return run(feeds)

    return runner


def median_lower_bound(ratios: Sequence[float], confidence: float) -> tuple[float | None, int | None]:
    """One-sided distribution-free lower confidence bound on the median, and its order statistic.

    The k-th smallest of n values lies below the median unless fewer than k values do, so
    P(x_(k) <= median) = P(Binomial(n, 1/2) >= k); the bound is x_(k) for the largest k whose
    probability reaches ``confidence``. (None, None) when even k = 1 falls short (n too small).
    """
    rank = bound_rank(len(ratios), confidence)
    if rank is None:
        return None, None
    return sorted(ratios)[rank - 1], rank


def bound_rank(rounds: int, confidence: float) -> int | None:
    """The largest k with P(Binomial(rounds, 1/2) >= k) >= confidence; None when there is none."""
    from scipy.stats import binom  # imported when needed, as edge_agent.drift does

    ranks = np.arange(1, rounds + 1)
    covered = ranks[binom.sf(ranks - 1, rounds, 0.5) >= confidence]
    return int(covered.max()) if covered.size else None


def choose(
    candidates: Sequence[Choice], round_medians: Mapping[str, Sequence[float]], rule: SpeedRule
) -> Decision:
    """Among passing variants within the noise of the fastest, the most accurate (see ``SpeedRule``).

    ``round_medians`` comes from ``interleaved_latencies``: one value per round, paired by index.
    A candidate that failed its gates is never chosen and may lack timings.
    """
    passing = [c for c in candidates if c.passed]
    if not passing:
        _refuse(candidates)
    rounds = _round_count(candidates, round_medians)
    medians = {c.name: statistics.median(round_medians[c.name]) for c in passing}
    fastest = min(passing, key=lambda c: medians[c.name])
    rank = bound_rank(rounds, rule.confidence)
    figures = {
        c.name: _figures(c, round_medians.get(c.name, ()), round_medians[fastest.name], rule)
        for c in candidates
    }
    tied = tuple(c.name for c in passing if figures[c.name].within_noise)
    chosen = max(
        (c for c in passing if c.name in tied),
        key=lambda c: (_or_lowest(c.accuracy), _or_lowest(c.mean_cosine), -medians[c.name]),
    )
    note = None
    if rank is None:
        note = (
            f"{rounds} rounds are too few for a one-sided {rule.confidence:g} lower bound on the median "
            "ratio: the median ratio itself was compared with the tolerance"
        )
    return Decision(chosen.name, fastest.name, tied, figures, rule, rounds, rank, note)


def _figures(choice: Choice, own: Sequence[float], fastest: Sequence[float], rule: SpeedRule) -> VariantSpeed:
    if not own:
        return VariantSpeed(
            choice.passed, choice.accuracy, choice.mean_cosine, (), None, None, None, within_noise=False
        )
    ratios = [_ratio(mine, theirs) for mine, theirs in zip(own, fastest, strict=True)]
    median_ratio = statistics.median(ratios)
    lower, _ = median_lower_bound(ratios, rule.confidence)
    evidence = median_ratio if lower is None else lower
    return VariantSpeed(
        passed=choice.passed,
        accuracy=choice.accuracy,
        mean_cosine=choice.mean_cosine,
        round_ms=tuple(own),
        median_ms=statistics.median(own),
        median_ratio=median_ratio,
        lower_bound=lower,
        within_noise=evidence <= 1.0 + rule.tolerance,
    )


def _round_count(candidates: Sequence[Choice], round_medians: Mapping[str, Sequence[float]]) -> int:
    """Every passing candidate needs timings, and all timings the same number of rounds to pair."""
    missing = [c.name for c in candidates if c.passed and not round_medians.get(c.name)]
    if missing:
        raise ValueError(f"no latency rounds for passing variant(s) {', '.join(missing)}")
    counts = {len(round_medians[c.name]) for c in candidates if round_medians.get(c.name)}
    if len(counts) != 1:
        raise ValueError(f"latency rounds cannot be paired: round counts {sorted(counts)} differ")
    return counts.pop()


def _refuse(candidates: Sequence[Choice]) -> NoReturn:
    """The same refusal as the pipeline's: no variant passed its gates, so no bundle."""
    why = "; ".join(f"{c.name} ({', '.join(c.failures) or 'no gate could be computed'})" for c in candidates)
    report = {"candidates": [asdict(c) for c in candidates]}
    raise GateFailedError(f"export refused: no variant passed its gates: {why or 'no variants'}", report)


def _ratio(mine: float, theirs: float) -> float:
    # A clock too coarse for a fast call reads 0 ms: equal zeros tie, anything over zero is slower.
    if theirs > 0:
        return mine / theirs
    return 1.0 if mine <= 0 else float("inf")


def _or_lowest(value: float | None) -> float:
    return float("-inf") if value is None else value


def _elapsed_ms(run: Callable[[], object], clock: Callable[[], float]) -> float:
    start = clock()
    run()
    return (clock() - start) * 1000.0


def _rounded(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 6) if np.isfinite(value) else str(value)
    if isinstance(value, tuple | list):
        return [_rounded(v) for v in value]
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    return value
