"""The tab for the PoC KPI report (being built)."""

from __future__ import annotations

from gui.widgets.base import Tab


class KpiTab(Tab):
    def retranslate(self) -> None:
        pass
