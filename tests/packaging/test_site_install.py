"""The ``site`` role for real: its wheelhouse built with no index, installed by install.sh with
``--no-index --require-hashes`` into a fresh prefix, and a site run from that prefix alone.

``make test`` may not download anything, so the wheels are the site role's distributions as
installed in this environment, repacked (``conftest.repack_installed``): the same files as the
wheels they came from. ``bench/wheelhouse.py`` does the same with the package index's own wheels
and the default MiniLM bundle (docs/bench/wheelhouse.json); here the bundle is the tiny BERT one.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

#: What a shop-floor PC that only serves must not carry (other roles' packages).
NOT_ON_A_SITE = ("torch", "ray", "PySide6", "flwr", "transformers", "matplotlib", "onnx")
#: The site role's target size on disk, onnxruntime-gpu included (issue 18).
SITE_TARGET_MB = 700.0


def _as_installed(tmp_path: Path) -> dict[str, str]:
    """A program of the prefix runs with no PYTHONPATH from the test run, and a HOME of its own."""
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    environment = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    return {**environment, "HOME": str(home)}


def _run(command: list[str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command, capture_output=True, text=True, cwd=tmp_path, env=_as_installed(tmp_path), timeout=300
    )


@pytest.fixture(scope="module")
def site_prefix(tmp_path_factory: pytest.TempPathFactory, packaging_helpers: Any) -> Path:
    work = tmp_path_factory.mktemp("site-install")
    wheels = work / "wheels"
    wheels.mkdir()
    for name in packaging_helpers.role_distributions("site"):
        packaging_helpers.repack_installed(name, wheels)
    wheelhouse = work / "wheelhouse-site"
    packaging_helpers.build_offline_wheelhouse(wheels, wheelhouse, roles=("site",))
    prefix = work / "opt" / "genba"
    command = ["bash", str(wheelhouse / "install.sh"), "--prefix", str(prefix), "--role", "site"]
    done = _run([*command, "--python", sys.executable], work)
    assert done.returncode == 0, done.stderr
    return prefix


def test_the_site_role_from_its_wheelhouse_serves_predictions_without_other_roles_packages(
    site_prefix: Path, bert_bundle: Path, keypair: tuple[Path, Path], agent_harness: Any, tmp_path: Path
) -> None:
    from edge_agent.site import SiteFolder

    python, genba = str(site_prefix / "bin" / "python"), str(site_prefix / "bin" / "genba")
    probe = f"import importlib.util as u; print([m for m in {NOT_ON_A_SITE!r} if u.find_spec(m)])"
    assert _run([python, "-c", probe], tmp_path).stdout.strip() == "[]"
    files = [p for p in site_prefix.rglob("*") if p.is_file() and not p.is_symlink()]
    size_mb = sum(p.stat().st_size for p in files) / 1e6  # as bench/wheelhouse.py counts installed_mb
    assert size_mb <= SITE_TARGET_MB, f"the site role takes {size_mb:.1f} MB on disk"

    data = tmp_path / "site"
    done = _run([genba, "agent", "init", "--data", str(data), "--trust", str(keypair[1])], tmp_path)
    assert done.returncode == 0, done.stderr
    site = SiteFolder(data)
    agent_harness.write_settings(site, {"runtime": {"provider": "cpu"}})
    done = _run([genba, "agent", "install", "--data", str(data), str(bert_bundle)], tmp_path)
    assert done.returncode == 0, done.stderr
    with (tmp_path / "agent.log").open("wb") as log:
        agent = subprocess.Popen(
            [genba, "agent", "serve", "--data", str(data)],
            stdout=log, stderr=log, cwd=tmp_path, env=_as_installed(tmp_path),
        )  # fmt: skip
        try:
            agent_harness.wait_for(
                lambda: site.address_file.exists() or agent.poll() is not None, what="the agent to serve"
            )
            assert agent.poll() is None, (tmp_path / "agent.log").read_text()
            ask = (
                "import json, sys; from pathlib import Path; "
                "from edge_agent.service.client import AgentClient; "
                "client = AgentClient.for_site(Path(sys.argv[1]), 'integration'); "
                "answer = client.predict('scratch on the housing'); "
                "print(json.dumps({'label': answer.label, 'provider': answer.provider}))"
            )
            done = _run([python, "-c", ask, str(data)], tmp_path)
            assert done.returncode == 0, done.stderr
            answer = json.loads(done.stdout)
            assert answer["label"] and answer["provider"] == "CPUExecutionProvider"
        finally:
            agent.terminate()
            agent.wait(timeout=30)
    done = _run([genba, "agent", "train", "--data", str(data)], tmp_path)
    assert done.returncode == 8 and done.stderr.startswith(
        "genba agent train needs the site-learn extra: pip install 'genba[site-learn]'"
    ), done.stderr
    done = _run([genba, "agent", "report", "--data", str(data), "--out", str(tmp_path / "kpi")], tmp_path)
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in (tmp_path / "kpi").iterdir()) == ["report.json", "report.md"]
    assert "genba[site-plots]" in (tmp_path / "kpi" / "report.md").read_text(encoding="utf-8")
