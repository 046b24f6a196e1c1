"""The operator app's desktop build (packaging/gui/) carries only what the app imports.

The build itself (``make gui-app``: its own environment, PyInstaller, minutes) is not part of the
suite. What is: the app's entry, followed the way a build follows it (Python's modulefinder over
this environment, where torch, onnxruntime, flwr, ray, transformers and scipy are all installed,
so any path to them would be found), reaches none of them; the check that ``make gui-app`` runs on
the built folder refuses one that holds any; the spec's Qt hooks keep only the plugins the app uses.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGING = ROOT / "packaging" / "gui"
ENTRY = PACKAGING / "genba_gui.py"


def _load(name: str) -> ModuleType:
    sys.path.insert(0, str(PACKAGING))  # check_app imports app_contents as its neighbour
    try:
        spec = importlib.util.spec_from_file_location(name, PACKAGING / f"{name}.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(PACKAGING))


@pytest.fixture(scope="module")
def contents() -> ModuleType:
    return _load("app_contents")


@pytest.fixture(scope="module")
def check_app() -> ModuleType:
    return _load("check_app")


def _search_path() -> list[str]:
    return [str(ROOT), *sys.path[1:]]


def test_the_apps_entry_reaches_none_of_the_excluded_packages(contents: ModuleType) -> None:
    assert contents.excluded_reached_from(ENTRY, _search_path()) == []


def test_the_finder_follows_imports_inside_functions_through_genba_to_an_excluded_package(
    contents: ModuleType, tmp_path: Path
) -> None:
    script = tmp_path / "entry.py"
    script.write_text("import gui.cli\n\ndef later():\n    import edge_agent.operate\n", encoding="utf-8")
    reached = contents.excluded_reached_from(script, _search_path())
    assert "edge_agent.agent" in reached  # edge_agent.operate imports it inside a function too


def _app_folder(root: Path) -> Path:
    folder = root / "genba-gui"
    (folder / "_internal" / "gui" / "i18n").mkdir(parents=True)
    (folder / "_internal" / "gui" / "i18n" / "genba_ja.qm").write_bytes(b"qm")
    (folder / "genba-gui").write_bytes(b"\x7fELF not really")
    return folder


def test_check_app_refuses_a_folder_holding_torch_in_one_line(tmp_path: Path) -> None:
    folder = _app_folder(tmp_path)
    (folder / "_internal" / "torch" / "lib").mkdir(parents=True)
    (folder / "_internal" / "torch" / "lib" / "libtorch_cpu.so").write_bytes(b"")
    done = subprocess.run(
        [sys.executable, str(PACKAGING / "check_app.py"), str(folder)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "holds torch" in lines[0] and "app_contents.py" in lines[0]


def test_check_app_refuses_forbidden_modules_archived_in_the_executable(
    check_app: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = _app_folder(tmp_path)
    archived = ["PYZ.pyz", "gui.cli", "httpx", "flwr", "flwr.client.app", "ray._private"]
    monkeypatch.setattr(check_app, "archived_modules", lambda _executable: archived)
    with pytest.raises(check_app.AppRefused, match="holds flwr, ray,"):
        check_app.check(folder)
    monkeypatch.setattr(check_app, "archived_modules", lambda _executable: archived[:3])
    assert "none of torch" in check_app.check(folder)
    (folder / "_internal" / "gui" / "i18n" / "genba_ja.qm").unlink()
    with pytest.raises(check_app.AppRefused, match="lacks the app's translations"):
        check_app.check(folder)


def test_check_app_refuses_a_folder_without_the_executable(check_app: ModuleType, tmp_path: Path) -> None:
    folder = _app_folder(tmp_path)
    (folder / "genba-gui").unlink()
    with pytest.raises(check_app.AppRefused, match="holds no genba-gui executable"):
        check_app.check(folder)
    with pytest.raises(check_app.AppRefused, match="is not a folder"):
        check_app.check(tmp_path / "nowhere")


@pytest.mark.parametrize(
    ("plugin_type", "file_name", "kept"),
    [
        ("platforms", "libqoffscreen.so", True),
        ("platforms", "libqxcb.so", True),
        ("platforms", "qwindows.dll", True),
        ("platforms", "libqeglfs.so", False),
        ("platforms", "libqvnc.so", False),
        ("imageformats", "libqjpeg.so", True),
        ("imageformats", "libqpdf.so", False),  # would bring QtPdf
        ("imageformats", "libqsvg.so", False),  # would bring QtSvg
        ("platforminputcontexts", "libibusplatforminputcontextplugin.so", True),
        ("tls", "libqopensslbackend.so", False),  # the app's HTTP goes through httpx
        ("wayland-shell-integration", "libxdg-shell.so", False),
    ],
)
def test_the_qt_hooks_keep_only_the_plugins_the_app_uses(
    contents: ModuleType, plugin_type: str, file_name: str, kept: bool
) -> None:
    assert contents.keeps_plugin(plugin_type, file_name) is kept


def test_the_spec_excludes_every_forbidden_package_by_name(contents: ModuleType) -> None:
    spec = (PACKAGING / "genba-gui.spec").read_text(encoding="utf-8")
    assert "excludes=list(EXCLUDES)" in spec and "hookspath=" in spec
    assert set(contents.FORBIDDEN) <= set(contents.EXCLUDES)
    assert set(contents.FORBIDDEN) >= {"torch", "onnxruntime", "flwr", "ray", "transformers", "scipy"}
