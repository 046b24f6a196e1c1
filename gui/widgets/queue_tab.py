"""The tab for the labelling queue (being built)."""

from __future__ import annotations

from gui.widgets.base import Tab


class QueueTab(Tab):
    def retranslate(self) -> None:
        pass
