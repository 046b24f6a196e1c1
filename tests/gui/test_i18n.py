"""Japanese and English: every text translated, the compiled file current, the switch live."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QLocale

from gui.i18n import HERE, system_language
from gui.i18n.build import build, used_strings
from gui.i18n.ja import JA


def test_every_text_of_the_app_has_its_japanese_and_no_translation_is_stale() -> None:
    used = used_strings()
    assert len(used) > 20
    assert sorted(used - set(JA)) == []  # run python -m gui.i18n.build after adding them to ja.py
    assert sorted(set(JA) - used) == []


def test_the_compiled_translations_are_those_of_ja_py(tmp_path: Path) -> None:
    ts, qm = build(tmp_path)
    assert ts.read_text(encoding="utf-8") == (HERE / "genba_ja.ts").read_text(encoding="utf-8")
    assert qm.read_bytes() == (HERE / "genba_ja.qm").read_bytes()  # run python -m gui.i18n.build


def test_placeholders_survive_translation() -> None:
    import string

    for source, text in JA.items():
        fields = {name for _, name, _, _ in string.Formatter().parse(source) if name}
        assert fields == {name for _, name, _, _ in string.Formatter().parse(text) if name}, source


def test_the_system_locale_decides_the_starting_language() -> None:
    assert system_language(QLocale(QLocale.Language.Japanese, QLocale.Country.Japan)) == "ja"
    assert system_language(QLocale(QLocale.Language.German, QLocale.Country.Germany)) == "en"


def test_the_japanese_app_shows_japanese_and_switches_to_english_live(
    qtbot: Any, served_site: Any, open_window: Callable[..., Any], settle: Callable[..., None]
) -> None:
    window = open_window(served_site.site, role="operator", language="ja")
    titles = [window.tabs.tabText(i) for i in range(window.tabs.count())]
    assert titles == ["判定", "確認キュー", "モデル", "連合学習", "KPI"]
    assert "としてサインイン" in window.banner.text() and "本番" in window.banner.text()
    inspect = window.pages["inspect"]
    assert inspect.predict_button.text() == "予測"
    window.language.setCurrentIndex(0)  # English, while the app runs
    qtbot.waitUntil(lambda: window.tabs.tabText(0) == "Inspect", timeout=5_000)
    assert inspect.predict_button.text() == "Predict" and "signed in as operator" in window.banner.text()
    window.language.setCurrentIndex(1)
    qtbot.waitUntil(lambda: window.tabs.tabText(0) == "判定", timeout=5_000)


def test_japanese_renders_as_glyphs_not_boxes(qapp: Any) -> None:
    """With no CJK font every Japanese character is the same empty box; with one they differ."""
    from PySide6.QtGui import QColor, QFont, QFontDatabase, QImage, QPainter

    if not any("CJK" in family for family in QFontDatabase.families()):
        if os.environ.get("GENBA_REQUIRE_CJK_FONT"):
            raise AssertionError("no CJK font installed; run packaging/ensure-cjk-font.sh as root")
        pytest.skip("no CJK font here (make test installs fonts-noto-cjk when run as root)")

    def drawn(character: str) -> bytes:
        image = QImage(48, 48, QImage.Format.Format_Grayscale8)
        image.fill(QColor("white"))
        painter = QPainter(image)
        painter.setFont(QFont(QFont().family(), 28))
        painter.drawText(4, 38, character)
        painter.end()
        return bytes(image.constBits())

    glyphs = {drawn(c) for c in "判定確認"}
    assert len(glyphs) == 4 and drawn(" ") not in glyphs
