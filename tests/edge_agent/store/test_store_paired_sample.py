"""The paired sample: both answers on held-out inputs in a candidate's stage, in order, drawn or not."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from edge_agent.store import InputRecord, ModelRow, PairedAnswer, PairedBatch, PredictionRecord, SiteStore
from genba.errors import StoreError

AddModel = Callable[..., ModelRow]


def _post(store: SiteStore, *texts: str) -> list[int]:
    written = store.record_served([InputRecord("text", t.encode()) for t in texts], [[] for _ in texts])
    return [input_id for input_id, _ in written]


def _shadow(candidate: int, production: int, *answers: PairedAnswer) -> PairedBatch:
    return PairedBatch(candidate, production, "shadow", answers)


def _models(store: SiteStore, add_model: AddModel) -> tuple[int, int]:
    return add_model(store, 1).id, add_model(store, 2).id


def test_the_sequence_is_in_serving_order_with_the_labels_of_drawn_inputs_only(
    store: SiteStore, add_model: AddModel
) -> None:
    production, candidate = _models(store, add_model)
    a, b, c, d = _post(store, "alpha dent", "beta", "gamma", "delta")
    store.record_paired(_shadow(candidate, production,
        PairedAnswer(c, "ok", "dent", True), PairedAnswer(a, "ok", "dent", True),
        PairedAnswer(b, "ok", "ok", False), PairedAnswer(d, "ok", "dent", False),
    ))  # fmt: skip
    for input_id in (a, b, c, d):
        store.add_label(input_id, "ok", actor="operator", split="holdout")
    rows = store.paired_sequence(candidate, production, "shadow")
    assert [r.input_id for r in rows] == [a, b, c, d]
    # An undrawn input's label (given for another reason) never enters the evidence.
    assert [r.outcome for r in rows] == [1, None, 1, None]
    assert store.paired_sequence(candidate, production, "pilot") == []  # another stage, another sequence
    assert store.paired_sequence(candidate, candidate, "shadow") == []  # another production


def test_the_queue_offers_the_candidates_drawn_unlabelled_inputs_oldest_first(
    store: SiteStore, add_model: AddModel
) -> None:
    production, candidate = _models(store, add_model)
    a, b, c = _post(store, "first", "second", "third")
    store.record_paired(_shadow(candidate, production,
        PairedAnswer(a, "ok", "dent", True), PairedAnswer(b, "ok", "ok", False),
        PairedAnswer(c, "ok", "dent", True),
    ))  # fmt: skip
    queued = store.disagreement_queue(candidate)
    assert [(q.input_id, q.disagreement, q.audit) for q in queued] == [(a, True, False), (c, True, False)]
    store.add_label(a, "dent", actor="operator", split="holdout")
    assert [q.input_id for q in store.disagreement_queue(candidate)] == [c]
    assert store.disagreement_queue(production) == []


def test_a_drawn_report_labelled_through_its_identical_twin_does_not_hold_the_sequence(
    store: SiteStore, add_model: AddModel
) -> None:
    production, candidate = _models(store, add_model)
    twin, drawn, later = _post(store, "Scratch on  the LID", "scratch on the lid", "another")
    store.add_label(twin, "scratch", actor="operator", split="holdout")
    store.record_paired(_shadow(candidate, production,
        PairedAnswer(drawn, "scratch", "dent", True), PairedAnswer(later, "dent", "scratch", True),
    ))  # fmt: skip
    rows = store.paired_sequence(candidate, production, "shadow")
    assert [(r.input_id, r.label, r.outcome) for r in rows] == [(drawn, "scratch", 1), (later, None, None)]


def test_only_a_disagreement_can_be_drawn_and_an_input_joins_a_candidates_sample_once(
    store: SiteStore, add_model: AddModel
) -> None:
    production, candidate = _models(store, add_model)
    (a,) = _post(store, "only")
    with pytest.raises(StoreError, match="CHECK constraint failed"):
        store.record_paired(_shadow(candidate, production, PairedAnswer(a, "ok", "ok", True)))
    store.record_paired(_shadow(candidate, production, PairedAnswer(a, "ok", "dent", False)))
    store.record_paired(_shadow(candidate, production, PairedAnswer(a, "ok", "dent", True)))  # ignored
    assert [r.drawn for r in store.paired_sequence(candidate, production, "shadow")] == [False]


def test_shadow_answers_and_their_paired_rows_are_written_together_or_not_at_all(
    store: SiteStore, add_model: AddModel
) -> None:
    production, candidate = _models(store, add_model)
    a, b = _post(store, "first", "second")
    answers = [PredictionRecord(candidate, "shadow", "ok", 0.9, 0.8, 1.0, "cpu", served=False)] * 2
    bad = _shadow(candidate, production, PairedAnswer(a, "ok", "ok", True))  # a drawn agreement: refused
    with pytest.raises(StoreError, match="CHECK constraint failed"):
        store.add_predictions([a, b], answers, bad)
    assert store.stage_count(candidate, "shadow", 0.0) == 0  # the answers went with the rows
    store.add_predictions(
        [a, b], answers, _shadow(candidate, production, PairedAnswer(b, "ok", "dent", True))
    )
    assert [r.input_id for r in store.paired_sequence(candidate, production, "shadow")] == [b]


def test_a_draw_pruned_before_its_label_counts_as_productions_and_the_sequence_goes_on(
    store: SiteStore, add_model: AddModel, clock: Any
) -> None:
    production, candidate = _models(store, add_model)
    lost, agreed, later = _post(store, "old draw", "old agreement", "later draw")
    store.record_paired(_shadow(candidate, production,
        PairedAnswer(lost, "dent", "ok", True), PairedAnswer(agreed, "ok", "ok", False),
        PairedAnswer(later, "dent", "ok", True),
    ))  # fmt: skip
    assert [r.input_id for r in store.disagreement_queue(candidate)] == [lost, later]
    clock.advance(2 * 86400.0)
    store.prune(keep_days=1)  # retention blanks every unlabelled payload: the first draw can never be told
    assert store.disagreement_queue(candidate) == []  # nothing is asked about a report no one can read
    rows = store.paired_sequence(candidate, production, "shadow")
    assert [(r.input_id, r.lost, r.outcome) for r in rows] == [
        (lost, True, -1), (agreed, False, None), (later, True, -1)
    ]  # fmt: skip
