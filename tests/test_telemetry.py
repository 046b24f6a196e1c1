"""An export and a prediction with a fresh HOME write no telemetry files (ONNX Runtime, HF, Flower).

The control run shows the check can fail: the same session creation without
Genba's environment switches does write ONNX Runtime's telemetry files.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from genba.env import PRIVACY_ENVIRONMENT

TELEMETRY_MARKERS = ("deviceid", "onnxruntime.db", "DeveloperTools")
#: ONNX Runtime stays quiet on its own when it sees a CI system's variables; a plant PC
#: has none, so both runs drop them to test what the shop floor would do.
CI_VARIABLES = (
    "CI",
    "TF_BUILD",
    "GITHUB_ACTIONS",
    "GITLAB_CI",
    "JENKINS_URL",
    "TRAVIS",
    "CIRCLECI",
    "BUILDKITE",
    "APPVEYOR",
    "TEAMCITY_VERSION",
    "CODEBUILD_BUILD_ID",
    "BITBUCKET_BUILD_NUMBER",
    "SYSTEM_TEAMFOUNDATIONCOLLECTIONURI",
)


def _clean_environment(home: Path) -> dict[str, str]:
    dropped = set(PRIVACY_ENVIRONMENT) | set(CI_VARIABLES)
    environment = {k: v for k, v in os.environ.items() if k not in dropped}
    environment.update(HOME=str(home), XDG_CACHE_HOME=str(home / ".cache"))
    return environment


def _telemetry_files(home: Path) -> list[str]:
    return sorted(
        str(path.relative_to(home))
        for path in home.rglob("*")
        if any(m in path.name for m in TELEMETRY_MARKERS)
    )


def test_export_and_predict_leave_no_telemetry_files(tiny_bert: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    environment = _clean_environment(home)
    bundle = tmp_path / "bundle"
    for argv in (
        [
            "export",
            str(tiny_bert),
            "--task",
            "text-classification",
            "--out",
            str(bundle),
            "--precision",
            "int8",
        ],
        ["predict", str(bundle), "--text", "scratch on the housing"],
    ):
        done = subprocess.run(
            [sys.executable, "-m", "genba", *argv],
            env=environment,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert done.returncode == 0, done.stderr
    assert _telemetry_files(home) == []


def test_control_without_the_switches_does_write_telemetry(bert_bundle: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    script = (
        "import onnxruntime as ort; "
        f"ort.InferenceSession({str(bert_bundle / 'head.onnx')!r}, providers=['CPUExecutionProvider'])"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        env=_clean_environment(home),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert _telemetry_files(home), (
        "ONNX Runtime wrote no telemetry without the switch: the main test proves nothing"
    )
