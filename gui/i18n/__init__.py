"""Japanese and English: Qt translations, following the system locale, switchable while the app runs.

Every user-visible string goes through :func:`t` with its English text; the Japanese texts live
in ``ja.py`` and are compiled into ``genba_ja.qm`` by ``python -m gui.i18n.build`` (a test checks
that the compiled file is current and that every string has its translation).
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QCoreApplication, QLibraryInfo, QLocale, QTranslator

CONTEXT = "genba"
HERE = Path(__file__).resolve().parent


def t(text: str) -> str:
    return QCoreApplication.translate(CONTEXT, text)


def stage_name(stage: str) -> str:
    """A rollout stage in the current language."""
    names = {"production": t("production"), "pilot": t("pilot"), "shadow": t("shadow")}
    return names.get(stage, stage)


def system_language(locale: QLocale | None = None) -> str:
    """The app's language for the system's locale (Japanese, else English)."""
    language = (locale or QLocale.system()).language()
    return "ja" if language == QLocale.Language.Japanese else "en"


#: The translators this app installed (one language at a time, whichever window asked for it).
_INSTALLED: list[QTranslator] = []


class Translations:
    """The app's language; :meth:`switch` replaces the installed translators (widgets then re-read
    their texts on Qt's LanguageChange event)."""

    def __init__(self) -> None:
        self.language = "en"

    def switch(self, language: str) -> bool:
        """Install ``language``'s translations; False when its files could not be loaded."""
        app = QCoreApplication.instance()
        assert app is not None
        while _INSTALLED:
            app.removeTranslator(_INSTALLED.pop())
        self.language = language
        if language == "en":
            return True
        ours = QTranslator()
        if not ours.load(str(HERE / f"genba_{language}.qm")):
            return False
        qt = QTranslator()  # Qt's own texts: dialog buttons and the like
        if qt.load(f"qtbase_{language}", QLibraryInfo.path(QLibraryInfo.LibraryPath.TranslationsPath)):
            _INSTALLED.append(qt)
        _INSTALLED.append(ours)
        for translator in _INSTALLED:
            app.installTranslator(translator)
        return True
