"""The tab for production and candidate models (being built)."""

from __future__ import annotations

from gui.widgets.base import Tab


class ModelTab(Tab):
    def retranslate(self) -> None:
        pass
