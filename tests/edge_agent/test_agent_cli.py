"""`genba agent ...`: offline on the site folder, and through the running agent's API."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from edge_agent.site import SiteFolder
from genba.cli import main


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, Any, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    payload = json.loads(captured.out) if code == 0 and captured.out.strip() else None
    return code, payload, captured.err


def test_a_site_is_prepared_offline_then_managed_through_its_agent(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    keypair: tuple[Path, Path],
    bundle_versions: dict[int, Path],
    agent_process: Callable[..., Any],
    agent_harness: Any,
) -> None:
    data = str(tmp_path / "site")
    code, created, _ = _run(
        capsys, "agent", "init", "--data", data, "--trust", str(keypair[1]), "--site", "line-1"
    )
    assert code == 0 and set(created["tokens"]) == {"operator", "supervisor", "integration"}
    site = SiteFolder(Path(data))
    agent_harness.write_settings(site, {"runtime": {"provider": "cpu"}, "gates": {"auto_advance": False}})

    code, installed, _ = _run(capsys, "agent", "install", "--data", data, str(bundle_versions[1]))
    assert code == 0 and installed["slot"] == "production"  # no agent running: done on the folder
    code, status, _ = _run(capsys, "agent", "status", "--data", data)
    assert code == 0 and status["production"]["version"] == 1 and status["site"] == "line-1"

    moved = tmp_path / "moved" / "site"  # a site folder keeps working wherever it is moved
    shutil.move(data, moved)
    code, status, _ = _run(capsys, "agent", "status", "--data", str(moved))
    assert code == 0 and status["production"]["version"] == 1 and not status["problems"]
    data, site = str(moved), SiteFolder(moved)

    agent_process(site)
    code, installed, _ = _run(capsys, "agent", "install", "--data", data, str(bundle_versions[2]))
    assert code == 0 and installed["slot"] == "candidate"
    code, promoted, _ = _run(capsys, "agent", "promote", "--data", data, "--to", "production")
    assert code == 0 and promoted["stage"] == "production"
    code, rolled, _ = _run(capsys, "agent", "rollback", "--data", data)
    assert code == 0 and rolled["rolled_back_to"]["version"] == 1
    code, status, _ = _run(capsys, "agent", "status", "--data", data)
    assert status["role"] == "supervisor" and status["production"]["version"] == 1

    code, installed, _ = _run(capsys, "agent", "install", "--data", data, str(bundle_versions[2]))
    assert code == 0 and installed["slot"] == "candidate"
    code, discarded, _ = _run(capsys, "agent", "discard", "--data", data, "--reason", "not this week")
    assert code == 0 and discarded["discarded"].endswith("v2") and discarded["reason"] == "not this week"
    code, _, error = _run(capsys, "agent", "rollback", "--data", data, "--version", "2.x")
    assert code != 0 and "'2.x' is not a model version" in error and error.count("\n") == 1
    code, rolled, _ = _run(capsys, "agent", "rollback", "--data", data, "--version", "v2")
    assert code == 0 and rolled["rolled_back_to"]["version_label"] == "2"


def test_agent_commands_fail_with_one_line_and_an_exit_code(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    keypair: tuple[Path, Path],
    bundle_versions: dict[int, Path],
    other_keypair: tuple[Path, Path],
    make_version: Callable[..., Path],
) -> None:
    code, _, err = _run(capsys, "agent", "status", "--data", str(tmp_path / "nowhere"))
    assert code == 2 and "not a Genba site folder" in err and err.count("\n") == 1
    data = str(tmp_path / "site")
    _run(capsys, "agent", "init", "--data", data, "--trust", str(keypair[1]))
    foreign = make_version(bundle_versions[1], 4, key=other_keypair[0])
    code, _, err = _run(capsys, "agent", "install", "--data", data, str(foreign))
    assert code == 3 and err.startswith("genba agent install: error:") and "invalid" in err
    code, _, err = _run(capsys, "agent", "promote", "--data", data)
    assert code == 7 and "no candidate" in err
    code, _, err = _run(capsys, "agent", "init", "--data", data, "--trust", str(keypair[1]))
    assert code == 2 and "already a site folder" in err


def test_serve_refuses_to_start_when_the_gpu_policy_cannot_be_met(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    keypair: tuple[Path, Path],
    bundle_versions: dict[int, Path],
) -> None:
    import subprocess
    import sys

    from genba import env
    from genba.runtime.sessions import gpu_visible

    if gpu_visible():
        pytest.skip("this machine has a GPU: the 'gpu' policy may well be met here")
    data = str(tmp_path / "site")
    _run(capsys, "agent", "init", "--data", data, "--trust", str(keypair[1]))
    assert _run(capsys, "agent", "install", "--data", data, str(bundle_versions[1]))[0] == 0
    command = [sys.executable, "-m", "genba", "agent", "serve", "--data", data, "--provider", "gpu"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, env=env.child_environment())
    assert done.returncode == 5
    assert "provider 'gpu' requested but the CUDA execution provider did not load" in done.stderr
    assert not SiteFolder(Path(data)).address_file.exists()


def test_a_site_folder_given_as_a_relative_path_works(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    keypair: tuple[Path, Path],
    bundle_versions: dict[int, Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    assert _run(capsys, "agent", "init", "--data", "relative/site", "--trust", str(keypair[1]))[0] == 0
    code, installed, err = _run(
        capsys, "agent", "install", "--data", "relative/site", str(bundle_versions[1])
    )
    assert code == 0, err
    code, status, _ = _run(capsys, "agent", "status", "--data", "relative/site")
    assert status["production"]["version"] == 1 and not status["problems"]


def test_train_and_queue_work_on_a_site_with_no_agent_running(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    keypair: tuple[Path, Path],
    bundle_versions: dict[int, Path],
) -> None:
    from edge_agent.agent import Agent
    from edge_agent.answers import Item

    data = str(tmp_path / "site")
    _run(capsys, "agent", "init", "--data", data, "--trust", str(keypair[1]))
    _run(capsys, "agent", "install", "--data", data, str(bundle_versions[1]))
    texts = {"scratch": "scratch on the rim", "dent": "dent on the cover", "ok": "good part, no defect"}
    with Agent.open(SiteFolder(Path(data))) as agent:
        answers = agent.predict(
            [Item("text", t, t.encode(), {}, "operator") for t in [*texts.values(), "rust?"]]
        )
        for answer, label in zip(answers, texts, strict=False):
            agent.store.add_label(answer.input_id, label, actor="operator", split="train")
    code, queue, _ = _run(capsys, "agent", "queue", "--data", data)
    assert code == 0 and [entry["text"] for entry in queue] == ["rust?"]  # the one nobody labelled
    code, trained, err = _run(capsys, "agent", "train", "--data", data)
    assert code == 0, err
    assert trained["installed"]["version_label"] == "1.1"
    assert Path(data).resolve() / "models" in Path(trained["training"]["bundle"]).resolve().parents
    assert list((Path(data) / "candidates").iterdir()) == []  # the job's scratch folder is gone


def test_a_training_job_that_cannot_train_exits_with_one_line_and_leaves_nothing_behind(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    keypair: tuple[Path, Path],
    bundle_versions: dict[int, Path],
) -> None:
    from edge_agent.site import SiteFolder
    from edge_agent.store import SiteStore

    data = str(tmp_path / "site")
    _run(capsys, "agent", "init", "--data", data, "--trust", str(keypair[1]))
    _run(capsys, "agent", "install", "--data", data, str(bundle_versions[1]))
    code, _, err = _run(capsys, "agent", "train", "--data", data)  # not one label yet
    assert code == 1 and len(err.strip().splitlines()) == 1 and "label" in err, err
    assert list((Path(data) / "candidates").iterdir()) == []
    with SiteStore.read_only(SiteFolder(Path(data)).store_file) as store:
        assert len(store.list_models()) == 1  # production only: no candidate was recorded
        assert store.slots().candidate is None
