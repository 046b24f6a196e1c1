"""The wheelhouse's pure parts: pinned requirements across Pythons, platform tags, its config."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from genba.errors import ConfigError, PackagingError
from genba.wheelhouse import WheelhouseConfig, pinned_requirements, platform_tags, wheel_name_version


def _wheel(folder: Path, name: str, content: bytes) -> tuple[Path, str]:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(content)
    return path, hashlib.sha256(content).hexdigest()


def test_requirements_pin_every_wheel_and_mark_what_differs_between_pythons(tmp_path: Path) -> None:
    genba, genba_hash = _wheel(tmp_path / "a", "genba-0.1.0-py3-none-any.whl", b"genba")
    numpy311, hash311 = _wheel(tmp_path / "a", "numpy-2.4.6-cp311-cp311-manylinux_2_28_x86_64.whl", b"n311")
    numpy312, hash312 = _wheel(tmp_path / "b", "numpy-2.4.6-cp312-cp312-manylinux_2_28_x86_64.whl", b"n312")
    old, old_hash = _wheel(tmp_path / "a", "SciPy-1.17.1-cp311-cp311-manylinux_2_28_x86_64.whl", b"s1")
    new, new_hash = _wheel(tmp_path / "b", "scipy-1.18.1-cp312-cp312-manylinux_2_28_x86_64.whl", b"s2")
    resolved = {"3.11": [genba, numpy311, old], "3.12": [genba, numpy312, new]}

    text = pinned_requirements(resolved, genba_requirement="genba[site]")

    assert text == (
        f"genba[site]==0.1.0 \\\n    --hash=sha256:{genba_hash}\n"
        f"numpy==2.4.6 \\\n"
        + " \\\n".join(f"    --hash=sha256:{h}" for h in sorted([hash311, hash312]))
        + "\n"
        f'scipy==1.17.1 ; python_version == "3.11" \\\n    --hash=sha256:{old_hash}\n'
        f'scipy==1.18.1 ; python_version == "3.12" \\\n    --hash=sha256:{new_hash}\n'
    )


def test_wheel_names_give_the_normalized_project_and_version() -> None:
    assert wheel_name_version("PySide6_Essentials-6.12.0-cp39-abi3-manylinux_2_28_x86_64.whl") == (
        "pyside6-essentials",
        "6.12.0",
    )
    assert wheel_name_version("torch-2.13.0+cpu-1-cp311-cp311-linux_x86_64.whl") == ("torch", "2.13.0+cpu")
    with pytest.raises(PackagingError):
        wheel_name_version("genba-0.1.0.tar.gz")


def test_platform_tags_reach_back_from_the_target_glibc_and_never_past_it() -> None:
    tags = platform_tags("2.35")
    assert tags[0] == "manylinux_2_35_x86_64" and "manylinux_2_36_x86_64" not in tags
    assert {"manylinux_2_17_x86_64", "manylinux2014_x86_64", "manylinux1_x86_64"} <= set(tags)
    assert "linux_x86_64" not in tags  # a wheel built for one machine only is never taken


def test_a_config_reports_every_problem_at_once(tmp_path: Path) -> None:
    config = WheelhouseConfig(
        roles=("base", "robots"),
        out=tmp_path / "out",
        project=tmp_path,
        pythons=("3",),
        glibc="x",
        torch="rocm",
    )
    with pytest.raises(ConfigError) as raised:
        config.validate()
    problems = " | ".join(raised.value.problems)
    for expected in (
        "unknown role 'robots'",
        "'base' stands alone",
        "python '3'",
        "glibc 'x'",
        "'rocm'",
        "source tree",
    ):
        assert expected in problems


def test_only_roles_that_bring_torch_pin_its_cpu_build(tmp_path: Path) -> None:
    def config(*roles: str) -> WheelhouseConfig:
        return WheelhouseConfig(roles=roles, out=tmp_path)

    assert not config("site").needs_cpu_torch and not config("gui").needs_cpu_torch
    assert config("site-learn").needs_cpu_torch and config("it").needs_cpu_torch
    assert config("site", "gui").requirements_name == "requirements-site+gui.txt"
