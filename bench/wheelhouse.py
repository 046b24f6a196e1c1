"""The offline kit for real: download a role's wheelhouse, install it with install.sh, run it.

For each role: ``genba package wheelhouse`` (needs the package index: the one run that does),
then ``packaging/install.sh`` into a fresh prefix with no index, then ``PREFIX/bin/genba --help``
and a command of the role. Prints JSON: wheelhouse size and wheel count, download and install
seconds, installed size, and what each command answered.

    .venv/bin/python bench/wheelhouse.py [--role gui --role site --role site-learn@3.11]
        [--torch-source FOLDER] [--also-python PATH] [--work /tmp/genba-wheelhouse-bench]

``site`` and ``site-learn``: from the prefix alone, ``agent init`` a site, ``agent install`` the
default bundle (exported once by this environment), ``agent serve`` it and ask the local API for
a prediction with the prefix's own client, and write a KPI report (in ``site``, without plots:
no matplotlib); in ``site``, ``genba agent train`` must name the
``site-learn`` extra and torch must be absent. ``gui``: the operator app offscreen with
``--check`` against a site folder where no agent serves, which must say so in one line.
``--also-python`` installs each wheelhouse again with that interpreter (when it was built for
its version); ``ROLE@3.11`` builds a wheelhouse for that Python only.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
GENBA = Path(sys.executable).with_name("genba")


def _run(command: list[str], **options: Any) -> dict[str, Any]:
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=False, **options)
    lines = [line for line in (done.stdout + done.stderr).splitlines() if line.strip()]
    return {
        "exit": done.returncode,
        "seconds": round(time.perf_counter() - start, 1),
        "last_line": lines[-1:],
    }


def _size_mb(folder: Path) -> float:
    return round(
        sum(p.stat().st_size for p in folder.rglob("*") if p.is_file() and not p.is_symlink()) / 1e6, 1
    )


def _checked(step: dict[str, Any], what: str) -> dict[str, Any]:
    if step["exit"] != 0:
        raise SystemExit(f"{what} failed: {step['last_line']}")
    return step


def _default_bundle(work: Path) -> tuple[Path, Path]:
    """The default MiniLM bundle and its signer's public key, exported once by this environment."""
    from genba.demo.sites import signed_default_bundle

    return signed_default_bundle(work / "default")


def _gui_site(work: Path) -> Path:
    """A site folder for the operator app (a gui-only prefix cannot init one), made by this environment."""
    site = work / "site-for-gui"
    if not site.exists():
        trust = str(_default_bundle(work)[1])
        init = [str(GENBA), "agent", "init", "--data", str(site), "--site", "bench-gui", "--trust", trust]
        _checked(_run(init), "genba agent init")
    return site


PREDICT = """
import json, sys
from pathlib import Path
from edge_agent.service.client import AgentClient
answer = AgentClient.for_site(Path(sys.argv[1]), "integration").predict("scratch on the housing near the rim")
print(json.dumps({"label": answer.label, "score": answer.score, "provider": answer.provider,
                  "model": answer.model.model_dump(mode="json")}))
"""


def _serve_and_predict(prefix: Path, site: Path) -> dict[str, Any]:
    """The prefix's agent serves the site; the prefix's API client asks it for one prediction."""
    log = (site.parent / f"{site.name}-agent.log").open("wb")
    serve = [str(prefix / "bin/genba"), "agent", "serve", "--data", str(site)]
    process = subprocess.Popen(serve, stdout=log, stderr=subprocess.STDOUT, cwd=site.parent)
    try:
        deadline = time.monotonic() + 120
        while not (site / "agent.addr").exists() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        return _run([str(prefix / "bin/python"), "-c", PREDICT, str(site)], cwd=site.parent)
    finally:
        process.terminate()
        process.wait(timeout=60)
        log.close()


def _site_commands(role: str, prefix: Path, work: Path) -> dict[str, Any]:
    """From the prefix alone: init a site, install the default bundle, serve it, predict via the API."""
    genba, site = str(prefix / "bin" / "genba"), work / f"site-{role}"
    shutil.rmtree(site, ignore_errors=True)
    bundle, trust = _default_bundle(work)
    steps = {
        "agent init": _run(
            [genba, "agent", "init", "--data", str(site), "--site", f"bench-{role}", "--trust", str(trust)]
        ),
        "agent install (default bundle)": _run([genba, "agent", "install", "--data", str(site), str(bundle)]),
        "agent serve + predict through the API": _serve_and_predict(prefix, site),
        "agent status": _run([genba, "agent", "status", "--data", str(site)]),
        "agent report": _run(
            [genba, "agent", "report", "--data", str(site), "--out", str(work / f"kpi-{role}")]
        ),
    }
    if role == "site":
        steps["agent train (needs site-learn)"] = _run([genba, "agent", "train", "--data", str(site)])
    probe = "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)"
    steps["torch"] = _run([str(prefix / "bin/python"), "-c", probe], cwd=work)
    return steps


def _role_commands(role: str, prefix: Path, work: Path) -> dict[str, Any]:
    if role in ("site", "site-learn"):
        return _site_commands(role, prefix, work)
    if role == "gui":
        offscreen = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
        check = [str(prefix / "bin" / "genba"), "gui", "--data", str(_gui_site(work)), "--check"]
        return {
            "gui --check (no agent serving)": _run(check, env=offscreen),
            "onnxruntime": _run([str(prefix / "bin/python"), "-c", "import onnxruntime"], cwd=work),
        }
    return {}


def _install(wheelhouse: Path, prefix: Path, role: str, options: list[str]) -> dict[str, Any]:
    shutil.rmtree(prefix, ignore_errors=True)
    command = ["bash", str(wheelhouse / "install.sh"), "--prefix", str(prefix), "--role", role, *options]
    step = _checked(_run(command), "install.sh")
    step["python"] = _venv_python(prefix)
    step["genba --help"] = _run([str(prefix / "bin" / "genba"), "--help"])["exit"]
    return step


def _version_of(python: str) -> str:
    probe = "import sys; print('%d.%d' % sys.version_info[:2])"
    return subprocess.run([python, "-c", probe], capture_output=True, text=True, check=True).stdout.strip()


def _venv_python(prefix: Path) -> str:
    config = (prefix / "pyvenv.cfg").read_text(encoding="utf-8").splitlines()
    return next((line.split("=", 1)[1].strip() for line in config if line.startswith("version")), "?")


def measure(spec: str, work: Path, also_pythons: list[str], torch_source: str | None) -> dict[str, Any]:
    """``spec`` is a role, or ``ROLE@3.11`` for a wheelhouse of that Python only."""
    role, _, pythons = spec.partition("@")
    wheelhouse, prefix = work / f"wheelhouse-{role}", work / f"prefix-{role}"
    shutil.rmtree(wheelhouse, ignore_errors=True)
    build = [str(GENBA), "package", "wheelhouse", "--role", role, "--out", str(wheelhouse)]
    build += ["--project", str(ROOT), *(["--torch-source", torch_source] if torch_source else [])]
    build += [option for python in pythons.split(",") if python for option in ("--python", python)]
    download = _checked(_run(build), f"the {role} wheelhouse")
    described = json.loads((wheelhouse / "wheelhouse.json").read_text(encoding="utf-8"))
    install = _install(wheelhouse, prefix, role, [])
    also = {
        python: _install(wheelhouse, work / f"prefix-{role}-{Path(python).name}", role, ["--python", python])
        for python in also_pythons
        if _version_of(python) in described["pythons"]
    }
    return {
        "role": role,
        "pythons": described["pythons"],
        "wheels": described["wheels"],
        "wheelhouse_mb": round(described["bytes"] / 1e6, 1),
        "download_s": download["seconds"],
        "install_s": install["seconds"],
        "installed_mb": _size_mb(prefix),
        "installed_python": _venv_python(prefix),
        "also_installed": also,
        "genba --help": _run([str(prefix / "bin" / "genba"), "--help"])["exit"],
        "commands": _role_commands(role, prefix, work),
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--role", action="append", help="ROLE or ROLE@PY,PY to measure (default: gui, site)")
    parser.add_argument(
        "--torch-source", help="where roles with torch take its CPU build (default: its index)"
    )
    parser.add_argument("--work", type=Path, default=Path("/tmp/genba-wheelhouse-bench"))
    parser.add_argument(
        "--also-python", action="append", default=[], help="install each role again with this interpreter"
    )
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    roles = args.role or ("gui", "site")
    figures = [measure(role, args.work, args.also_python, args.torch_source) for role in roles]
    print(
        json.dumps(
            {
                "machine": f"{os.cpu_count()} cores, Linux x86_64",
                "torch_source": args.torch_source
                or "PyTorch's CPU index (genba package wheelhouse's default)",
                "target": "manylinux wheels (glibc 2.35 or later), x86_64, for each role's pythons",
                "download_s": "through this machine's pip settings and pip's HTTP cache: a second run reuses "
                "what an earlier one fetched, so it is no figure for a plant's network",
                "installed_mb": "every file under the prefix: the venv with pip, bytecode pip compiled, "
                "and the role's packages",
                "roles": figures,
            },
            indent=2,
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
