"""The Qt hooks' shared part: PyInstaller's own collection of a PySide6 module, minus the plugins
the app does not use (app_contents.QT_PLUGINS), dropped before their libraries are analysed."""

from __future__ import annotations

from pathlib import PurePath
from typing import Any

from app_contents import keeps_plugin


def collect(module: str) -> tuple[list[str], list[tuple[str, str]], list[tuple[str, str]]]:
    from PyInstaller.utils.hooks.qt import get_qt_library_info

    hiddenimports, binaries, datas = get_qt_library_info("PySide6").collect_module(module)
    return list(hiddenimports), [entry for entry in binaries if _kept(entry)], list(datas)


def _kept(entry: Any) -> bool:
    source, destination = entry
    parts = PurePath(destination).parts
    if "plugins" not in parts or parts[-1] == "plugins":
        return True
    return keeps_plugin(parts[-1], PurePath(source).name)
