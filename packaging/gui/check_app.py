"""Refuse a built operator app that carries a forbidden package: ``python check_app.py dist/genba-gui``.

Looks in two places, because PyInstaller puts a package in either: the folder's files (packages
with native libraries, such as torch or onnxruntime, land there as folders) and the modules
archived inside the executable (pure-Python packages such as flwr). Reading that archive needs
PyInstaller, so run it with the build environment's Python (``make gui-app`` does). Prints one
line; exits 1 when the app holds a forbidden package or is not a complete build.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from app_contents import FORBIDDEN, forbidden_in

APP_NAME = "genba-gui"
CONTENTS = "_internal"
TRANSLATIONS = ("gui/i18n/genba_ja.qm",)


class AppRefused(Exception):
    """The built folder must not ship: the message says why and what to do."""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("folder", type=Path, help="the built app folder (dist/genba-gui)")
    args = parser.parse_args(argv)
    try:
        print(check(args.folder))
    except AppRefused as refused:
        print(f"check_app: {refused}", file=sys.stderr)
        return 1
    return 0


def check(folder: Path) -> str:
    """One line describing an acceptable app folder; :class:`AppRefused` otherwise."""
    if not folder.is_dir():
        raise AppRefused(f"{folder} is not a folder; build the app with 'make gui-app'")
    refuse_forbidden(folder, forbidden_in(folder_entries(folder)))
    executable = find_executable(folder)
    if executable is None:
        raise AppRefused(f"{folder} holds no {APP_NAME} executable; rebuild it with 'make gui-app'")
    modules = archived_modules(executable)
    refuse_forbidden(folder, forbidden_in(modules))
    missing = [name for name in TRANSLATIONS if not (folder / CONTENTS / name).is_file()]
    if missing:
        raise AppRefused(f"{folder} lacks the app's translations {', '.join(missing)}; rebuild it")
    return (
        f"check_app: {folder}: {len(modules)} archived modules, none of {', '.join(FORBIDDEN)}; "
        f"{folder_size_mb(folder):.1f} MB"
    )


def refuse_forbidden(folder: Path, found: list[str]) -> None:
    if found:
        raise AppRefused(
            f"{folder} holds {', '.join(found)}, which the operator app must not carry; find what imports "
            "it (the build's warn and xref files) and exclude it in packaging/gui/app_contents.py"
        )


def folder_entries(folder: Path) -> list[str]:
    """Every file and folder inside the app's contents folder, as relative POSIX paths."""
    contents = folder / CONTENTS
    root = contents if contents.is_dir() else folder
    return [path.relative_to(root).as_posix() for path in root.rglob("*")]


def find_executable(folder: Path) -> Path | None:
    for name in (APP_NAME, f"{APP_NAME}.exe"):
        if (folder / name).is_file():
            return folder / name
    return None


def archived_modules(executable: Path) -> list[str]:
    """The names PyInstaller archived in the executable (its PKG, and the PYZ of modules within)."""
    try:
        from PyInstaller.archive.readers import pkg_archive_contents
    except ImportError as error:
        raise AppRefused(
            "reading the app's module archive needs PyInstaller: run this with .venv-gui-build/bin/python"
        ) from error
    try:
        return list(pkg_archive_contents(str(executable)))
    except Exception as error:  # PyInstaller's readers raise bare exceptions on a damaged archive
        raise AppRefused(f"{executable} is not a readable PyInstaller build ({error}); rebuild it") from error


def folder_size_mb(folder: Path) -> float:
    """Bytes on disk of every regular file, links not followed, in MB (10^6 bytes)."""
    files = [path for path in folder.rglob("*") if path.is_file() and not path.is_symlink()]
    return sum(path.stat().st_size for path in files) / 1e6


if __name__ == "__main__":
    sys.exit(main())
