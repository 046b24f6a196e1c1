"""Compile the Japanese texts: ``python -m gui.i18n.build`` writes genba_ja.ts and genba_ja.qm.

``ja.py`` is the source of truth (English text → Japanese); the ``.ts`` file is Qt Linguist's
format, kept so translators can use Linguist, and ``lrelease`` (shipped with PySide6) compiles it
into the ``.qm`` the app loads. :func:`used_strings` finds every ``t("...")`` in the app's code,
so a test can tell when a text has no translation.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from xml.sax.saxutils import escape

from gui.i18n import CONTEXT, HERE

GUI_ROOT = HERE.parent


def used_strings(root: Path = GUI_ROOT) -> set[str]:
    """Every literal passed to ``t(...)`` under ``root``."""
    found: set[str] = set()
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id == "t"
                and node.args
                and isinstance(node.args[0], ast.Constant)
                and isinstance(node.args[0].value, str)
            ):
                found.add(node.args[0].value)
    return found


def ts_document(translations: Mapping[str, str], language: str) -> str:
    messages = "".join(
        f"    <message>\n        <source>{escape(source)}</source>\n"
        f"        <translation>{escape(text)}</translation>\n    </message>\n"
        for source, text in sorted(translations.items())
    )
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n<!DOCTYPE TS>\n'
        f'<TS version="2.1" language="{language}">\n<context>\n    <name>{CONTEXT}</name>\n'
        f"{messages}</context>\n</TS>\n"
    )


def compile_qm(ts: Path, qm: Path) -> None:
    import PySide6

    lrelease = Path(PySide6.__file__).parent / "lrelease"
    result = subprocess.run(
        [str(lrelease), "-silent", str(ts), "-qm", str(qm)], capture_output=True, text=True, check=False
    )
    if result.returncode != 0 or not qm.exists():
        raise RuntimeError(f"lrelease failed: {result.stderr.strip() or result.stdout.strip()}")


def build(out: Path = HERE) -> tuple[Path, Path]:
    from gui.i18n.ja import JA

    ts, qm = out / "genba_ja.ts", out / "genba_ja.qm"
    ts.write_text(ts_document(JA, "ja_JP"), encoding="utf-8")
    compile_qm(ts, qm)
    return ts, qm


if __name__ == "__main__":
    missing = sorted(used_strings() - set(__import__("gui.i18n.ja", fromlist=["JA"]).JA))
    for text in missing:
        print(f"no Japanese for: {text!r}", file=sys.stderr)
    print(*build(), sep="\n")
