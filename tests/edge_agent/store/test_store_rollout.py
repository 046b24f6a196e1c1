"""Models, slots, transitions and the production history stack."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import pytest

from edge_agent.store import ModelRow, SiteStore, Transition
from genba.errors import DuplicateItemError, UnknownItemError, UsageError

AddModel = Callable[..., ModelRow]


class Clock(Protocol):
    def __call__(self) -> float: ...
    def advance(self, seconds: float) -> None: ...


def _install(model_id: int) -> Transition:
    return Transition(
        event="install",
        actor="system",
        model_id=model_id,
        from_stage=None,
        to_stage="production",
        outcome="install",
        production=model_id,
    )


def _candidate(model_id: int, stage: str = "shadow") -> Transition:
    return Transition(
        event="replace_candidate",
        actor="integration",
        model_id=model_id,
        from_stage=None,
        to_stage=stage,
        outcome="replace",
        candidate=(model_id, stage),
    )


def _promote(model_id: int) -> Transition:
    return Transition(
        event="promote",
        actor="gates",
        model_id=model_id,
        from_stage="pilot",
        to_stage="production",
        outcome="advance",
        production=model_id,
        production_change="promote",
        candidate=None,
        gates={"agreement": 0.97},
    )


def _rollback(model_id: int) -> Transition:
    return Transition(
        event="rollback",
        actor="supervisor",
        model_id=model_id,
        from_stage=None,
        to_stage="production",
        outcome="rollback",
        production=model_id,
        production_change="rollback",
    )


def _history(store: SiteStore) -> list[tuple[int, str | None]]:
    """Oldest first: (model id, end reason)."""
    return [(row["model_id"], row["end_reason"]) for row in reversed(store.production_history())]


def _count(path: Path, table: str) -> int:
    with sqlite3.connect(path) as conn:
        count: int = conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
        return count


def test_a_model_version_installs_once(store: SiteStore, add_model: AddModel) -> None:
    model = add_model(store, 3, name="defects")
    assert store.get_model(model.id) == model
    assert model.lineage == {"parent": 2} and model.manifest == {"labels": ["dent", "scratch"]}
    with pytest.raises(DuplicateItemError) as caught:
        add_model(store, 3, name="defects")
    assert str(caught.value) == "model defects v3 is already installed"
    assert isinstance(caught.value, UsageError)
    assert store.list_models() == [model]


def test_find_model_prefers_the_newest_install(store: SiteStore, clock: Clock, add_model: AddModel) -> None:
    older = add_model(store, 2, name="defects")
    clock.advance(10)
    newer = add_model(store, 2, name="site-local")
    assert store.find_model(None, 2) == newer
    assert store.find_model("defects", 2) == older
    assert store.find_model("defects", 9) is None
    with pytest.raises(UnknownItemError, match="model 42 does not exist"):
        store.get_model(42)


def test_a_transition_updates_slots_history_decisions_and_audit_together(
    store: SiteStore, clock: Clock, add_model: AddModel
) -> None:
    v1, v2 = add_model(store, 1), add_model(store, 2)
    store.apply_transition(_install(v1.id))
    clock.advance(5)
    store.apply_transition(_candidate(v2.id, "shadow"))
    slots = store.slots()
    assert slots.production is not None and slots.production.model_id == v1.id
    assert slots.candidate is not None and (slots.candidate.model_id, slots.candidate.stage) == (
        v2.id,
        "shadow",
    )
    assert slots.candidate.since == clock()
    [decision, _install_decision] = store.decisions()
    assert (decision["model_id"], decision["outcome"], decision["to_stage"]) == (v2.id, "replace", "shadow")
    [entry, _] = store.audit()
    assert entry.fields["event"] == "replace_candidate" and entry.fields["actor"] == "integration"
    assert entry.fields["details"]["candidate"] == [v2.id, "shadow"]
    assert entry.fields["details"]["model_id"] == v2.id
    assert _history(store) == [(v1.id, None)]


def test_a_transition_that_fails_part_way_changes_nothing(
    store: SiteStore, store_path: Path, add_model: AddModel
) -> None:
    v1, v2 = add_model(store, 1), add_model(store, 2)
    store.apply_transition(_install(v1.id))
    store.apply_transition(_candidate(v2.id, "pilot"))
    before = (store.slots(), store.production_history(), store.decisions(), store.audit())
    unserialisable: dict[str, Any] = {"report": object()}  # fails only at the audit entry, the last write
    with pytest.raises(TypeError):
        store.apply_transition(Transition(**{**_promote(v2.id).__dict__, "details": unserialisable}))
    assert (store.slots(), store.production_history(), store.decisions(), store.audit()) == before
    assert _count(store_path, "stage_decisions") == 2
    assert store.verify_chains()["audit"].ok


def test_a_transition_naming_an_unknown_model_changes_nothing(store: SiteStore, add_model: AddModel) -> None:
    v1 = add_model(store, 1)
    store.apply_transition(_install(v1.id))
    with pytest.raises(UnknownItemError, match="model 99 does not exist"):
        store.apply_transition(_candidate(99))
    assert store.slots().candidate is None


def test_transitions_that_make_no_sense_are_refused(store: SiteStore, add_model: AddModel) -> None:
    v1, v2 = add_model(store, 1), add_model(store, 2)
    store.apply_transition(_install(v1.id))
    with pytest.raises(UsageError, match="needs production change 'promote' or 'rollback'"):
        store.apply_transition(_install(v2.id))
    with pytest.raises(UsageError, match="needs a new production model"):
        store.apply_transition(Transition(**{**_candidate(v2.id).__dict__, "production_change": "promote"}))
    with pytest.raises(UsageError, match="cannot be emptied"):
        store.apply_transition(Transition(**{**_install(v2.id).__dict__, "production": None}))
    with pytest.raises(UsageError, match="candidate stage"):
        store.apply_transition(_candidate(v2.id, "production"))
    with pytest.raises(UsageError, match="cannot be both production and candidate"):
        store.apply_transition(_candidate(v1.id))
    assert store.slots().candidate is None
    assert _history(store) == [(v1.id, None)]


def test_promote_then_rollback_twice_walks_the_history_stack(store: SiteStore, add_model: AddModel) -> None:
    v1, v2 = add_model(store, 1), add_model(store, 2)
    store.apply_transition(_install(v1.id))
    assert store.rollback_target() is None
    store.apply_transition(_candidate(v2.id, "pilot"))
    store.apply_transition(_promote(v2.id))
    slots = store.slots()
    assert slots.production is not None and slots.production.model_id == v2.id and slots.candidate is None
    assert _history(store) == [(v1.id, "replaced"), (v2.id, None)]
    assert store.rollback_target() == v1.id

    store.apply_transition(_rollback(v1.id))
    production = store.slots().production
    assert production is not None and production.model_id == v1.id
    assert _history(store) == [(v1.id, "restored"), (v2.id, "rolled_back"), (v1.id, None)]
    assert store.rollback_target() is None  # a second rollback has nowhere to go
    assert [entry.fields["event"] for entry in store.audit()] == [
        "rollback",
        "promote",
        "replace_candidate",
        "install",
    ]


def test_rollback_goes_back_one_step_at_a_time(store: SiteStore, add_model: AddModel) -> None:
    v1, v2, v3 = (add_model(store, version) for version in (1, 2, 3))
    store.apply_transition(_install(v1.id))
    store.apply_transition(_promote(v2.id))
    store.apply_transition(_promote(v3.id))
    assert store.rollback_target() == v2.id
    store.apply_transition(_rollback(v2.id))
    assert store.rollback_target() == v1.id
    store.apply_transition(_rollback(v1.id))
    assert store.rollback_target() is None
    assert _history(store) == [
        (v1.id, "restored"),
        (v2.id, "restored"),
        (v3.id, "rolled_back"),
        (v2.id, "rolled_back"),
        (v1.id, None),
    ]
    ended = [row for row in store.production_history() if row["end_reason"] is not None]
    assert all(row["ended_at"] is not None for row in ended)


def test_hold_decisions_are_recorded_without_touching_slots(store: SiteStore, add_model: AddModel) -> None:
    v1, v2 = add_model(store, 1), add_model(store, 2)
    store.apply_transition(_install(v1.id))
    store.apply_transition(_candidate(v2.id))
    slots_before = store.slots()
    decision_id = store.record_decision(
        v2.id, "shadow", "shadow", "gates", "hold", {"items": 40, "needed": 200}
    )
    assert store.slots() == slots_before
    [latest, *_] = store.decisions(model_id=v2.id)
    assert latest["id"] == decision_id and latest["gates"] == {"items": 40, "needed": 200}
    assert [d["model_id"] for d in store.decisions(model_id=v1.id)] == [v1.id]
    assert len(store.decisions(limit=2)) == 2
    with pytest.raises(UsageError, match="decision outcome"):
        store.record_decision(v2.id, "shadow", "pilot", "gates", "maybe", None)


def test_keep_leaves_a_slot_alone_and_none_empties_it(store: SiteStore, add_model: AddModel) -> None:
    v1, v2 = add_model(store, 1), add_model(store, 2)
    store.apply_transition(_install(v1.id))
    store.apply_transition(_candidate(v2.id, "shadow"))
    advance = Transition(
        event="advance",
        actor="gates",
        model_id=v2.id,
        from_stage="shadow",
        to_stage="pilot",
        outcome="advance",
        candidate=(v2.id, "pilot"),
    )
    store.apply_transition(advance)
    slots = store.slots()
    assert slots.candidate is not None and slots.candidate.stage == "pilot"
    assert slots.production is not None and slots.production.model_id == v1.id  # production was KEEP
    reject = Transition(
        event="reject",
        actor="supervisor",
        model_id=v2.id,
        from_stage="pilot",
        to_stage=None,
        outcome="reject",
        candidate=None,
    )
    store.apply_transition(reject)
    assert store.slots().candidate is None
    assert store.slots().production == slots.production
