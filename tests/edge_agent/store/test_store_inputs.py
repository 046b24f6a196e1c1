"""Inputs, predictions, labels and the labelling queue."""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import pytest

from edge_agent.store import InputRecord, ModelRow, PredictionRecord, SiteStore
from genba.errors import UnknownItemError, UsageError

AddModel = Callable[..., ModelRow]
Answer = Callable[..., PredictionRecord]


class Clock(Protocol):
    def __call__(self) -> float: ...
    def advance(self, seconds: float) -> None: ...


def _text(text: str, **groups: str) -> InputRecord:
    return InputRecord(kind="text", payload=text.encode(), groups=groups, source="operator")


def _count(path: Path, table: str) -> int:
    with sqlite3.connect(path) as conn:
        count: int = conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
        return count


def test_record_served_round_trips_a_micro_batch(
    store: SiteStore, store_path: Path, clock: Callable[[], float], add_model: AddModel, answer: Answer
) -> None:
    production, shadow = add_model(store, 1), add_model(store, 2)
    written = store.record_served(
        [_text("scratch on housing", line="L2"), _text("dent near rim"), _text("no defect")],
        [
            [answer(production.id, "scratch"), answer(shadow.id, "dent", stage="shadow")],
            [],
            [answer(production.id)],
        ],
    )
    assert [len(ids) for _, ids in written] == [2, 0, 1]
    assert len({input_id for input_id, _ in written}) == 3
    first_id, (served_id, _shadow_id) = written[0]
    stored = store.get_input(first_id)
    assert stored.payload == b"scratch on housing"
    assert stored.kind == "text" and stored.groups == {"line": "L2"} and stored.created_at == clock()
    assert store.served_prediction(first_id) == (served_id, "scratch")
    assert store.served_prediction(written[1][0]) is None  # nothing served for it
    assert store.stage_count(shadow.id, "shadow", since=0) == 1
    with sqlite3.connect(store_path) as conn:
        digest = conn.execute("SELECT payload_sha256 FROM inputs WHERE id = ?", (first_id,)).fetchone()[0]
        served_flags = dict(
            conn.execute("SELECT stage, served FROM predictions WHERE input_id = ?", (first_id,))
        )
    assert digest == hashlib.sha256(b"scratch on housing").hexdigest()
    assert served_flags == {"production": 1, "shadow": 0}


def test_a_batch_naming_an_unknown_model_writes_nothing(
    store: SiteStore, store_path: Path, add_model: AddModel, answer: Answer
) -> None:
    model = add_model(store)
    with pytest.raises(UnknownItemError, match="model 99 does not exist"):
        store.record_served([_text("a"), _text("b")], [[answer(model.id)], [answer(99)]])
    assert _count(store_path, "inputs") == 0
    assert _count(store_path, "predictions") == 0


def test_record_served_checks_its_arguments(store: SiteStore, add_model: AddModel, answer: Answer) -> None:
    model = add_model(store)
    with pytest.raises(UsageError, match="2 inputs but predictions for 1"):
        store.record_served([_text("a"), _text("b")], [[answer(model.id)]])
    with pytest.raises(UsageError, match="input kind must be one of text, image"):
        store.record_served([InputRecord(kind="audio", payload=b"")], [[]])
    with pytest.raises(UsageError, match="prediction stage"):
        store.record_served([_text("a")], [[answer(model.id, stage="canary")]])


def test_add_predictions_attaches_late_answers(store: SiteStore, add_model: AddModel, answer: Answer) -> None:
    production, candidate = add_model(store, 1), add_model(store, 2)
    written = store.record_served(
        [_text("a"), _text("b")], [[answer(production.id)], [answer(production.id)]]
    )
    input_ids = [input_id for input_id, _ in written]
    ids = store.add_predictions(input_ids, [answer(candidate.id, stage="evaluation")] * 2)
    assert len(set(ids)) == 2
    assert store.stage_count(candidate.id, "evaluation", since=0) == 2
    with pytest.raises(UnknownItemError, match="input 404 does not exist"):
        store.add_predictions([404], [answer(candidate.id, stage="shadow")])
    with pytest.raises(UsageError, match="1 input ids but 2 predictions"):
        store.add_predictions(input_ids[:1], [answer(candidate.id)] * 2)


def test_get_input_names_a_missing_id(store: SiteStore) -> None:
    with pytest.raises(UnknownItemError) as caught:
        store.get_input(123)
    assert str(caught.value) == "input 123 does not exist"
    assert caught.value.exit_code == 2


def test_a_label_is_a_correction_only_when_it_differs_from_what_was_served(
    store: SiteStore, add_model: AddModel, answer: Answer
) -> None:
    model = add_model(store)
    written = store.record_served(
        [_text("a", line="L1"), _text("b"), _text("c")],
        [
            [answer(model.id, "dent")],
            [answer(model.id, "dent")],
            [answer(model.id, "scratch", stage="shadow")],
        ],
    )
    agreed, corrected, shadow_only = (input_id for input_id, _ in written)
    confirmation = store.add_label(agreed, "dent", actor="operator", split="train", operator_seconds=3.5)
    correction = store.add_label(corrected, "scratch", actor="operator", split="train")
    unserved = store.add_label(shadow_only, "dent", actor="supervisor", split="holdout")
    assert (confirmation.is_correction, correction.is_correction, unserved.is_correction) == (
        False,
        True,
        False,
    )
    assert confirmation.operator_seconds == 3.5 and confirmation.split == "train"
    with pytest.raises(UnknownItemError, match="input 77 does not exist"):
        store.add_label(77, "dent", actor="operator", split="train")
    with pytest.raises(UsageError, match="label split"):
        store.add_label(agreed, "dent", actor="operator", split="test")


def test_label_groups_merge_over_the_inputs_groups(store: SiteStore) -> None:
    [(input_id, _)] = store.record_served([_text("a", line="L1", shift="day")], [[]])
    store.add_label(input_id, "dent", actor="operator", split="train", groups={"shift": "night", "cell": "7"})
    [labelled] = store.labelled_inputs("train")
    assert labelled.groups == {"line": "L1", "shift": "night", "cell": "7"}
    assert store.get_input(input_id).groups == {"line": "L1", "shift": "day"}  # the input keeps its own


def test_labelled_inputs_use_the_latest_label_and_an_input_keeps_its_first_split(store: SiteStore) -> None:
    written = store.record_served([_text("a"), _text("b"), _text("c")], [[], [], []])
    a, b, c = (input_id for input_id, _ in written)
    store.add_label(a, "dent", actor="operator", split="train")
    store.add_label(b, "dent", actor="operator", split="train")
    store.add_label(c, "dent", actor="operator", split="holdout")
    store.add_label(a, "scratch", actor="supervisor", split="train")  # relabelled: this one counts
    moved = store.add_label(b, "dent", actor="supervisor", split="holdout")  # asks to move: refused
    assert moved.split == "train"  # training has seen b: it can never judge a candidate
    train = store.labelled_inputs("train")
    assert sorted((item.input_id, item.label, item.payload) for item in train) == [
        (a, "scratch", b"a"),
        (b, "dent", b"b"),
    ]
    assert [item.input_id for item in store.labelled_inputs("holdout")] == [c]
    assert len(store.labelled_inputs("train", limit=1)) == 1


def test_the_queue_offers_the_least_sure_unlabelled_inputs_first(
    store: SiteStore, clock: Clock, add_model: AddModel, answer: Answer
) -> None:
    model = add_model(store)
    margins = {"sure": 0.9, "unsure-old": 0.1, "middling": 0.4, "unsure-new": 0.1, "labelled": 0.01}
    ids: dict[str, int] = {}
    for name, margin in margins.items():
        clock.advance(60)
        [(ids[name], _)] = store.record_served([_text(name)], [[answer(model.id, margin=margin)]])
    [(ids["unanswered"], _)] = store.record_served([_text("unanswered")], [[]])
    store.add_label(ids["labelled"], "dent", actor="operator", split="train")
    queue = store.uncertain_unlabelled()
    assert [item.payload.decode() for item in queue] == [
        "unsure-new",
        "unsure-old",
        "middling",
        "sure",
        "unanswered",
    ]
    assert (queue[0].label, queue[0].margin, queue[0].score) == ("dent", 0.1, 0.9)
    assert queue[-1].label is None and queue[-1].margin is None
    assert len(store.uncertain_unlabelled(limit=2)) == 2


def test_unlabelled_payloads_are_distinct_never_labelled_contents_newest_first(
    store: SiteStore, clock: Clock
) -> None:
    names = ["old", "twin", "labelled", "twin", "new", "labelled", "stale"]
    ids = []
    for name in names:
        clock.advance(60)
        [(input_id, _)] = store.record_served([_text(name)], [[]])
        ids.append(input_id)
    store.add_label(ids[2], "dent", actor="operator", split="train")  # its twin at ids[5] goes too
    assert store.unlabelled_payloads("text", 10) == [b"stale", b"new", b"twin", b"old"]
    assert store.unlabelled_payloads("text", 2) == [b"stale", b"new"]
    assert store.unlabelled_payloads("image", 10) == []
    clock.advance(100 * 86400)
    store.prune(keep_days=1)  # retention blanks unlabelled payloads: nothing is left to learn from
    assert store.unlabelled_payloads("text", 10) == []


def test_concurrent_writers_in_threads_share_the_store_safely(
    store: SiteStore, store_path: Path, add_model: AddModel, answer: Answer
) -> None:
    model = add_model(store)
    results: list[int] = []

    def worker() -> None:
        for _ in range(20):
            written = store.record_served([_text("x")] * 3, [[answer(model.id)]] * 3)
            results.extend(input_id for input_id, _ in written)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == len(set(results)) == 4 * 20 * 3
    assert _count(store_path, "predictions") == 240
    assert store.integrity_check() == "ok"


def test_reopening_keeps_everything(
    store_path: Path, clock: Callable[[], float], add_model: AddModel, answer: Answer
) -> None:
    with SiteStore(store_path, clock=clock) as store:
        model = add_model(store)
        [(input_id, [prediction_id])] = store.record_served([_text("kept")], [[answer(model.id)]])
        label = store.add_label(input_id, "scratch", actor="operator", split="train")
        entry = store.append_audit("note", "operator", {"text": "shift change"})
        egress = store.append_egress(
            destination="superlink:9092", kind="update", payload_bytes=1234, round=1, content_sha256="b" * 64
        )
    with SiteStore(store_path, clock=clock) as reopened:
        assert reopened.get_model(model.id) == model
        assert reopened.get_input(input_id).payload == b"kept"
        assert reopened.served_prediction(input_id) == (prediction_id, "dent")
        assert reopened.labelled_inputs("train")[0].label == label.label
        assert reopened.audit() == [entry]
        assert reopened.egress() == [egress]
        assert all(report.ok for report in reopened.verify_chains().values())


def test_labelled_keys_name_exactly_the_labelled_inputs_without_their_payloads(store: SiteStore) -> None:
    written = store.record_served([_text("a"), _text("b"), _text("c")], [[], [], []])
    a, b, c = (input_id for input_id, _ in written)
    store.add_label(a, "dent", actor="operator", split="holdout")
    store.add_label(b, "dent", actor="operator", split="train")
    store.add_label(c, "scratch", actor="operator", split="holdout")
    store.add_label(a, "scratch", actor="supervisor", split="holdout")
    full = [(item.input_id, item.label) for item in store.labelled_inputs("holdout")]
    assert store.labelled_keys("holdout") == full == [(a, "scratch"), (c, "scratch")]
