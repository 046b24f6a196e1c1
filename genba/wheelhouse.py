"""An offline wheelhouse: every wheel a role needs on the target machines, pinned by sha256.

``build_wheelhouse`` builds Genba's own wheel from its source tree, lets pip resolve and download
the role's wheels once per supported Python (CPython on Linux x86_64, manylinux wheels only, no
source builds at the plant), and writes, beside the wheels:

    requirements-ROLE.txt   every wheel pinned with ``==`` and its ``--hash=sha256:`` lines, for
                            ``pip install --no-index --require-hashes`` (a package whose version
                            differs between Pythons gets one line per Python, with a marker)
    wheelhouse.json         what the wheelhouse was built for (roles, Pythons, platform, torch)
    install.sh              the installer (packaging/install.sh), so the folder installs on its own
    SHA256SUMS              sha256 of every other file, checked first by install.sh

The folder appears only when complete (built in a staging folder beside it, then renamed).

torch: PyPI's Linux torch is a CUDA build that pulls several GB of NVIDIA libraries. For roles that
bring torch, ``torch="cpu"`` (the default) pins the CPU build (``torch==VERSION+cpu``) and takes it
from ``torch_source``: PyTorch's CPU index, or a folder holding those wheels; ``torch="cuda"`` lets
pip take PyPI's CUDA build.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from fnmatch import fnmatch
from pathlib import Path
from typing import Any

from genba.bundle import sha256_file
from genba.checksums import write_checksums
from genba.errors import ConfigError, OutputPathError, PackagingError
from genba.roles import EXTRA_MODULES, modules_of

#: The roles a wheelhouse can hold: ``base`` is the kernel alone (keys, bundles), the rest are extras.
ROLES = ("base", *EXTRA_MODULES)
DEFAULT_PYTHONS = ("3.11", "3.12")
#: The oldest glibc the kit targets: Ubuntu 22.04 (2.35); Debian 12 has 2.36.
DEFAULT_GLIBC = "2.35"
TORCH_VERSION = "2.13.0"
TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"
TORCH_BUILDS = ("cpu", "cuda")
INSTALL_SCRIPT = Path("packaging/install.sh")
MANIFEST = "wheelhouse.json"

#: Runs one command (pip); tests may pass their own. Returns (exit code, combined output).
Runner = Callable[[list[str]], tuple[int, str]]


@dataclass(frozen=True)
class WheelhouseConfig:
    """What to put in a wheelhouse and where to get it."""

    roles: tuple[str, ...]
    out: Path
    project: Path = Path(".")  # Genba's source tree: its own wheel and packaging/install.sh
    pythons: tuple[str, ...] = DEFAULT_PYTHONS
    glibc: str = DEFAULT_GLIBC
    torch: str = "cpu"
    torch_version: str = TORCH_VERSION
    torch_source: str = TORCH_CPU_INDEX  # an index URL or a folder of torch wheels
    find_links: tuple[Path, ...] = ()  # more folders of wheels pip may take from
    offline: bool = False  # --no-index: only find_links (and a torch_source folder)

    def problems(self) -> list[str]:
        problems = [
            f"unknown role {role!r} (roles: {', '.join(ROLES)})" for role in self.roles if role not in ROLES
        ]
        if not self.roles:
            problems.append("no role given")
        if "base" in self.roles and len(self.roles) > 1:
            problems.append("role 'base' stands alone: every other role includes it")
        problems += [f"python {p!r} is not MAJOR.MINOR (3.11)" for p in self.pythons if not _is_version(p)]
        if not self.pythons:
            problems.append("no python version given")
        if not _is_version(self.glibc):
            problems.append(f"glibc {self.glibc!r} is not MAJOR.MINOR (2.35)")
        if self.torch not in TORCH_BUILDS:
            problems.append(f"torch build {self.torch!r} is not one of {', '.join(TORCH_BUILDS)}")
        if not (self.project / "pyproject.toml").is_file():
            problems.append(f"{self.project} is not Genba's source tree (no pyproject.toml); run from it")
        elif not (self.project / INSTALL_SCRIPT).is_file():
            problems.append(f"{self.project / INSTALL_SCRIPT} is missing")
        problems += [f"find-links folder {d} does not exist" for d in self.find_links if not d.is_dir()]
        return problems

    def validate(self) -> WheelhouseConfig:
        problems = self.problems()
        if problems:
            raise ConfigError(problems)
        return self

    @property
    def extras(self) -> tuple[str, ...]:
        return tuple(role for role in self.roles if role != "base")

    @property
    def brings_torch(self) -> bool:
        return any("torch" in modules_of(extra) for extra in self.extras)

    @property
    def needs_cpu_torch(self) -> bool:
        return self.torch == "cpu" and self.brings_torch

    @property
    def requirements_name(self) -> str:
        return requirements_name(self.roles)


def requirements_name(roles: tuple[str, ...]) -> str:
    """``requirements-site.txt``; several roles resolved together: ``requirements-site+gui.txt``."""
    return f"requirements-{'+'.join(roles)}.txt"


def _is_version(text: str) -> bool:
    return re.fullmatch(r"\d+\.\d+", text) is not None


def platform_tags(glibc: str) -> list[str]:
    """Every manylinux tag a Linux x86_64 machine with ``glibc`` runs, newest first."""
    major, minor = (int(part) for part in glibc.split("."))
    tags = [f"manylinux_{major}_{m}_x86_64" for m in range(minor, 4, -1)]
    aliases = {17: "manylinux2014_x86_64", 12: "manylinux2010_x86_64", 5: "manylinux1_x86_64"}
    return tags + [alias for m, alias in aliases.items() if m <= minor]


def run_quietly(command: list[str]) -> tuple[int, str]:
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    return done.returncode, done.stdout + done.stderr


def build_wheelhouse(config: WheelhouseConfig, run: Runner = run_quietly) -> dict[str, Any]:
    """Build the wheelhouse ``config.out`` (which must not exist or be empty); returns a summary."""
    config.validate()
    with (
        staged_folder(config.out) as staging,
        tempfile.TemporaryDirectory(prefix="genba-wheelhouse-") as work,
    ):
        scratch = Path(work)
        genba_wheel = build_genba_wheel(config.project, scratch / "genba", run)
        resolved = {
            python: _download_for(config, python, genba_wheel, scratch, run) for python in config.pythons
        }
        requirements = pinned_requirements(resolved, genba_requirement=_genba_name(config))
        for files in resolved.values():
            _move_into(files, staging)
        (staging / config.requirements_name).write_text(_header(config) + requirements, encoding="utf-8")
        shutil.copy2(config.project / INSTALL_SCRIPT, staging / "install.sh")
        summary = _manifest(config, staging, genba_wheel)
        (staging / MANIFEST).write_text(
            json.dumps(summary, indent=2, sort_keys=True) + "\n", encoding="utf-8"
        )
        sums_sha256 = write_checksums(staging)
    return {**summary, "path": str(config.out), "sha256sums_sha256": sums_sha256}


@contextmanager
def staged_folder(out: Path) -> Iterator[Path]:
    """A folder beside ``out`` that becomes ``out`` when the block succeeds and vanishes if it fails."""
    out = out.absolute()
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise OutputPathError(f"{out} already exists and is not empty; choose a new folder")
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    try:
        yield staging
        staging.chmod(0o755)
        if out.exists():
            out.rmdir()
        staging.rename(out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def build_genba_wheel(project: Path, dest: Path, run: Runner = run_quietly) -> Path:
    """Genba's own wheel, built from a clean copy of its packages (the source tree stays untouched)."""
    source = dest / "source"
    _copy_sources(project, source)
    command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index"]
    code, output = run([*command, "--no-cache-dir", "--wheel-dir", str(dest), str(source)])
    wheels = sorted(dest.glob("genba-*.whl"))
    if code != 0 or len(wheels) != 1:
        raise PackagingError(f"Genba's wheel did not build from {project}: {_last_error(output)}")
    return wheels[0]


def _copy_sources(project: Path, dest: Path) -> None:
    """pyproject.toml, the readme and license, and the packages setuptools is told to find."""
    settings = tomllib.loads((project / "pyproject.toml").read_text(encoding="utf-8"))
    patterns = (
        settings.get("tool", {}).get("setuptools", {}).get("packages", {}).get("find", {}).get("include", [])
    )
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    dest.mkdir(parents=True)
    for entry in sorted(project.iterdir()):
        if (
            entry.is_dir()
            and (entry / "__init__.py").is_file()
            and any(fnmatch(entry.name, p) for p in patterns)
        ):
            shutil.copytree(entry, dest / entry.name, ignore=ignore)
        elif entry.is_file() and (
            entry.name in ("pyproject.toml", "README.md") or entry.name.startswith("LICEN")
        ):
            shutil.copy2(entry, dest / entry.name)


def _download_for(
    config: WheelhouseConfig, python: str, genba_wheel: Path, scratch: Path, run: Runner
) -> list[Path]:
    """Every wheel ``config``'s roles resolve to on ``python``, downloaded into a folder of its own."""
    dest = scratch / f"py{python}"
    dest.mkdir()
    requirement = str(genba_wheel) + (f"[{','.join(config.extras)}]" if config.extras else "")
    command = [*_pip_download(config, python, dest), *_torch_options(config, scratch), requirement]
    code, output = run(command)
    if code != 0:
        reason = _last_error(output)
        raise PackagingError(
            f"pip could not download the {'+'.join(config.roles)} role for Python {python}: "
            f"{reason}{_torch_hint(config, reason)}"
        )
    if not any(dest.glob("genba-*.whl")):  # pip leaves a local wheel where it lies
        shutil.copy2(genba_wheel, dest / genba_wheel.name)
    return sorted(dest.glob("*.whl"))


def _pip_download(config: WheelhouseConfig, python: str, dest: Path) -> list[str]:
    abi = "cp" + python.replace(".", "")
    command = [sys.executable, "-m", "pip", "download", "--dest", str(dest), "--only-binary=:all:"]
    command += ["--python-version", python, "--implementation", "cp"]
    command += ["--abi", abi, "--abi", "abi3", "--abi", "none"]
    for tag in platform_tags(config.glibc):
        command += ["--platform", tag]
    if config.offline:
        command.append("--no-index")
    for folder in config.find_links:
        command += ["--find-links", str(folder.absolute())]
    return [*command, "--progress-bar", "off"]


def _torch_options(config: WheelhouseConfig, scratch: Path) -> list[str]:
    """Pin the CPU build of torch and say where it lies (PyPI has only the CUDA build for Linux)."""
    if not config.needs_cpu_torch:
        return []
    constraints = scratch / "torch-cpu.txt"
    constraints.write_text(f"torch=={config.torch_version}+cpu\n", encoding="utf-8")
    source = config.torch_source
    where = (
        ["--find-links", str(Path(source).absolute())]
        if Path(source).is_dir()
        else ["--extra-index-url", source]
    )
    return ["--constraint", str(constraints), *where]


def _torch_hint(config: WheelhouseConfig, reason: str) -> str:
    if not config.needs_cpu_torch or "torch" not in reason:
        return ""
    return (
        f" (the CPU build torch=={config.torch_version}+cpu must come from --torch-source: PyTorch's CPU "
        "index or a folder with its wheel for every --python; or pass --torch cuda for PyPI's multi-GB build)"
    )


def _last_error(output: str) -> str:
    """What pip could not find, else its first error line."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    missing = [
        line.split(" for ", 1)[1]
        for line in lines
        if line.startswith("ERROR: No matching distribution found")
    ]
    if missing:
        return f"no wheel of {missing[0]} for this target"
    marker = next(
        (i for i, line in enumerate(lines) if line.endswith("available for your environment:")), None
    )
    if marker is not None and marker + 1 < len(lines):
        return f"no wheel of {lines[marker + 1]} for this target"
    errors = [line for line in lines if line.startswith("ERROR")]
    return (errors or lines or ["no output"])[0].removeprefix("ERROR: ")


def _move_into(files: list[Path], dest: Path) -> None:
    for path in files:
        target = dest / path.name
        if target.exists():
            if target.read_bytes() != path.read_bytes():
                raise PackagingError(f"two different files named {path.name} were downloaded; build again")
            continue
        shutil.move(str(path), target)


def wheel_name_version(filename: str) -> tuple[str, str]:
    """The normalized project name and the version in a wheel's file name."""
    parts = filename.removesuffix(".whl").split("-")
    if len(parts) not in (5, 6) or not filename.endswith(".whl"):
        raise PackagingError(f"{filename} is not a wheel file name")
    return re.sub(r"[-_.]+", "-", parts[0]).lower(), parts[1]


def pinned_requirements(resolved: dict[str, list[Path]], genba_requirement: str) -> str:
    """The requirement lines for every wheel in ``resolved`` (Python version → its wheels)."""

    pins: dict[tuple[str, str], dict[str, Any]] = {}
    for python, files in resolved.items():
        for path in files:
            pin = pins.setdefault(wheel_name_version(path.name), {"pythons": [], "hashes": set()})
            pin["pythons"].append(python)
            pin["hashes"].add(sha256_file(path))
    lines = []
    for (name, version), pin in sorted(pins.items()):
        spec = f"{genba_requirement if name == 'genba' else name}=={version}"
        if len(set(pin["pythons"])) < len(resolved):
            spec += " ; " + " or ".join(f'python_version == "{p}"' for p in sorted(set(pin["pythons"])))
        hashes = " \\\n".join(f"    --hash=sha256:{digest}" for digest in sorted(pin["hashes"]))
        lines.append(f"{spec} \\\n{hashes}\n")
    return "".join(lines)


def _genba_name(config: WheelhouseConfig) -> str:
    return "genba" + (f"[{','.join(config.extras)}]" if config.extras else "")


def _header(config: WheelhouseConfig) -> str:
    return (
        f"# Genba, role {'+'.join(config.roles)}: every wheel for CPython {', '.join(config.pythons)}"
        " on Linux x86_64\n"
        f"# (glibc {config.glibc} or later). Install with install.sh beside this file, or:\n"
        f"#   pip install --no-index --find-links . --require-hashes -r {config.requirements_name}\n"
    )


def _manifest(config: WheelhouseConfig, folder: Path, genba_wheel: Path) -> dict[str, Any]:
    wheels = sorted(folder.glob("*.whl"))
    return {
        "genba": wheel_name_version(genba_wheel.name)[1],
        "roles": list(config.roles),
        "requirements": config.requirements_name,
        "pythons": list(config.pythons),
        "platform": f"manylinux_{config.glibc.replace('.', '_')}_x86_64",
        "torch": config.torch if config.brings_torch else None,
        "wheels": len(wheels),
        "bytes": sum(path.stat().st_size for path in wheels),
    }
