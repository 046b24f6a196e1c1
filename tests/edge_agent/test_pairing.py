"""The paired sample's rows: held-out inputs only, and only disagreements drawn, at the set chance."""

from __future__ import annotations

import itertools

from edge_agent.answers import Item, ModelAnswer
from edge_agent.pairing import pair_answers
from edge_agent.split import HOLDOUT, SplitRule

RULE = SplitRule("site-a", 0.3)


def _answer(label: str | None) -> ModelAnswer:
    return ModelAnswer(label, 0.9, 0.5, {}, {}, "shadow", 1.0, "CPUExecutionProvider")


def _items(count: int) -> list[Item]:
    return [Item("text", f"report {i}", f"report {i}".encode()) for i in range(count)]


def test_only_held_out_inputs_join_and_only_disagreements_are_drawn() -> None:
    items = _items(400)
    labels = itertools.cycle(["ok", "dent"])
    ours = [_answer(next(labels)) for _ in items]
    theirs = [_answer("ok") for _ in items]
    pairs = pair_answers(RULE, 1.0, list(range(400)), items, ours, theirs)
    held_out = {i for i, item in enumerate(items) if RULE.split_for("text", item.raw) == HOLDOUT}
    assert {p.input_id for p in pairs} == held_out and 60 < len(held_out) < 180
    assert all(p.drawn == (p.candidate != p.production) for p in pairs)


def test_a_disagreement_is_drawn_with_the_configured_chance_and_an_unanswered_input_never_joins() -> None:
    items = _items(3000)
    ours = [_answer("dent") for _ in items]
    unanswered = next(i for i, item in enumerate(items) if RULE.split_for("text", item.raw) == HOLDOUT)
    ours[unanswered] = _answer(None)
    theirs = [_answer("ok") for _ in items]
    pairs = pair_answers(RULE, 0.25, list(range(3000)), items, ours, theirs)
    assert unanswered not in {p.input_id for p in pairs} and unanswered + 1 in {p.input_id for p in pairs} | {
        i for i, item in enumerate(items) if RULE.split_for("text", item.raw) != HOLDOUT
    }
    share = sum(p.drawn for p in pairs) / len(pairs)
    assert 0.2 < share < 0.3
