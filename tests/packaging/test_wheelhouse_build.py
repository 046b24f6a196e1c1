"""genba package wheelhouse, offline: a failed build leaves nothing, a good one is complete."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from genba.cli import main
from genba.errors import OutputPathError, PackagingError


def test_the_command_builds_a_wheelhouse_from_local_wheels(
    kernel_wheels: Path, tmp_path: Path, packaging_helpers: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "wheelhouse"
    with packaging_helpers.offline_pip():
        code = main(
            [
                "package",
                "wheelhouse",
                "--role",
                "base",
                "--out",
                str(out),
                "--project",
                str(packaging_helpers.PROJECT),
            ]
            + ["--python", packaging_helpers.this_python(), "--offline", "--find-links", str(kernel_wheels)]
        )
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["wheels"] == 5 and summary["roles"] == ["base"] and summary["torch"] is None
    assert sorted(p.name for p in out.iterdir() if not p.name.endswith(".whl")) == [
        "SHA256SUMS", "install.sh", "requirements-base.txt", "wheelhouse.json",
    ]  # fmt: skip


def test_a_role_whose_wheels_are_not_there_fails_in_one_line_and_leaves_nothing(
    kernel_wheels: Path, tmp_path: Path, packaging_helpers: Any
) -> None:
    out = tmp_path / "wheelhouse"
    with pytest.raises(PackagingError) as raised:
        packaging_helpers.build_offline_wheelhouse(kernel_wheels, out, roles=("gui",))
    message = str(raised.value)
    assert "\n" not in message and "pip could not download the gui role" in message
    assert "PySide6" in message or "pyside6" in message.lower()
    assert list(tmp_path.iterdir()) == []


def test_a_role_with_torch_names_the_cpu_build_it_could_not_find(
    kernel_wheels: Path, tmp_path: Path, packaging_helpers: Any
) -> None:
    with pytest.raises(
        PackagingError, match=r"no wheel of torch .*torch==2\.13\.0\+cpu must come from --torch-source"
    ):
        packaging_helpers.build_offline_wheelhouse(kernel_wheels, tmp_path / "wh", roles=("site-learn",))


def test_an_existing_folder_is_never_written_into(
    base_wheelhouse: Path, kernel_wheels: Path, packaging_helpers: Any
) -> None:
    before = sorted(p.name for p in base_wheelhouse.iterdir())
    with pytest.raises(OutputPathError, match="already exists"):
        packaging_helpers.build_offline_wheelhouse(kernel_wheels, base_wheelhouse)
    assert sorted(p.name for p in base_wheelhouse.iterdir()) == before
