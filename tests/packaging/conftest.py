"""Offline material for the wheelhouse tests: the kernel's dependencies repacked as wheels.

``make test`` may not download anything, so the wheels of the base role's dependencies
(cryptography, cffi, pycparser, tomli-w) are rebuilt from the distributions installed in this
environment, as the wheels they were installed from: the same files (each listed in the installed
RECORD), the same ``WHEEL`` file with its tags, a fresh RECORD with every file's sha256, and
without what the installer added (INSTALLER, REQUESTED, direct_url.json, bytecode, console
scripts, which pip makes again from ``entry_points.txt``).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import importlib.metadata
import importlib.util
import os
import shutil
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any

import pytest

from genba.wheelhouse import WheelhouseConfig, build_wheelhouse

PROJECT = Path(__file__).resolve().parents[2]

#: The kernel's dependencies (pyproject's base ``dependencies``) and theirs.
KERNEL_DISTRIBUTIONS = ("cryptography", "cffi", "pycparser", "tomli-w")
_INSTALLER_FILES = {"INSTALLER", "REQUESTED", "direct_url.json", "RECORD"}


def repack_installed(name: str, dest: Path) -> Path:
    """The wheel ``name`` was installed from, rebuilt from its installed files into ``dest``."""
    distribution = importlib.metadata.distribution(name)
    scripts = {entry.name for entry in distribution.entry_points if entry.group.endswith("_scripts")}
    members: list[tuple[str, bytes]] = []
    for listed in distribution.files or ():
        path = PurePosixPath(str(listed))
        if path.parts[0] == "..":
            if path.name in scripts:
                continue  # a console script: pip writes it again at install
            raise ValueError(f"{name}: {path} lies outside site-packages; this helper cannot repack it")
        if "__pycache__" in path.parts or path.suffix == ".pyc":
            continue
        if path.parts[0].endswith(".dist-info") and path.name in _INSTALLER_FILES and len(path.parts) == 2:
            continue
        members.append((str(path), Path(str(distribution.locate_file(listed))).read_bytes()))
    dist_info = next(p for p, _ in members if p.endswith(".dist-info/WHEEL")).rsplit("/", 1)[0]
    wheel_path = dest / _wheel_file_name(distribution, dist_info)
    _write_wheel(wheel_path, members, f"{dist_info}/RECORD")
    return wheel_path


def _wheel_file_name(distribution: importlib.metadata.Distribution, dist_info: str) -> str:
    tags = [line.split(":", 1)[1].strip() for line in (distribution.read_text("WHEEL") or "").splitlines()
            if line.startswith("Tag:")]  # fmt: skip
    python, abi, platform = (".".join(sorted({tag.split("-")[i] for tag in tags})) for i in range(3))
    name, version = dist_info.removesuffix(".dist-info").rsplit("-", 1)
    return f"{name}-{version}-{python}-{abi}-{platform}.whl"


def _write_wheel(path: Path, members: list[tuple[str, bytes]], record: str) -> None:
    ordered = sorted(members, key=lambda member: (".dist-info/" in member[0], member[0]))
    lines = [f"{name},sha256={_record_digest(data)},{len(data)}" for name, data in ordered]
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as wheel:
        for name, data in ordered:
            wheel.writestr(name, data)
        wheel.writestr(record, "\n".join([*lines, f"{record},,"]) + "\n")


def _record_digest(data: bytes) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def role_distributions(role: str) -> list[str]:
    """Every distribution ``role`` resolves to in this environment (Genba's own wheel aside), by
    bench/role_sizes.py's resolver: pyproject's extras followed through the installed metadata."""
    import tomllib

    spec = importlib.util.spec_from_file_location("role_sizes", PROJECT / "bench" / "role_sizes.py")
    assert spec is not None and spec.loader is not None
    role_sizes = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(role_sizes)
    project = tomllib.loads((PROJECT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    extras = project["optional-dependencies"]
    found = role_sizes.resolve(extras[role], extras, project["dependencies"])
    missing = [name for name in found if name.endswith("(not installed)")]
    assert not missing, f"the {role} role needs distributions this environment lacks: {missing}"
    return sorted(found)


@pytest.fixture(scope="session")
def kernel_wheels(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with the wheels of the kernel's dependencies, made from this environment."""
    folder = tmp_path_factory.mktemp("kernel-wheels")
    for name in KERNEL_DISTRIBUTIONS:
        repack_installed(name, folder)
    return folder


@contextlib.contextmanager
def offline_pip() -> Iterator[None]:
    """pip with no configuration file and no index settings from this machine: --find-links only."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PIP_CONFIG_FILE", os.devnull)
        for name in [name for name in os.environ if name.startswith("PIP_") and name != "PIP_CONFIG_FILE"]:
            patch.delenv(name)
        yield


def this_python() -> str:
    return f"{sys.version_info.major}.{sys.version_info.minor}"


def build_offline_wheelhouse(wheels: Path, out: Path, roles: tuple[str, ...] = ("base",)) -> dict[str, Any]:
    """A real wheelhouse from local wheels only (no index), for this interpreter's Python."""
    config = WheelhouseConfig(
        roles=roles, out=out, project=PROJECT, pythons=(this_python(),), find_links=(wheels,), offline=True
    )
    with offline_pip():
        return build_wheelhouse(config)


@pytest.fixture(scope="session")
def base_wheelhouse(kernel_wheels: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The base role's wheelhouse (Genba's wheel and the kernel's dependencies), built offline."""
    out = tmp_path_factory.mktemp("wheelhouses") / "base"
    build_offline_wheelhouse(kernel_wheels, out)
    return out


@pytest.fixture
def wheelhouse_copy(base_wheelhouse: Path, tmp_path: Path) -> Path:
    """A copy of the base wheelhouse that a test may damage."""
    return Path(shutil.copytree(base_wheelhouse, tmp_path / "wheelhouse"))


@pytest.fixture(scope="session")
def packaging_helpers() -> Any:
    """The helpers above, for tests that build their own wheels or wheelhouses."""
    return sys.modules[__name__]
