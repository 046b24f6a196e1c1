"""Held-out labels by content: twins of held-out reports never train; held-out sets renewed by use."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from edge_agent.split import HOLDOUT, TRAIN, SplitRule, content_key
from edge_agent.store import MIGRATIONS, InputRecord, ModelRow, SiteStore
from edge_agent.store.holdout import judged_on_held_out
from edge_agent.store.schema import apply_migrations
from edge_agent.training.data import load_training_set, read_training_labels

AddModel = Callable[..., ModelRow]
LABELS = ("dent", "scratch")


def _post(store: SiteStore, *texts: str) -> list[int]:
    written = store.record_served([InputRecord("text", t.encode()) for t in texts], [[] for _ in texts])
    return [input_id for input_id, _ in written]


def _judged(model_id: int) -> dict[str, Any]:
    """A gate report as the gates write it once both models ran on held-out labels."""
    accuracy = {"name": "accuracy", "passed": True, "value": 1.5, "limit": -2.0, "detail": "",
                "evidence": {"labels": 30}}  # fmt: skip
    return {"model_id": model_id, "ready": True, "gates": [{"name": "items", "value": 40.0}, accuracy]}


def _unjudged(model_id: int) -> dict[str, Any]:
    accuracy = {"name": "accuracy", "passed": False, "value": None, "detail": "3 held-out operator labels"}
    return {"model_id": model_id, "ready": True, "gates": [accuracy]}


def test_a_train_label_whose_content_is_held_out_never_reaches_training(
    store: SiteStore, store_path: Path
) -> None:
    held, twin, shouted, other, alone = _post(
        store, "Dent near the rim", "dent near  the rim", "DENT NEAR THE RIM\n", "scratch on the clip", "dent"
    )
    store.add_label(held, "dent", actor="operator", split=HOLDOUT)
    for input_id, label in ((twin, "dent"), (shouted, "dent"), (other, "scratch"), (alone, "dent")):
        assert store.add_label(input_id, label, actor="operator", split=TRAIN).split == TRAIN

    assert [i for i, _ in store.labelled_keys(TRAIN)] == [alone, other]
    assert [item.input_id for item in read_training_labels(store)] == [alone, other]
    training = load_training_set(store_path, LABELS, "text")  # training's own read-only visit
    assert training.input_ids == [other, alone] and len(training) == 2
    assert [i for i, _ in store.labelled_keys(HOLDOUT)] == [held]


def test_twins_of_held_out_content_from_any_epoch_never_train(store: SiteStore, add_model: AddModel) -> None:
    store.holdout_reuse_limit = 1
    (old,) = _post(store, "oil on the bracket")
    store.add_label(old, "dent", actor="operator", split=HOLDOUT)
    candidate = add_model(store, 2)
    store.record_decision(candidate.id, "shadow", "pilot", "gates", "hold", _judged(candidate.id))
    assert store.holdout_status()["epoch"] == 1 and store.labelled_keys(HOLDOUT) == []
    (twin,) = _post(store, "Oil on the bracket")
    store.add_label(twin, "scratch", actor="operator", split=TRAIN)
    assert store.labelled_keys(TRAIN) == []  # the old held-out label is history, still never trained on
    assert store.labelled_keys(HOLDOUT, epoch=0) == [(old, "dent")]


def test_the_rule_splits_identical_content_alike_and_a_relabel_keeps_the_first_split(
    store: SiteStore,
) -> None:
    rule = SplitRule("site-a", 0.5)
    texts = [f"report {n} on line {n % 3}" for n in range(40)]
    ids = _post(store, *texts, *(t.upper() + "  " for t in texts))
    rows = [store.add_label(i, "dent", actor="operator", split=rule) for i in ids]
    for first, again in zip(rows[:40], rows[40:], strict=True):
        assert first.split == again.split == rule.split_for("text", store.get_input(first.input_id).payload)
    assert {r.split for r in rows} == {TRAIN, HOLDOUT}
    relabelled = store.add_label(
        ids[0], "scratch", actor="supervisor", split=HOLDOUT if rows[0].split == TRAIN else TRAIN
    )
    assert relabelled.split == rows[0].split
    assert not {i for i, _ in store.labelled_keys(TRAIN)} & {i for i, _ in store.labelled_keys(HOLDOUT)}


def test_the_held_out_set_is_renewed_once_the_limit_of_candidates_has_been_judged_on_it(
    store: SiteStore, add_model: AddModel
) -> None:
    store.holdout_reuse_limit = 3
    production = add_model(store, 1)
    first = _post(store, *(f"first set report {n}" for n in range(4)))
    for input_id in first:
        store.add_label(input_id, "dent", actor="operator", split=HOLDOUT)
    candidates = [add_model(store, version) for version in (2, 3, 4)]
    # not judged on held-out labels: never counted
    store.record_decision(candidates[0].id, "shadow", "pilot", "gates", "hold", _unjudged(candidates[0].id))
    store.record_decision(production.id, None, "production", "system", "install", None)
    assert store.holdout_status()["candidates_judged"] == 0
    # one candidate judged twice (shadow, then pilot) counts once
    store.record_decision(candidates[0].id, "shadow", "pilot", "gates", "advance", _judged(candidates[0].id))
    store.record_decision(candidates[0].id, "pilot", "production", "gates", "hold", _judged(candidates[0].id))
    store.record_decision(candidates[1].id, "shadow", "pilot", "gates", "hold", _judged(candidates[1].id))
    status = store.holdout_status()
    assert (status["epoch"], status["candidates_judged"], status["labels"]) == (0, 2, 4)
    assert [i for i, _ in store.labelled_keys(HOLDOUT)] == first[::-1]

    store.record_decision(candidates[2].id, "shadow", "pilot", "gates", "hold", _judged(candidates[2].id))
    status = store.holdout_status()
    assert status["epoch"] == 1 and status["candidates_judged"] == 0 and status["reuse_limit"] == 3
    assert (status["labels"], status["history_labels"]) == (0, 4)
    assert store.labelled_keys(HOLDOUT) == []  # the gates judge on the new set only
    assert [e.fields["details"] for e in store.audit(event="holdout_epoch")] == [
        {"epoch": 1, "previous": 0, "candidates_judged": 3, "reuse_limit": 3}
    ]
    (fresh,) = _post(store, "second set report")
    store.add_label(fresh, "scratch", actor="operator", split=HOLDOUT)
    store.add_label(first[0], "scratch", actor="supervisor", split=HOLDOUT)  # a correction stays in its set
    assert store.labelled_keys(HOLDOUT) == [(fresh, "scratch")]
    assert {i for i, _ in store.labelled_keys(HOLDOUT, epoch=0)} == set(first)
    assert store.holdout_status()["labels"] == 1


def test_a_decision_counts_only_when_its_accuracy_gate_ran_on_held_out_labels() -> None:
    assert judged_on_held_out(_judged(1))
    assert judged_on_held_out({"gates": [{"name": "accuracy", "value": -3.0}]})
    assert not judged_on_held_out(_unjudged(1))
    assert not judged_on_held_out(None) and not judged_on_held_out({"agreement": 0.97})


def test_retention_blanks_the_content_key_with_the_payload(
    store: SiteStore, store_path: Path, clock: Any
) -> None:
    (input_id,) = _post(store, "secret report P-5678")
    store.add_label(input_id, "dent", actor="operator", split=TRAIN)
    with closing(sqlite3.connect(store_path)) as conn:
        assert conn.execute("SELECT content_key FROM inputs").fetchone()[0] == content_key(
            "text", b"secret report p-5678"
        )
    clock.advance(2 * 86400.0)
    store.prune(keep_days=1, keep_labelled=False)
    with closing(sqlite3.connect(store_path)) as conn:
        assert conn.execute("SELECT content_key, payload_sha256 FROM inputs").fetchone() == (None, "")


def test_a_v4_store_keeps_its_splits_and_its_id_split_twins_stop_training(tmp_path: Path) -> None:
    """Before v5 the split was a hash of the input id: the same report could be train and held out."""
    path = tmp_path / "store.db"
    with closing(sqlite3.connect(path, isolation_level=None)) as conn:
        apply_migrations(conn, path, MIGRATIONS[:4])
        for text in ("Rust on the flange", "rust on the flange", "dent on the cover", "pruned long ago"):
            conn.execute(
                "INSERT INTO inputs (created_at, kind, payload, payload_sha256) VALUES (1, 'text', ?, '')",
                (text.encode(),),
            )
        conn.execute("UPDATE inputs SET payload = x'', pruned_at = 2 WHERE id = 4")
        for input_id, label, split in ((1, "rust", "holdout"), (2, "rust", "train"), (3, "dent", "train"),
                                       (4, "dent", "train")):  # fmt: skip
            conn.execute(
                "INSERT INTO labels (input_id, label, actor, split, is_correction, created_at) "
                "VALUES (?, ?, 'operator', ?, 0, 1)",
                (input_id, label, split),
            )
        conn.execute(
            "INSERT INTO models (name, version, manifest_sha256, path, installed_at, installed_by) "
            "VALUES ('m', 2, '', 'm', 1, 'it')"
        )
        conn.execute(
            "INSERT INTO stage_decisions (model_id, actor, outcome, gates, created_at) VALUES (1, 'gates', "
            "'hold', ?, 1)",
            ('{"gates":[{"name":"accuracy","value":-4.0}]}',),
        )
    with SiteStore(path) as store:
        assert store.labelled_keys(TRAIN) == [(3, "dent")]  # input 2 is a twin of held-out input 1
        assert store.labelled_keys(HOLDOUT) == [(1, "rust")]
        status = store.holdout_status()
        assert (status["epoch"], status["labels"], status["candidates_judged"]) == (0, 1, 1)
    with closing(sqlite3.connect(path)) as conn:
        keys = dict(conn.execute("SELECT id, content_key FROM inputs").fetchall())
    assert keys[1] == keys[2] == content_key("text", b"rust on the flange") and keys[4] is None


@pytest.mark.parametrize("limit", [1, 2])
def test_the_reuse_limit_comes_from_the_store_settings(
    store_path: Path, add_model: AddModel, limit: int
) -> None:
    with SiteStore(store_path, holdout_reuse_limit=limit) as store:
        for version in range(2, 2 + limit):
            model = add_model(store, version)
            store.record_decision(model.id, "shadow", "pilot", "gates", "hold", _judged(model.id))
        assert store.holdout_status()["epoch"] == 1
