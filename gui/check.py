"""``genba gui --check``: open the app, wait for the agent's status and the review queue, say so, exit.

A smoke check without an operator: a desktop build started offscreen after an install, or CI.
It runs the very window and worker calls an operator gets; nothing waits on the GUI thread: the
window's worker pool reports when every call has landed, and a timer gives up after the deadline.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import TextIO

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication

from edge_agent.service.schemas import StatusResponse
from genba.errors import AgentUnavailableError
from gui.app import MainWindow, close_window, open_window
from gui.config import GuiConfig
from gui.i18n import t
from gui.widgets.queue_tab import LABELLING_ROLES, QueueTab

#: The first line the check prints, as soon as the event loop runs with the window shown.
WINDOW_SHOWN = "genba gui: window shown"


@dataclass
class CheckOutcome:
    """What the check saw: a summary line when everything answered, else the problem."""

    summary: str | None = None
    problem: str | None = None
    queue_asked: bool = False

    @property
    def decided(self) -> bool:
        return self.summary is not None or self.problem is not None


def run_check(config: GuiConfig, out: TextIO | None = None) -> str:
    """Open the window, load the status, then the review queue where the role may label; the
    summary line, or raise :class:`AgentUnavailableError` naming what did not answer."""
    app, window = open_window(config)
    outcome = CheckOutcome(problem=missing_translation(window))
    QTimer.singleShot(0, lambda: print(WINDOW_SHOWN, file=out or sys.stdout, flush=True))
    step = window.tasks.idle.connect(lambda: _next_step(app, window, outcome))
    deadline_s = config.timeout_s * 2
    deadline = QTimer(window)
    deadline.setSingleShot(True)
    deadline.timeout.connect(lambda: _give_up(app, outcome, deadline_s))
    deadline.start(int(deadline_s * 1000))
    app.exec()
    deadline.stop()
    window.tasks.idle.disconnect(step)
    close_window(app, window, config.timeout_s)
    if outcome.summary is None:
        raise AgentUnavailableError(f"the app's check failed: {outcome.problem}")
    return outcome.summary


def _next_step(app: QApplication, window: MainWindow, outcome: CheckOutcome) -> None:
    """Every call so far has landed: fail on a problem, else ask for the queue once, else pass."""
    status = window.context.status
    if outcome.decided:
        pass  # (a problem found before the first call landed)
    elif window.problem is not None:
        outcome.problem = window.problem
    elif status is None:
        return  # the status call is still to come
    elif not outcome.queue_asked and status.role in LABELLING_ROLES:
        outcome.queue_asked = True
        window.tabs.setCurrentWidget(window.pages["queue"])  # loads it, as an operator's click does
        if window.tasks.running:
            return  # the next idle moment decides
        outcome.problem = "the review queue was not loaded"
    else:
        outcome.summary = summary(window)
    app.exit(0)


def _give_up(app: QApplication, outcome: CheckOutcome, seconds: float) -> None:
    if not outcome.decided:
        outcome.problem = f"no answer from the agent within {seconds:g} s"
    app.exit(0)


def missing_translation(window: MainWindow) -> str | None:
    """A problem when the window's language is not English but its texts are (no .qm was found)."""
    language = window.translations.language
    if language == "en" or t("Genba operator") != "Genba operator":
        return None
    return f"the app's {language} translations did not load (gui/i18n/genba_{language}.qm)"


def summary(window: MainWindow) -> str:
    """One line: the site, the role, the production model and the review queue's length."""
    status = window.context.status
    if not isinstance(status, StatusResponse):
        return (
            f"genba gui: check passed: signed in as {window.context.role} (predictions only), "
            f"language {window.translations.language}"
        )
    production = status.production
    model = f"{production.name} v{production.version_label}" if production else "none"
    queue = window.pages["queue"]
    assert isinstance(queue, QueueTab)
    items = f"{queue.session.total} items" if queue.session is not None else "not offered to this role"
    return (
        f"genba gui: check passed: site {status.site}, signed in as {status.role}, "
        f"production model {model}, review queue {items}, language {window.translations.language}"
    )
