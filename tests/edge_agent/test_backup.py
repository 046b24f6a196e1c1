"""`genba agent backup` while the agent serves under load, and `genba agent restore` into a new folder."""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from edge_agent.site import SiteFolder
from edge_agent.store import SiteStore
from genba.cli import main

SKIPPED = {"store.db", "store.db-wal", "store.db-shm", "agent.addr", "agent.lock"}


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, Any, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    payload = json.loads(captured.out) if code == 0 and captured.out.strip() else None
    return code, payload, captured.err


def _modes(root: Path) -> dict[str, int]:
    return {
        path.relative_to(root).as_posix(): path.stat().st_mode & 0o777
        for path in root.rglob("*")
        if path.is_file() and path.relative_to(root).parts[0] not in SKIPPED
    }


def _ids(store: Path, table: str) -> set[int]:
    conn = sqlite3.connect(f"file:{store}?mode=ro", uri=True)
    try:
        return {row[0] for row in conn.execute(f"SELECT id FROM {table}")}
    finally:
        conn.close()


def test_a_backup_under_load_restores_every_acknowledged_prediction_keys_and_modes(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    keypair: tuple[Path, Path],
    bert_bundle: Path,
    agent_process: Callable[..., Any],
    agent_harness: Any,
) -> None:
    data = tmp_path / "site"
    code, _, error = _run(capsys, "agent", "init", "--data", str(data), "--trust", str(keypair[1]))
    assert code == 0, error
    site = SiteFolder(data)
    agent_harness.write_settings(site, {"runtime": {"provider": "cpu"}})
    code, _, error = _run(capsys, "agent", "install", "--data", str(data), str(bert_bundle))
    assert code == 0, error
    agent = agent_process(site)
    client = agent.client("integration")

    acknowledged: list[tuple[int, int]] = []  # (input_id, prediction_id), appended once answered
    stop = threading.Event()
    failures: list[BaseException] = []

    def load() -> None:
        n = 0
        try:
            while not stop.is_set():
                n += 1
                answer = client.predict(f"scratch on housing rim, part {n}")
                acknowledged.append((answer.input_id, answer.prediction_id))
        except BaseException as exc:  # reported below, not lost in the thread
            failures.append(exc)

    threads = [threading.Thread(target=load) for _ in range(3)]
    for thread in threads:
        thread.start()
    try:
        agent_harness.wait_for(lambda: len(acknowledged) >= 30 or failures, what="30 predictions")
        before = list(acknowledged)  # acknowledged before the backup began
        archive = tmp_path / "site-backup.tar.gz"
        code, taken, error = _run(capsys, "agent", "backup", "--data", str(data), "--out", str(archive))
        during = len(acknowledged) - len(before)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
    assert not failures, failures
    assert code == 0, error
    assert during > 0, "predictions went on while the backup ran"
    assert archive.stat().st_mode & 0o777 == 0o600  # it holds private keys
    assert taken["inputs"] >= len(before)

    restored = tmp_path / "restored"
    code, report, error = _run(capsys, "agent", "restore", str(archive), "--data", str(restored))
    assert code == 0, error
    assert report["integrity"] == "ok" and report["chains"]["audit"] >= 1
    store = restored / "store.db"
    inputs, predictions = _ids(store, "inputs"), _ids(store, "predictions")
    assert {i for i, _ in before} <= inputs
    assert {p for _, p in before} <= predictions
    with SiteStore.read_only(store) as reopened:
        assert all(chain.ok for chain in reopened.verify_chains(full=True).values())

    # keys, tokens, models and configuration come back with their modes
    original, copy = _modes(data), _modes(restored)
    assert original == copy
    assert any(name.startswith("keys/") and mode == 0o600 for name, mode in copy.items())
    assert all(mode & 0o077 == 0 for name, mode in copy.items() if name.endswith((".pem", "site-auth")))

    # the restored folder is a working site
    again = agent_process(SiteFolder(restored))
    assert again.client("integration").predict("dent near the rim").label


def test_restore_refuses_a_damaged_backup_and_a_folder_in_use(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, keypair: tuple[Path, Path], bert_bundle: Path
) -> None:
    data = tmp_path / "site"
    assert main(["agent", "init", "--data", str(data), "--trust", str(keypair[1])]) == 0
    assert main(["agent", "install", "--data", str(data), str(bert_bundle)]) == 0
    archive = tmp_path / "site.tar"
    assert main(["agent", "backup", "--data", str(data), "--out", str(archive)]) == 0
    capsys.readouterr()

    code, _, error = _run(capsys, "agent", "restore", str(archive), "--data", str(data))
    assert code == 2 and "is not empty" in error and error.count("\n") == 1

    raw = bytearray(archive.read_bytes())
    at = raw.index(b"[store]") if b"[store]" in raw else raw.index(b"-----BEGIN")
    raw[at + 1] ^= 0x20  # one changed byte inside a file
    damaged = tmp_path / "damaged.tar"
    damaged.write_bytes(bytes(raw))
    code, _, error = _run(capsys, "agent", "restore", str(damaged), "--data", str(tmp_path / "new"))
    assert code == 6 and "does not match its hash" in error, error
    assert not (tmp_path / "new").exists() or not any((tmp_path / "new").iterdir())


@pytest.mark.parametrize(
    ("damage", "named"),
    [
        ("DROP TABLE holdout_epochs", "table holdout_epochs"),
        ("ALTER TABLE drift_checks DROP COLUMN alarm", "column drift_checks.alarm"),
    ],
)
def test_restore_refuses_a_store_missing_part_of_the_schema(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, keypair: tuple[Path, Path], damage: str, named: str
) -> None:
    """SQLite's integrity check passes a store with a table or column gone; the restore does not."""
    data = tmp_path / "site"
    assert main(["agent", "init", "--data", str(data), "--trust", str(keypair[1])]) == 0
    store = SiteFolder(data).store_file
    with SiteStore(store):
        pass  # the store made by this Genba, then damaged behind its back
    conn = sqlite3.connect(store)
    try:
        conn.execute(damage)
        conn.commit()
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    finally:
        conn.close()
    archive = tmp_path / "site.tar"
    assert main(["agent", "backup", "--data", str(data), "--out", str(archive)]) == 0
    capsys.readouterr()

    target = tmp_path / "restored"
    code, _, error = _run(capsys, "agent", "restore", str(archive), "--data", str(target))
    assert code == 6 and f"lacks {named}" in error and error.count("\n") == 1, error
    assert not target.exists() or not any(target.iterdir())
    assert not list(tmp_path.glob(".restored.restore-*"))  # no staging folder left behind
