"""The short version of ``make reliability``: one JSON summary, and what it promises holds.

A soak of seconds (two clients, an operator labelling, an app reading every view, the agent killed
with SIGKILL once on the way and once at the end), the polling figures on a small store, and every
fuzz target with a small budget. Its figures of time and memory are too short to judge here
(``polling_over_alone``, ``rss_growth_pct``: the long run's, docs/bench/reliability.json); what it
must show every time is judged: nothing acknowledged lost, every kill survived, no fuzz crash.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from genba import env

REPO = Path(__file__).resolve().parents[2]
SUMMARY_FIELDS = {
    "soak_requests", "soak_lost", "rss_growth_pct", "predict_p99_ms_alone", "predict_p99_ms_with_polling",
    "polling_over_alone", "fuzz_inputs", "fuzz_crashes", "faults_injected", "faults_survived",
    "power_cut_safe",
}  # fmt: skip


def test_the_short_reliability_run_loses_nothing_acknowledged_and_survives_every_fault(
    bert_bundle: Path, keypair: tuple[Path, Path], tmp_path: Path
) -> None:
    command = [
        sys.executable, str(REPO / "bench" / "reliability.py"), "--short", "--bundle", str(bert_bundle),
        "--trust", str(keypair[1]), "--out", str(tmp_path),
    ]  # fmt: skip
    done = subprocess.run(
        command, cwd=REPO, capture_output=True, text=True, timeout=600, env=env.child_environment()
    )
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(done.stdout)
    assert summary.keys() >= SUMMARY_FIELDS
    soak = summary["details"]["soak"]
    assert summary["soak_requests"] >= 200 and soak["details"]["labels_acknowledged"] >= 5
    assert summary["soak_lost"] == 0 and soak["soak_refused"] == 0, soak["details"]["refused_examples"]
    assert soak["details"]["agent_kills"] == 2 and soak["details"]["views_read"] > 0
    assert summary["faults_injected"] == summary["faults_survived"] == 2
    assert summary["fuzz_inputs"] and all(count > 0 for count in summary["fuzz_inputs"].values())
    assert summary["fuzz_crashes"].keys() == summary["fuzz_inputs"].keys()
    assert not any(summary["fuzz_crashes"].values()), summary["fuzz_crashes"]
    assert summary["power_cut_safe"] is True
    assert min(summary["predict_p99_ms_alone"], summary["predict_p99_ms_with_polling"]) > 0
