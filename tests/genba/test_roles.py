"""A command whose role (pyproject extra) is not installed fails with one line naming the extra.

Each run is a real ``genba`` process whose imports of the role's packages are made to fail, as
they would on a machine that installed another role.
"""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from genba.roles import EXTRA_INCLUDES, EXTRA_MODULES, extra_for, modules_of

ROOT = Path(__file__).resolve().parents[2]

# Blocks the named top-level modules (as if not installed), then runs the CLI entry point.
RUNNER = """
import sys
for name in sys.argv[1].split(","):
    if name:
        sys.modules[name] = None
from genba.cli import main
sys.argv = ["genba", *sys.argv[2:]]
sys.exit(main())
"""


def run_without(blocked: list[str], *argv: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", RUNNER, ",".join(blocked), *argv],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
    )


@pytest.mark.parametrize(
    ("blocked", "argv", "extra"),
    [
        (["torch"], ["agent", "train", "--data", "site"], "site-learn"),
        (["flwr"], ["agent", "join", "--data", "site"], "site-learn"),
        (["onnxruntime"], ["agent", "serve", "--data", "site"], "site"),
        (["PySide6"], ["gui", "--data", "site"], "gui"),
        (["optimum"], ["export", "model", "--task", "text-classification", "--out", "bundle"], "it"),
        (["ray"], ["simulate", "--bundle", "b", "--trust", "k", "--out", "o"], "simulation"),
    ],
)
def test_a_command_without_its_role_names_the_extra(
    tmp_path: Path, blocked: list[str], argv: list[str], extra: str
) -> None:
    done = run_without(blocked, *argv, cwd=tmp_path)
    command = "genba " + " ".join(word for word in argv[:2] if not word.startswith("-"))
    if argv[0] in ("gui", "export", "simulate"):
        command = "genba " + argv[0]
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 8, done.stderr
    assert lines == [
        f"{command} needs the {extra} extra: pip install 'genba[{extra}]' (not installed: {blocked[0]})"
    ], done.stderr
    assert done.stdout == ""
    assert not any(tmp_path.iterdir()), "nothing is written before the check"


def test_help_and_the_base_commands_need_no_role(tmp_path: Path) -> None:
    every_module = list(modules_of("all"))
    done = run_without(every_module, "--help", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "agent" in done.stdout
    done = run_without(every_module, "keys", "new", "--out", str(tmp_path / "it.pem"), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "it.pem.pub").is_file()


def test_an_import_error_inside_a_handler_names_the_extra_of_the_command() -> None:
    from genba.roles import missing_extra

    error = ModuleNotFoundError("No module named 'torch'", name="torch")
    hint = missing_extra("genba agent train", error)
    assert hint is not None and hint.extra == "site-learn"
    # a site command reaching a learning module names the smallest extra that brings it
    hint = missing_extra("genba agent status", ModuleNotFoundError("x", name="flwr.common"))
    assert hint is not None and hint.extra == "site-learn"
    assert missing_extra("genba agent status", ModuleNotFoundError("x", name="not_ours")) is None


def test_roles_and_pyproject_extras_agree() -> None:
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    for role in (*EXTRA_MODULES, *EXTRA_INCLUDES):
        assert role in extras, role
    for role, included in EXTRA_INCLUDES.items():
        for inner in included:
            assert any(
                f"genba[{inner}]" in req or f"{inner}," in req or f",{inner}" in req for req in extras[role]
            ), (role, inner)
    assert not any("torch" in req for req in extras["site"]), "the site role serves without torch"
    assert not any(req.startswith(("torch", "flwr", "onnxruntime")) for req in extras["gui"])
    assert extra_for("genba agent train") == "site-learn"
    assert extra_for("genba agent status") == "site"
    assert extra_for("genba keys new") is None
    assert any("genba[all]" in req for req in extras["dev"]), "make's environment holds every role"
