"""The operator app's window: a banner that always says whether the agent answers, and the tabs."""

from __future__ import annotations

import sys

from PySide6.QtCore import QEvent, QTimer
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (
    QApplication,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from edge_agent.service.client import AgentClient
from edge_agent.service.schemas import StatusResponse
from genba.errors import PermissionDeniedError
from gui.config import LANGUAGES, GuiConfig
from gui.connection import Connection
from gui.i18n import Translations, stage_name, system_language, t
from gui.viewmodels.certificates import CertificateWarning, certificate_warnings
from gui.widgets.base import AgentStatus, Context, Limited, Tab
from gui.widgets.federation_tab import FederationTab
from gui.widgets.inspect_tab import InspectTab
from gui.widgets.kpi_tab import KpiTab
from gui.widgets.model_tab import ModelTab
from gui.widgets.queue_tab import QueueTab
from gui.workers import Tasks

#: Large controls: shop-floor screens are read from a step away and touched with gloves.
STYLE = """
QWidget { font-size: 15pt; }
QPushButton { min-height: 44px; padding: 4px 14px; }
QLineEdit { min-height: 44px; }
QLabel#answer { font-size: 24pt; font-weight: bold; }
QLabel#suggestion { background: #fff3cd; border: 2px dashed #b8860b; padding: 6px; }
QLabel#banner[state="down"] { background: #f8d7da; color: #721c24; padding: 6px; }
QLabel#banner[state="up"] { background: #d4edda; color: #155724; padding: 6px; }
QLabel#banner[state="warn"] { background: #fff3cd; color: #856404; padding: 6px; }
QPushButton#accept { background: #2e7d32; color: white; font-weight: bold; }
"""


class MainWindow(QMainWindow):
    def __init__(self, config: GuiConfig, translations: Translations | None = None) -> None:
        super().__init__()
        self.config = config
        self.translations = translations or Translations()
        self.tasks = Tasks()
        self.connection = Connection(config.data, config.role, timeout_s=config.timeout_s)
        self.context = Context(self.connection, self.tasks, self.report_problem)
        self._status_in_flight = False
        self.problem: str | None = None
        self._build()
        self.retranslate()
        self.timer = QTimer(self)
        self.timer.timeout.connect(self.refresh)
        self.timer.start(int(config.refresh_s * 1000))
        self.refresh()

    def _build(self) -> None:
        self.banner = QLabel()
        self.banner.setObjectName("banner")
        self.banner.setWordWrap(True)
        self.language = QComboBox()
        self.language.addItems(["English", "日本語"])
        self.language.setCurrentIndex(LANGUAGES.index(self.translations.language))
        self.language.currentIndexChanged.connect(lambda index: self.set_language(LANGUAGES[index]))
        header = QHBoxLayout()
        header.addWidget(self.banner, 1)
        header.addWidget(self.language)
        self.tabs = QTabWidget()
        self.pages: dict[str, Tab] = {
            "inspect": InspectTab(self.context),
            "queue": QueueTab(self.context),
            "model": ModelTab(self.context),
            "federation": FederationTab(self.context),
            "kpis": KpiTab(self.context),
        }
        for page in self.pages.values():
            self.tabs.addTab(page, "")
        self.tabs.currentChanged.connect(lambda _index: self.current_page().refresh())
        body = QWidget()
        layout = QVBoxLayout(body)
        layout.addLayout(header)
        layout.addWidget(self.tabs)
        self.setCentralWidget(body)
        self.resize(1280, 860)

    def current_page(self) -> Tab:
        page = self.tabs.currentWidget()
        assert isinstance(page, Tab)
        return page

    # ---------------------------------------------------------------- language

    def set_language(self, language: str) -> None:
        if language != self.translations.language:
            self.translations.switch(language)  # Qt then sends every widget a LanguageChange

    def changeEvent(self, event: QEvent) -> None:
        if event.type() == QEvent.Type.LanguageChange:
            self.retranslate()
        super().changeEvent(event)

    def retranslate(self) -> None:
        self.setWindowTitle(t("Genba operator"))
        titles = {"inspect": t("Inspect"), "queue": t("Review queue"), "model": t("Model"),
                  "federation": t("Federation"), "kpis": t("KPIs")}  # fmt: skip
        for name, page in self.pages.items():
            self.tabs.setTabText(self.tabs.indexOf(page), titles[name])
            page.retranslate()
        self._show_banner()

    # ---------------------------------------------------------------- agent status

    def refresh(self) -> None:
        """The agent's status (and the visible tab's data) on a worker; skipped while one is in flight."""
        if self._status_in_flight:
            return
        self._status_in_flight = True
        self.tasks.submit(lambda: self.connection.call(read_status), self._on_status, self._on_down)
        self.current_page().refresh()

    def _on_status(self, status: AgentStatus) -> None:
        self._status_in_flight = False
        self.problem = None
        self.context.status = status
        for page in self.pages.values():
            page.on_status(status)
        self._show_banner()

    def _on_down(self, message: str) -> None:
        self._status_in_flight = False
        self.report_problem(message)

    def report_problem(self, message: str) -> None:
        self.problem = message
        self._show_banner()

    def _show_banner(self) -> None:
        status = self.context.status
        if self.problem is not None:
            self.banner.setProperty("state", "down")
            self.banner.setText(t("Problem: {message}").format(message=self.problem))
        elif isinstance(status, Limited):
            self.banner.setProperty("state", "up")
            self.banner.setText(
                t("Signed in as {role}: this role may only ask for predictions.").format(role=status.role)
            )
        elif status is not None:
            production, candidate = status.production, status.candidate
            text = t("Site {site} · signed in as {role} · production {name} v{version}").format(
                site=status.site, role=status.role,
                name=production.name if production else "—",
                version=production.version_label if production else "—",
            )  # fmt: skip
            if candidate:
                text += " · " + t("candidate v{version} in {stage}").format(
                    version=candidate.version_label, stage=stage_name(str(candidate.stage))
                )
            warnings = [certificate_text(warning) for warning in certificate_warnings(status)]
            self.banner.setProperty("state", "warn" if warnings else "up")
            self.banner.setText("\n".join([text, *warnings]))
        else:
            self.banner.setProperty("state", "")
            self.banner.setText(t("Connecting to the agent…"))
        self.banner.style().unpolish(self.banner)
        self.banner.style().polish(self.banner)


def certificate_text(warning: CertificateWarning) -> str:
    """One line for the banner about a certificate of the site's kit."""
    names = {"client": t("The site's TLS certificate"), "ca": t("The kit's CA certificate")}
    what = names.get(warning.kind, warning.kind)
    if warning.state == "expiring":
        return t("{what} expires on {date}, in {days} days: ask IT for a new site kit.").format(
            what=what, date=warning.date, days=warning.days
        )
    if warning.state == "expired":
        return t(
            "{what} expired on {date}: federated training cannot connect until IT sends a new site kit."
        ).format(what=what, date=warning.date)
    return t("{what} cannot be used: {message}").format(what=what, message=warning.message)


def read_status(client: AgentClient) -> StatusResponse | Limited:
    """The agent's status; a role that may not read it (integration) only predicts."""
    try:
        return client.status()
    except PermissionDeniedError:
        return Limited()


def open_window(config: GuiConfig) -> tuple[QApplication, MainWindow]:
    """The application (styled, in the configured or the system's language) and its window, shown."""
    app = QApplication.instance() or QApplication(sys.argv[:1])
    assert isinstance(app, QApplication)
    app.setStyleSheet(STYLE)
    app.setFont(QFont(app.font().family(), 15))
    translations = Translations()
    translations.switch(config.language or system_language())
    window = MainWindow(config, translations)
    window.show()
    return app, window


def close_window(app: QApplication, window: MainWindow, timeout_s: float) -> None:
    """Stop the refresh timer and wait for the workers: no worker outlives the window."""
    window.timer.stop()
    window.tasks.pool.waitForDone(int(timeout_s * 1000))
    window.deleteLater()
    app.processEvents()


def run(config: GuiConfig) -> int:
    """``genba gui``: the window until it is closed."""
    app, window = open_window(config)
    code = int(app.exec())
    close_window(app, window, config.timeout_s)
    return code
