"""Review queue: the items the model was least sure of, one at a time, labelled with one key each.

Keyboard first, like Inspect: Enter accepts the model's answer, 1–9 picks another label, S skips,
R loads the queue again once it is done. Each label carries the seconds the operator took.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QImage, QKeySequence, QPixmap, QShortcut
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from edge_agent.service.client import QueueEntry
from gui.i18n import t
from gui.viewmodels.inspect import DecisionClock
from gui.viewmodels.queue import QUEUE_SIZE, QueueItemView, ReviewSession
from gui.widgets.base import Context, Tab
from gui.widgets.decisions import DecisionBar

LABELLING_ROLES = ("operator", "supervisor")
#: The report is what the operator reads: larger than the rest, as Inspect's answer is.
_STYLE = "QLabel#queueText { font-size: 20pt; }"
#: The longer side of a queued image on screen, in pixels: large enough to see a scratch.
IMAGE_SIDE = 480


class QueueTab(Tab):
    def __init__(self, context: Context) -> None:
        super().__init__(context)
        self.session: ReviewSession | None = None
        self.loading = False
        self.saving = False
        self.clock = DecisionClock()
        self.timed_id: int | None = None  # the item the clock runs for: a redraw must not restart it
        self.images: dict[int, QPixmap | None] = {}  # this session's images by input id (None: asked for)
        self._build()
        self.retranslate()

    # ---------------------------------------------------------------- layout

    def _build(self) -> None:
        self.setStyleSheet(_STYLE)
        self.progress = QLabel()
        self.progress.setObjectName("progress")
        self.text = QLabel()
        self.text.setObjectName("queueText")
        self.text.setWordWrap(True)
        self.text.setTextFormat(Qt.TextFormat.PlainText)
        self.image = QLabel()
        self.image.setObjectName("queueImage")
        self.image.setAlignment(Qt.AlignmentFlag.AlignLeft)
        self.image.hide()
        self.answer = QLabel()
        self.answer.setObjectName("answer")
        self.decisions = DecisionBar()
        self.decisions.chosen.connect(self.decide)
        self.decisions.leave.connect(self._typed)
        self.skip_button = QPushButton()
        self.skip_button.clicked.connect(self.skip)
        self.reload_button = QPushButton()
        self.reload_button.clicked.connect(self.load)
        actions = QHBoxLayout()
        actions.addWidget(self.skip_button)
        actions.addWidget(self.reload_button)
        actions.addStretch(1)
        self.message = QLabel()
        self.message.setWordWrap(True)
        item = QFrame()
        item.setFrameShape(QFrame.Shape.StyledPanel)
        column = QVBoxLayout(item)
        shown: tuple[QWidget, ...] = (self.image, self.text, self.answer, self.decisions)
        for part in shown:
            column.addWidget(part)
        layout = QVBoxLayout(self)
        layout.addWidget(self.progress)
        layout.addWidget(item)
        layout.addLayout(actions)
        layout.addWidget(self.message)
        layout.addStretch(1)
        QShortcut(QKeySequence(Qt.Key.Key_S), self, self.skip)
        QShortcut(QKeySequence(Qt.Key.Key_R), self, self.reload_when_done)

    def retranslate(self) -> None:
        self.skip_button.setText(t("Skip (S)"))
        self.reload_button.setText(t("Load the queue again (R)"))
        self._show()

    def refresh(self) -> None:
        """The first time the tab is shown (and while the queue is empty): load it. A loaded queue stays."""
        if self.session is None or self.session.total == 0:
            self.load()

    # ---------------------------------------------------------------- actions

    def load(self) -> None:
        if self.loading or self.saving or not self._can_label():
            self._show()
            return
        self.loading = True
        self.message.setText(t("Loading the queue…"))
        self.context.call(lambda client: client.queue(QUEUE_SIZE), self._loaded, self._load_failed)

    def reload_when_done(self) -> None:
        if self.session is None or self.session.done:
            self.load()

    def decide(self, label: str) -> None:
        session = self.session
        item = session.current if session else None
        if item is None or not label or self.saving:
            return
        seconds = self.clock.decided()
        self.saving = True
        self.decisions.show_choices(item, enabled=False)

        def request(client: Any) -> Any:
            return client.label(item.input_id, label, operator_seconds=seconds)

        self.context.call(request, lambda _result: self._labelled(item, label), self._label_failed)

    def skip(self) -> None:
        if self.session is None or self.session.done or self.saving:
            return
        self.session.skip()
        self.message.clear()
        self._show()

    def _typed(self, typed: str) -> None:
        """Keys the decision bar does not use: S and R (when the shortcuts did not catch them)."""
        if typed.lower() == "s":
            self.skip()
        elif typed.lower() == "r":
            self.reload_when_done()

    # ---------------------------------------------------------------- results

    def _loaded(self, entries: list[QueueEntry]) -> None:
        self.loading = False
        self.session = ReviewSession(entries, self.context.labels)
        self.images.clear()
        self.message.clear()
        self._show()

    def _load_failed(self, _message: str) -> None:
        self.loading = False
        self._show()

    def _labelled(self, item: QueueItemView, label: str) -> None:
        self.saving = False
        if self.session is not None and self.session.current is item:
            self.session.record(label)
        kind = t("correction") if label != item.label else t("accepted")
        self.message.setText(t("Saved: {label} ({kind})").format(label=label, kind=kind))
        self._show()

    def _label_failed(self, _message: str) -> None:
        self.saving = False
        self.timed_id = None  # the clock was read for the failed call: time the retry afresh
        self._show()

    # ---------------------------------------------------------------- display

    def _can_label(self) -> bool:
        return self.context.role in (*LABELLING_ROLES, None)  # None: status not in yet, the agent decides

    def _show(self) -> None:
        session = self.session
        item = session.current if session else None
        self.skip_button.setEnabled(item is not None and not self.saving)
        self.reload_button.setVisible(session is None or session.done)
        self.reload_button.setEnabled(not self.loading)
        self.progress.setText(self._progress_text())
        if not self._can_label():
            self._show_item(None)
            self.text.setText(t("This role may not label; sign in as an operator to accept or correct."))
        elif session is None:
            self._show_item(None)
        elif item is None:
            self._show_item(None)
            self.text.setText(self._done_text(session))
            self.reload_button.setFocus()
        else:
            self._show_item(item)

    def _show_item(self, item: QueueItemView | None) -> None:
        self.decisions.show_choices(item, enabled=item is not None and not self.saving)
        if item is None:
            self.text.clear()
            self.answer.clear()
            self.image.hide()
            return
        self._show_payload(item)
        if item.label:
            pct = t("{pct} % confident").format(pct=item.confidence_pct)
            answer = t("Model: {label}").format(label=item.label) + f"  —  {pct}"
        else:
            answer = t("The model gave no answer")
        random_check = t("Random check: label what you see, whatever the model says")
        self.answer.setText(f"{answer}\n{random_check}" if item.audit else answer)
        if not self.saving:
            if item.input_id != self.timed_id:
                self.timed_id = item.input_id
                self.clock.shown()
            self.decisions.setFocus()

    def _show_payload(self, item: QueueItemView) -> None:
        """A report's text; an image once it has come (asked for on a worker, once per item)."""
        if not item.is_image:
            self.image.hide()
            self.text.setText(item.text or "")
            return
        pixmap = self.images.get(item.input_id)
        if pixmap is None:
            self.image.hide()
            self.text.setText(t("Loading the image…"))
            if item.input_id not in self.images:
                self._ask_image(item.input_id)
            return
        if pixmap.isNull():
            self.image.hide()
            self.text.setText(t("The image could not be shown: not a picture this app can read"))
            return
        self.image.setPixmap(pixmap)
        self.image.show()
        self.text.clear()

    def _ask_image(self, input_id: int) -> None:
        self.images[input_id] = None

        def shown(payload: bytes) -> None:
            self.images[input_id] = _scaled(payload)
            self._show()

        def failed(message: str) -> None:
            self.images.pop(input_id, None)  # asked again when the item is shown again
            current = self.session.current if self.session else None
            if current is not None and current.input_id == input_id:
                self.text.setText(t("The image could not be shown: {problem}").format(problem=message))

        self.context.call(lambda client: client.input_image(input_id), shown, failed)

    def _progress_text(self) -> str:
        session = self.session
        if session is None:
            return t("Loading the queue…") if self.loading else ""
        text = t("{done} of {total} labelled").format(done=session.labelled, total=session.total)
        if session.skipped:
            text += " · " + t("{count} skipped").format(count=session.skipped)
        return text

    def _done_text(self, session: ReviewSession) -> str:
        if session.total == 0:
            return t("Nothing to label: the queue is empty.")
        return t("Queue done: {done} labelled, {skipped} skipped. Press R to load more.").format(
            done=session.labelled, skipped=session.skipped
        )


def _scaled(payload: bytes) -> QPixmap:
    image = QImage.fromData(payload)
    if image.isNull():
        return QPixmap()
    if max(image.width(), image.height()) > IMAGE_SIDE:
        image = image.scaled(IMAGE_SIDE, IMAGE_SIDE, Qt.AspectRatioMode.KeepAspectRatio)
    return QPixmap.fromImage(image)
