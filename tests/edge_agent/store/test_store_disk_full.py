"""A site store on a disk that fills up for real (a small tmpfs): writes are refused whole with a
typed error, nothing committed before is lost, and writing works again once space is back."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from edge_agent.store import InputRecord, ModelRow, SiteStore
from genba.errors import StoreFullError

pytestmark = pytest.mark.fault

#: Each micro-batch carries ~64 KB of report text, so a full WAL is reached in a few batches.
_REPORT = os.urandom(2048).hex() * 16


def _write_until_full(
    store: SiteStore, model: ModelRow, answer: Callable[..., Any]
) -> tuple[list[int], StoreFullError]:
    committed: list[int] = []
    for _ in range(2000):
        try:
            committed.append(_write_one(store, model, answer))
        except StoreFullError as error:
            return committed, error
    raise AssertionError("the small disk never filled up")


def _assert_whole(store: SiteStore) -> None:
    assert store.integrity_check() == "ok"
    reports = store.verify_chains(full=True)
    assert reports["audit"].ok and reports["egress"].ok, reports


def test_a_full_disk_refuses_store_writes_whole_and_they_work_again_once_space_is_back(
    small_disk: Any, add_model: Callable[..., ModelRow], answer: Callable[..., Any]
) -> None:
    path: Path = small_disk.root / "store.db"
    with SiteStore(path) as store:
        model = add_model(store)
        store.append_audit("agent_start", "system", {"note": "before the disk filled"})
        before = [_write_one(store, model, answer) for _ in range(3)]
        small_disk.fill()
        committed, error = _write_until_full(store, model, answer)
        committed = before + committed

        assert error.status == 507 and error.exit_code == 6
        assert "\n" not in str(error) and "disk is full" in str(error) and str(path) in str(error)
        with pytest.raises(StoreFullError):
            store.append_audit("install", "supervisor", {"padding": _REPORT})
        with pytest.raises(StoreFullError):
            store.add_label(committed[0], "dent", actor="operator", split="train", groups={"note": _REPORT})
        _assert_whole(store)
        assert [row.id for row in store.get_inputs(committed)] == committed  # nothing acknowledged is lost

        small_disk.free()
        more = [_write_one(store, model, answer) for _ in range(3)]
        store.add_label(committed[0], "dent", actor="operator", split="train")
        store.append_audit("disk_freed", "system", {})
        _assert_whole(store)
        assert len(more) == 3
    with SiteStore(path) as reopened:
        _assert_whole(reopened)
        assert len(reopened.get_inputs(committed + more)) == len(committed) + 3
        assert reopened.audit(limit=1)[0].fields["event"] == "disk_freed"


def _write_one(store: SiteStore, model: ModelRow, answer: Callable[..., Any]) -> int:
    return store.record_served([InputRecord("text", _REPORT.encode())], [[answer(model.id)]])[0][0]
