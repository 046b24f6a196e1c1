"""``genba gui --check``: the app opens, loads the agent's status and the review queue, says so in
one line and exits 0; an agent that does not answer is one line and exit 7. The desktop build's
entry (packaging/gui/genba_gui.py, ``gui.cli`` alone) runs the same check."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from genba import env

ROOT = Path(__file__).resolve().parents[2]
REPORTS = [f"report {n}: dent near the flange of housing {n}" for n in range(8)]


def test_the_check_loads_status_and_queue_then_exits_0(
    qtbot: Any, served_site: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    from genba.cli import main

    with served_site.client() as client:
        client.predict_batch(REPORTS)
    site = str(served_site.site.root)
    code = main(["gui", "--data", site, "--role", "operator", "--lang", "ja", "--check"])
    out = capsys.readouterr().out.splitlines()
    assert code == 0
    assert out[0] == "genba gui: window shown"
    passed = "genba gui: check passed: site site-a, signed in as operator, production model "
    assert out[-1].startswith(passed)
    assert "review queue 8 items" in out[-1] and out[-1].endswith("language ja")


def test_the_check_fails_in_one_line_when_the_agent_does_not_answer(
    qtbot: Any, served_site: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    from genba.cli import main

    served_site.stop()
    code = main(["gui", "--data", str(served_site.site.root), "--check"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 7
    assert len(err) == 1 and err[0].startswith("genba gui: error: the app's check failed: ")
    assert "genba agent serve" in err[0]  # says what to do


def test_the_desktop_entry_checks_an_integration_token_without_a_queue(served_site: Any) -> None:
    environment = {**env.child_environment(), "QT_QPA_PLATFORM": "offscreen", "PYTHONPATH": str(ROOT)}
    command = [sys.executable, str(ROOT / "packaging/gui/genba_gui.py"), "--data", str(served_site.site.root)]
    done = subprocess.run(
        [*command, "--role", "integration", "--lang", "en", "--check"],
        capture_output=True, text=True, timeout=120, env=environment, cwd=os.fspath(ROOT),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "genba gui: window shown",
        "genba gui: check passed: signed in as integration (predictions only), language en",
    ]
