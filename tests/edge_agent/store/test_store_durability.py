"""Readers beside a writer, and commits that survive the writer being killed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from edge_agent.store import InputRecord, ModelRow, PredictionRecord, SiteStore
from genba.errors import StoreError

REPO_ROOT = Path(__file__).resolve().parents[3]

# Writes micro-batches forever, printing each batch's input ids once its transaction has committed.
WRITER = """
import sys
from pathlib import Path
from edge_agent.store import InputRecord, PredictionRecord, SiteStore

store = SiteStore(Path(sys.argv[1]))
model_id = int(sys.argv[2])
answer = PredictionRecord(model_id, "production", "dent", 0.9, 0.4, 2.0, "CPUExecutionProvider", True)
batch = 16
while True:
    written = store.record_served([InputRecord("text", b"report " * 40)] * batch, [[answer]] * batch)
    print(" ".join(str(input_id) for input_id, _ in written), flush=True)
"""


def _batch(model_id: int, size: int) -> tuple[list[InputRecord], list[list[PredictionRecord]]]:
    answer = PredictionRecord(model_id, "production", "dent", 0.9, 0.4, 2.0, "CPUExecutionProvider", True)
    return [InputRecord("text", b"committed")] * size, [[answer]] * size


def test_a_reader_sees_committed_rows_while_the_writer_holds_a_transaction(
    store: SiteStore, store_path: Path, add_model: Callable[..., ModelRow]
) -> None:
    model = add_model(store)
    store.record_served(*_batch(model.id, 3))
    with SiteStore.read_only(store_path) as reader:
        assert reader.kpi_summary()["predictions"] == 3
        with store._db.write() as conn:  # the agent is mid-write and holds the write lock
            conn.execute(
                "INSERT INTO inputs (created_at, kind, payload, payload_sha256) VALUES (0, 'text', x'00', '')"
            )
            started = time.monotonic()
            assert len(reader.uncertain_unlabelled(limit=100)) == 3  # the uncommitted row is not seen
            assert reader.list_models() == [model]
            assert time.monotonic() - started < 1.0  # read through WAL, not after waiting for the lock
        store.record_served(*_batch(model.id, 2))
        assert reader.kpi_summary()["predictions"] == 5  # a later read sees later commits
        assert len(reader.uncertain_unlabelled(limit=100)) == 6


def test_a_reader_cannot_write(store: SiteStore, store_path: Path) -> None:
    with SiteStore.read_only(store_path) as reader, pytest.raises(StoreError, match=str(store_path)):
        reader.append_audit("sneaky", "operator", {})
    assert store.audit() == []


def test_every_commit_the_writer_reported_survives_kill_9(
    store_path: Path, add_model: Callable[..., ModelRow]
) -> None:
    with SiteStore(store_path) as setup:
        model = add_model(setup)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])),
    }
    child = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(store_path), str(model.id)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert child.stdout is not None
    reported: list[int] = []
    try:
        while len(reported) < 400:
            line = child.stdout.readline()
            assert line, f"the writer stopped early: {child.stderr.read() if child.stderr else ''}"
            reported += [int(token) for token in line.split()]
    finally:
        os.kill(child.pid, signal.SIGKILL)  # mid-transaction, most likely: it never pauses
        child.wait(timeout=30)
    # Lines it finished printing before dying are still in the pipe; a cut-off last line is not counted.
    tail = child.stdout.read()
    reported += [
        int(token) for line in tail.splitlines(keepends=True) if line.endswith("\n") for token in line.split()
    ]
    assert child.returncode == -signal.SIGKILL

    with SiteStore(store_path) as reopened:
        assert reopened.integrity_check() == "ok"
        for input_id in reported:
            assert reopened.served_prediction(input_id) is not None
        assert reopened.get_input(reported[-1]).payload == b"report " * 40
        stored = reopened.kpi_summary()["predictions"]
    assert stored >= len(reported)
    assert stored % 16 == 0  # whole batches only: a transaction is all or nothing
