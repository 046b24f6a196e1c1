"""The tab for federation and the egress ledger (being built)."""

from __future__ import annotations

from gui.widgets.base import Tab


class FederationTab(Tab):
    def retranslate(self) -> None:
        pass
