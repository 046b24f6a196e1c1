"""PySide6.QtWidgets as PyInstaller collects it, with only the Qt plugins the operator app uses."""

from qt_plugins import collect

hiddenimports, binaries, datas = collect("PySide6.QtWidgets")
