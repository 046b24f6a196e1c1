"""KPIs: the agent's PoC report over 7, 30 or 90 days, as headline figures and charts, and as CSV.

The report is built by the agent (``client.report(days)``); this tab only shows it. A figure with
too few data behind it shows "—" and the report's reason, never a zero.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from edge_agent.service.schemas import ReportResponse
from gui.i18n import t
from gui.viewmodels.kpis import DAY_CHOICES, ChartData, Headline, KpiView
from gui.widgets.base import Context, Tab
from gui.widgets.chart import LineChart

#: Seconds a loaded report stays on screen before the timer fetches it again.
RELOAD_S = 60.0
HEADLINES = ("lead_time", "acceptance", "accuracy", "net")
CHARTS = ("quality", "latency", "labels", "seconds", "drift")
_STYLE = """
QLabel#figure { font-size: 26pt; font-weight: bold; }
QLabel#reason { color: #555555; font-size: 12pt; }
"""


class KpiTab(Tab):
    def __init__(self, context: Context, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(context)
        self.clock = clock
        self.view: KpiView | None = None
        self.loading = False
        self.loaded_at: float | None = None
        self._build()
        self.retranslate()

    # ---------------------------------------------------------------- layout

    def _build(self) -> None:
        self.setStyleSheet(_STYLE)
        self.days = QComboBox()
        self.days.currentIndexChanged.connect(lambda _index: self.load())
        self.days_title = QLabel()
        self.export_button = QPushButton()
        self.export_button.setEnabled(False)
        self.export_button.clicked.connect(self.choose_export)
        self.state = QLabel()
        controls = QHBoxLayout()
        for widget in (self.days_title, self.days, self.export_button):
            controls.addWidget(widget)
        controls.addWidget(self.state, 1)
        figures = QHBoxLayout()
        self.headlines: dict[str, tuple[QLabel, QLabel, QLabel]] = {}
        for key in HEADLINES:
            figures.addWidget(self._headline_box(key), 1)
        self.charts = {key: LineChart() for key in CHARTS}
        grid = QGridLayout()
        for index, key in enumerate(CHARTS):
            grid.addWidget(self.charts[key], index // 2, index % 2)
        page = QWidget()
        page.setLayout(grid)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(page)
        layout = QVBoxLayout(self)
        layout.addLayout(controls)
        layout.addLayout(figures)
        layout.addWidget(scroll, 1)

    def _headline_box(self, key: str) -> QFrame:
        box = QFrame()
        box.setFrameShape(QFrame.Shape.StyledPanel)
        title, value, reason = QLabel(), QLabel(), QLabel()
        value.setObjectName("figure")
        reason.setObjectName("reason")
        reason.setWordWrap(True)
        column = QVBoxLayout(box)
        for label in (title, value, reason):
            column.addWidget(label)
        column.addStretch(1)
        self.headlines[key] = (title, value, reason)
        return box

    def retranslate(self) -> None:
        self.days_title.setText(t("Window:"))
        selected = self.days.currentIndex()
        self.days.blockSignals(True)  # renaming the entries is not choosing another window
        self.days.clear()
        self.days.addItems([t("Last {days} days").format(days=days) for days in DAY_CHOICES])
        self.days.setCurrentIndex(selected if selected >= 0 else DAY_CHOICES.index(30))
        self.days.blockSignals(False)
        self.export_button.setText(t("Export CSV…"))
        titles = _headline_titles()
        for key, (title, _, _) in self.headlines.items():
            title.setText(titles[key])
        self._show()

    # ---------------------------------------------------------------- loading

    def selected_days(self) -> int:
        return DAY_CHOICES[max(self.days.currentIndex(), 0)]

    def refresh(self) -> None:
        """Load when nothing is shown yet or the shown report is older than ``RELOAD_S``."""
        if self.loaded_at is None or self.clock() - self.loaded_at >= RELOAD_S:
            self.load()

    def load(self) -> None:
        if self.loading:
            return
        if self.context.role == "integration":
            self.state.setText(t("This role may not read the KPIs."))
            return
        self.loading = True
        days = self.selected_days()
        self.state.setText(t("Loading the report…"))
        self.context.call(lambda client: client.report(days), self._loaded, self._failed)

    def _loaded(self, report: ReportResponse) -> None:
        self.loading = False
        self.loaded_at = self.clock()
        self.view = KpiView.of(report)
        if len(self.view.days) != self.selected_days():  # the window changed while this one loaded
            self.load()
        self._show()

    def _failed(self, _message: str) -> None:
        self.loading = False
        self.state.clear()

    # ---------------------------------------------------------------- export

    def choose_export(self) -> None:
        view = self.view
        if view is None:
            return
        suggested = f"genba-kpis-{view.days[0]}-{view.days[-1]}.csv"
        path, _ = QFileDialog.getSaveFileName(self, t("Export CSV…"), suggested, "CSV (*.csv)")
        if path:
            self.export_csv(Path(path))

    def export_csv(self, path: Path) -> bool:
        """Write the shown report's daily figures to ``path``; False (and why, on screen) if it failed."""
        if self.view is None:
            return False
        try:
            path.write_text(self.view.csv_text(), encoding="utf-8")
        except OSError as error:
            self.state.setText(t("Could not save {path}: {error}").format(path=path, error=error.strerror))
            return False
        self.state.setText(t("Saved {path}").format(path=path))
        return True

    # ---------------------------------------------------------------- display

    def _show(self) -> None:
        view = self.view
        self.export_button.setEnabled(view is not None)
        if view is None:
            return
        if not self.loading:
            self.state.setText(t("Report of {first} to {last} (UTC), made {at}").format(
                first=view.days[0], last=view.days[-1], at=view.generated_at
            ))  # fmt: skip
        for headline in view.headlines:
            self._show_headline(headline)
        for chart in view.charts:
            self._show_chart(chart)

    def _show_headline(self, headline: Headline) -> None:
        _, value, reason = self.headlines[headline.key]
        value.setText(headline.text)
        reason.setText(headline.reason or "")

    def _show_chart(self, chart: ChartData) -> None:
        titles, units, notes, names = _chart_titles(), _chart_units(), _empty_notes(), _series_names()
        self.charts[chart.key].set_data(
            titles[chart.key],
            chart.days,
            [(names[series.key], series.values) for series in chart.series],
            unit=units[chart.key],
            y_max=chart.y_max,
            empty_note=notes.get(chart.key, ""),
        )


def _headline_titles() -> dict[str, str]:
    return {
        "lead_time": t("Lead time to production (median)"),
        "acceptance": t("Accepted without correction"),
        "accuracy": t("Accuracy on operator labels"),
        "net": t("Net cost–benefit"),
    }


def _chart_titles() -> dict[str, str]:
    return {
        "quality": t("Accuracy, acceptance and agreement per day"),
        "latency": t("Latency of production answers per day"),
        "labels": t("Labels per day"),
        "seconds": t("Seconds per label"),
        "drift": t("Drift events per day"),
    }


def _chart_units() -> dict[str, str]:
    return {"quality": "%", "latency": "ms", "labels": "", "seconds": "s", "drift": ""}  # counts need no unit


def _empty_notes() -> dict[str, str]:
    return {
        "quality": t("Too few labels or compared answers on every day"),
        "latency": t("Too few production answers on every day"),
        "seconds": t("Too few timed labels on every day"),
    }


def _series_names() -> dict[str, str]:
    return {
        "accuracy": t("accuracy"),
        "acceptance": t("acceptance"),
        "agreement": t("agreement"),
        "p50": "p50",
        "p95": "p95",
        "labels": t("labels"),
        "mean": t("mean"),
        "median": t("median"),
        "warning": t("warning"),
        "drift": t("drift"),
    }
