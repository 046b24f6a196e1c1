"""A robust ``auto``: interleaved rounds, paired ratios, and the most accurate of the tied variants."""

from __future__ import annotations

import json
import math
import random
from collections.abc import Callable

import pytest

from export.speed import (
    Choice,
    SpeedRule,
    bound_rank,
    choose,
    cycling,
    interleaved_latencies,
    median_lower_bound,
    round_orders,
)
from genba.errors import ConfigError, GateFailedError


class FakeClock:
    """Seconds that pass only when a fake runner says its call took them."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _runners(
    clock: FakeClock, costs_ms: dict[str, float], log: list[str], first_penalty: tuple[int, float] = (0, 0.0)
) -> dict[str, Callable[[], object]]:
    """Runners that advance the clock by their cost. ``first_penalty`` = (calls per round, ms): the
    first timed call of a round also pays the ms (a cold cache, a core another process just left)."""
    calls_per_round, penalty_ms = first_penalty

    def make(name: str) -> Callable[[], object]:
        def run() -> object:
            first = calls_per_round > 0 and len(log) % calls_per_round == 0
            log.append(name)
            clock.now += (costs_ms[name] + (penalty_ms if first else 0.0)) / 1000.0
            return None

        return run

    return {name: make(name) for name in costs_ms}


def _rounds_by_factor(base_ms: float, factors: list[float]) -> list[float]:
    return [base_ms * f for f in factors]


# ---- interleaving ----------------------------------------------------------------------------------


def test_every_runner_runs_in_every_round_and_the_first_one_changes() -> None:
    clock, log = FakeClock(), list[str]()
    costs = {"fp32": 9.0, "int8-mixed": 4.0, "int8-per-channel": 4.2}
    medians = interleaved_latencies(_runners(clock, costs, log), 6, 3, warmup=2, clock=clock)
    assert log[:6] == ["fp32", "fp32", "int8-mixed", "int8-mixed", "int8-per-channel", "int8-per-channel"]
    timed = log[6:]
    rounds = [timed[i : i + 9] for i in range(0, len(timed), 9)]
    assert len(rounds) == 6 and all(sorted(set(r)) == sorted(costs) for r in rounds)
    firsts = [r[0] for r in rounds]
    assert len(set(firsts)) == 3, f"some variant never went first: {firsts}"
    assert len({tuple(r[::3]) for r in rounds}) > 1, "every round ran in the same order"
    assert {name: len(values) for name, values in medians.items()} == dict.fromkeys(costs, 6)


def test_every_name_takes_every_position_once_per_cycle() -> None:
    names = ["a", "b", "c", "d"]
    orders = round_orders(names, 8, seed=3)
    for cycle in (orders[:4], orders[4:]):
        for position in range(4):
            assert sorted(order[position] for order in cycle) == names
    assert round_orders(names, 8, seed=3) == orders
    assert round_orders(names, 8, seed=4) != orders


def test_a_first_in_round_penalty_does_not_decide_the_medians() -> None:
    """Run one after another, the first variant would carry the penalty in every round."""
    clock, log = FakeClock(), list[str]()
    costs = {"a": 4.0, "b": 4.0, "c": 4.0}
    runners = _runners(clock, costs, log, first_penalty=(3 * 2, 5.0))
    medians = interleaved_latencies(runners, 9, 2, 0, clock)
    penalised = [sum(1 for m in values if m > 4.5) for values in medians.values()]
    assert penalised == [3, 3, 3]
    assert all(sorted(values)[4] == pytest.approx(4.0) for values in medians.values())


def test_fake_clock_timings_are_exact_and_repeatable() -> None:
    def measure() -> dict[str, list[float]]:
        clock, log = FakeClock(), list[str]()
        return interleaved_latencies(_runners(clock, {"x": 2.5, "y": 7.0}, log), 5, 4, 1, clock, order_seed=7)

    first = measure()
    assert first == measure()
    assert first["x"] == pytest.approx([2.5] * 5) and first["y"] == pytest.approx([7.0] * 5)


def test_cycling_feeds_the_inputs_in_turn() -> None:
    seen: list[int] = []
    runner = cycling(seen.append, [1, 2, 3])
    for _ in range(7):
        runner()
    assert seen == [1, 2, 3, 1, 2, 3, 1]


def test_bad_counts_are_refused() -> None:
    with pytest.raises(ConfigError):
        interleaved_latencies({}, 3, 1, 0)
    with pytest.raises(ConfigError):
        interleaved_latencies({"a": lambda: None}, 0, 1, 0)
    with pytest.raises(ConfigError):
        SpeedRule(confidence=1.0, tolerance=-0.1)


# ---- the lower bound -------------------------------------------------------------------------------


@pytest.mark.parametrize("rounds", range(1, 16))
def test_bound_rank_matches_the_binomial_tail_by_hand(rounds: int) -> None:
    def tail(k: int) -> float:  # P(Binomial(rounds, 1/2) >= k)
        return sum(math.comb(rounds, j) for j in range(k, rounds + 1)) / 2**rounds

    valid = [k for k in range(1, rounds + 1) if tail(k) >= 0.95]
    assert bound_rank(rounds, 0.95) == (max(valid) if valid else None)
    assert bound_rank(4, 0.95) is None and bound_rank(5, 0.95) == 1 and bound_rank(9, 0.95) == 2


def test_the_lower_bound_covers_the_true_median_at_least_as_often_as_promised() -> None:
    rng = random.Random(0)
    true_median, trials = 1.2, 2000
    below = 0
    for _ in range(trials):
        ratios = [true_median * math.exp(rng.gauss(0.0, 0.3)) for _ in range(9)]
        lower, _ = median_lower_bound(ratios, 0.95)
        assert lower is not None
        below += lower <= true_median
    assert below / trials >= 0.95  # exact coverage for 9 rounds is 0.980


# ---- the choice ------------------------------------------------------------------------------------

NOISE = [0.92, 1.10, 1.01, 0.95, 1.12, 1.04, 0.98, 1.08, 1.06]  # mean ≈ 1.03, spread ±10%
LOAD = [1.0, 1.0, 1.7, 1.0, 1.3, 1.0, 2.1, 1.0, 1.0]  # another process on a core in some rounds


def test_a_noisy_tie_keeps_the_more_accurate_although_it_is_a_few_percent_slower() -> None:
    fast = _rounds_by_factor(3.9, LOAD)
    accurate = [f * n for f, n in zip(fast, NOISE, strict=True)]
    candidates = [
        Choice("int8-mixed", True, accuracy=0.811, mean_cosine=0.985),
        Choice("int8-per-channel", True, accuracy=0.822, mean_cosine=0.991),
    ]
    decision = choose(candidates, {"int8-mixed": fast, "int8-per-channel": accurate}, SpeedRule())
    assert decision.fastest == "int8-mixed"
    slower, fastest = decision.figures["int8-per-channel"].median_ms, decision.figures["int8-mixed"].median_ms
    assert slower is not None and fastest is not None and slower > fastest
    assert set(decision.tied) == {"int8-mixed", "int8-per-channel"}
    assert decision.chosen == "int8-per-channel"


def test_a_clearly_slower_more_accurate_variant_is_not_chosen() -> None:
    fast = _rounds_by_factor(3.9, LOAD)
    candidates = [Choice("int8-mixed", True, accuracy=0.811), Choice("fp32", True, accuracy=0.82)]
    decision = choose(candidates, {"int8-mixed": fast, "fp32": [1.6 * t for t in fast]}, SpeedRule())
    assert decision.chosen == "int8-mixed" and decision.tied == ("int8-mixed",)
    figures = decision.figures["fp32"]
    assert figures.lower_bound == pytest.approx(1.6) and not figures.within_noise


def test_a_consistent_slowdown_just_over_the_tolerance_is_not_a_tie() -> None:
    fast = _rounds_by_factor(3.9, LOAD)
    slower = [t * 1.15 * (1 + 0.01 * (i % 3)) for i, t in enumerate(fast)]
    candidates = [Choice("a", True, accuracy=0.80), Choice("b", True, accuracy=0.90)]
    assert choose(candidates, {"a": fast, "b": slower}, SpeedRule()).chosen == "a"
    assert choose(candidates, {"a": fast, "b": slower}, SpeedRule(tolerance=0.2)).chosen == "b"


def test_an_uncertain_slowdown_gives_the_more_accurate_variant_the_benefit_of_the_doubt() -> None:
    """Median ratio 1.18, but two of nine rounds near 1: not shown, at 0.95, to be over 10% slower."""
    fast = _rounds_by_factor(4.0, LOAD)
    ratios = [1.05, 1.2, 1.25, 0.98, 1.3, 1.15, 1.22, 1.18, 1.12]
    candidates = [Choice("a", True, accuracy=0.80), Choice("b", True, accuracy=0.82)]
    decision = choose(
        candidates, {"a": fast, "b": [t * r for t, r in zip(fast, ratios, strict=True)]}, SpeedRule()
    )
    figures = decision.figures["b"]
    assert figures.median_ratio == pytest.approx(1.18) and figures.lower_bound == pytest.approx(1.05)
    assert decision.chosen == "b"
    more_confident = choose(candidates, {"a": fast, "b": [t * 1.18 for t in fast]}, SpeedRule())
    assert more_confident.chosen == "a"


def test_pairing_by_round_sees_through_load_that_swamps_the_raw_medians() -> None:
    """Unpaired, the load spike makes everyone's spread overlap; paired per round, the ratio is exact."""
    load = [1.0, 4.0, 1.0, 3.5, 1.0, 5.0, 1.0]
    fast = _rounds_by_factor(4.0, load)
    candidates = [Choice("a", True, 0.80), Choice("b", True, 0.82), Choice("c", True, 0.85)]
    medians = {"a": fast, "b": [1.05 * t for t in fast], "c": [1.3 * t for t in fast]}
    assert max(medians["a"]) > min(medians["c"]) * 3, "the raw round medians overlap widely"
    decision = choose(candidates, medians, SpeedRule())
    assert decision.tied == ("a", "b") and decision.chosen == "b"


def test_a_variant_that_failed_its_gates_is_never_chosen_even_if_fastest() -> None:
    fast = _rounds_by_factor(4.0, LOAD)
    candidates = [
        Choice("int8-per-tensor", False, accuracy=0.99, mean_cosine=0.90, failures=("mean_cosine: 0.9",)),
        Choice("int8-mixed", True, accuracy=0.80),
        Choice("fp32", True, accuracy=0.82),
    ]
    medians = {
        "int8-per-tensor": [0.5 * t for t in fast],
        "int8-mixed": fast,
        "fp32": [t * n for t, n in zip(fast, NOISE, strict=True)],
    }
    decision = choose(candidates, medians, SpeedRule())
    assert decision.fastest == "int8-mixed" and decision.chosen == "fp32"
    assert "int8-per-tensor" not in decision.tied
    assert decision.figures["int8-per-tensor"].median_ratio == pytest.approx(0.5)


def test_nothing_passing_raises_the_pipelines_gate_error() -> None:
    candidates = [
        Choice("fp32", False, failures=("max_abs_diff: 0.1 vs limit 0.001",)),
        Choice("int8", False),
    ]
    with pytest.raises(GateFailedError, match="no variant passed its gates") as caught:
        choose(candidates, {"fp32": [1.0], "int8": [0.5]}, SpeedRule())
    assert "max_abs_diff: 0.1 vs limit 0.001" in str(caught.value)
    assert "int8 (no gate could be computed)" in str(caught.value)
    assert [c["name"] for c in caught.value.report["candidates"]] == ["fp32", "int8"]


def test_without_accuracy_the_mean_cosine_decides_then_speed() -> None:
    fast = _rounds_by_factor(4.0, LOAD)
    noisy = [t * n for t, n in zip(fast, NOISE, strict=True)]
    by_cosine = [Choice("a", True, mean_cosine=0.980), Choice("b", True, mean_cosine=0.995)]
    assert choose(by_cosine, {"a": fast, "b": noisy}, SpeedRule()).chosen == "b"
    equal = [
        Choice("a", True, accuracy=0.8, mean_cosine=0.99),
        Choice("b", True, accuracy=0.8, mean_cosine=0.99),
    ]
    assert choose(equal, {"a": fast, "b": noisy}, SpeedRule()).chosen == "a"


def test_too_few_rounds_fall_back_to_the_median_ratio_and_say_so() -> None:
    candidates = [Choice("a", True, accuracy=0.80), Choice("b", True, accuracy=0.82)]
    close = choose(candidates, {"a": [4.0, 4.0, 4.0], "b": [4.2, 3.9, 4.3]}, SpeedRule())
    assert close.bound_rank is None and close.note and "too few" in close.note
    assert close.figures["b"].lower_bound is None and close.chosen == "b"
    far = choose(candidates, {"a": [4.0, 4.0, 4.0], "b": [4.9, 3.9, 5.0]}, SpeedRule())
    assert far.chosen == "a"


def test_timings_that_cannot_be_paired_are_refused() -> None:
    candidates = [Choice("a", True), Choice("b", True)]
    with pytest.raises(ValueError, match="paired"):
        choose(candidates, {"a": [1.0, 1.0], "b": [1.0]}, SpeedRule())
    with pytest.raises(ValueError, match="no latency rounds"):
        choose(candidates, {"a": [1.0]}, SpeedRule())


def test_the_decision_json_holds_the_rule_and_the_figures_that_decided() -> None:
    clock, log = FakeClock(), list[str]()
    costs = {"int8-mixed": 3.9, "int8-per-channel": 4.0, "fp32": 9.0}
    medians = interleaved_latencies(_runners(clock, costs, log), 7, 2, 1, clock)
    candidates = [
        Choice("int8-mixed", True, accuracy=0.811, mean_cosine=0.985),
        Choice("int8-per-channel", True, accuracy=0.822, mean_cosine=0.991),
        Choice("fp32", True, accuracy=0.820, mean_cosine=1.0),
    ]
    document = json.loads(json.dumps(choose(candidates, medians, SpeedRule()).to_json()))
    assert document["chosen"] == "int8-per-channel" and document["fastest"] == "int8-mixed"
    assert document["confidence"] == 0.95 and document["tolerance"] == 0.1 and document["rounds"] == 7
    assert document["bound"] == {"order_statistic": 1} and document["note"] is None
    assert "lower bound" in document["rule"] and "accuracy" in document["rule"]
    channel = document["variants"]["int8-per-channel"]
    assert channel["median_ms"] == pytest.approx(4.0) and channel["median_ratio"] == pytest.approx(4.0 / 3.9)
    assert channel["lower_bound"] == pytest.approx(4.0 / 3.9) and channel["within_noise"] is True
    assert channel["round_ms"] == pytest.approx([4.0] * 7) and channel["accuracy"] == 0.822
    assert document["variants"]["fp32"]["within_noise"] is False
    assert document["tied"] == ["int8-mixed", "int8-per-channel"]
