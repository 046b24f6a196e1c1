"""Inspect: an input in, the answer out, accepted or corrected with one key.

Keyboard first: a scanner types the report and sends Enter; the answer appears and the decision
bar takes the focus: Enter accepts, 1–9 picks another label, Esc goes back to the input, and any
other typing goes back to the input too (the next scan). F1 asks why.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QColor, QImage, QKeySequence, QPainter, QPixmap, QShortcut
from PySide6.QtWidgets import (
    QFileDialog,
    QFrame,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from edge_agent.service.schemas import ExplanationResponse, StatusResponse
from gui.i18n import stage_name, t
from gui.viewmodels.inspect import AnswerView, DecisionClock, heatmap_strengths, strength_rgba, word_strengths
from gui.widgets.base import AgentStatus, Context, Tab
from gui.widgets.decisions import DecisionBar


class InspectTab(Tab):
    def __init__(self, context: Context) -> None:
        super().__init__(context)
        self.view: AnswerView | None = None
        self.image_bytes: bytes | None = None
        self.clock = DecisionClock()
        self._newest: AnswerView | None = None
        self._last_explanation: ExplanationResponse | None = None
        self._draw_pending = False
        self._build()
        self.retranslate()

    # ---------------------------------------------------------------- layout

    def _build(self) -> None:
        self.input = QLineEdit()
        self.input.setObjectName("input")
        self.input.returnPressed.connect(self.predict)
        self.predict_button = QPushButton()
        self.predict_button.clicked.connect(self.predict)
        self.image_button = QPushButton()
        self.image_button.clicked.connect(self.choose_image)
        entry = QHBoxLayout()
        entry.addWidget(self.input, 1)
        entry.addWidget(self.predict_button)
        entry.addWidget(self.image_button)
        self.answer = QLabel()
        self.answer.setObjectName("answer")
        self.details = QLabel()
        self.suggestion = QLabel()
        self.suggestion.setObjectName("suggestion")
        self.suggestion.hide()
        self.decisions = DecisionBar()
        self.decisions.chosen.connect(self.decide)
        self.decisions.leave.connect(self._back_to_input)
        self.explain_button = QPushButton()
        self.explain_button.clicked.connect(self.explain)
        self.explanation = QLabel()
        self.explanation.setWordWrap(True)
        self.explanation.setTextFormat(Qt.TextFormat.RichText)
        self.saved = QLabel()
        result = QFrame()
        result.setFrameShape(QFrame.Shape.StyledPanel)
        column = QVBoxLayout(result)
        shown: tuple[QWidget, ...] = (self.answer, self.details, self.suggestion, self.decisions,
                                      self.explain_button, self.explanation, self.saved)  # fmt: skip
        for part in shown:
            column.addWidget(part)
        layout = QVBoxLayout(self)
        layout.addLayout(entry)
        layout.addWidget(result)
        layout.addStretch(1)
        self.setAcceptDrops(True)
        QShortcut(QKeySequence(Qt.Key.Key_F1), self, self.explain)
        self._show(None)

    def retranslate(self) -> None:
        self.input.setPlaceholderText(t("Type, paste or scan a report, then press Enter"))
        self.predict_button.setText(t("Predict"))
        self.image_button.setText(t("Choose image…"))
        self.explain_button.setText(t("Why? (F1)"))
        explanation = self._last_explanation
        self._show(self.view)
        if explanation is not None:  # the same answer, now in the other language: keep its explanation
            self._explained(explanation)

    def on_status(self, status: AgentStatus) -> None:
        production = status.production if isinstance(status, StatusResponse) else None
        images = production is not None and str(production.task or "").startswith("image")
        self.image_button.setVisible(images)
        self.input.setEnabled(not images or self.image_bytes is None)

    # ---------------------------------------------------------------- actions

    def predict(self) -> None:
        text = self.input.text().strip()
        image = self.image_bytes
        if not text and image is None:
            return
        self.predict_button.setEnabled(False)
        labels = self.context.labels

        def request(client: Any) -> AnswerView:
            answer = client.predict(text) if image is None else client.predict(image=image)
            return AnswerView.of(answer, labels)

        self.context.call(request, self._answered, lambda _message: self.predict_button.setEnabled(True))

    def decide(self, label: str) -> None:
        view = self.view
        if view is None:
            return
        seconds = self.clock.decided()
        self.decisions.show_choices(view, enabled=False)

        def request(client: Any) -> Any:
            return client.label(view.input_id, label, operator_seconds=seconds)

        self.context.call(request, lambda result: self._labelled(label, result), lambda _m: self._show(view))

    def explain(self) -> None:
        view = self.view
        if view is None:
            return
        self.explanation.setText(t("Working out why…"))
        self.context.call(lambda client: client.explain(view.input_id), self._explained)

    def choose_image(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, t("Choose image…"), "", "Images (*.png *.jpg *.jpeg *.bmp)"
        )
        if path:
            self.load_image(Path(path))

    def load_image(self, path: Path) -> None:
        self.image_bytes = path.read_bytes()
        self.input.setText(path.name)
        self.predict()

    # ---------------------------------------------------------------- results

    def _answered(self, view: AnswerView) -> None:
        """Answers that land together (a scanner burst) are drawn once, the newest, on the next turn
        of the event loop: drawing each would keep the loop busy for the whole burst."""
        self.predict_button.setEnabled(True)
        self._newest = view
        if not self._draw_pending:
            self._draw_pending = True
            QTimer.singleShot(0, self._draw_newest)

    def _draw_newest(self) -> None:
        self._draw_pending = False
        if self._newest is None:
            return
        view, self._newest = self._newest, None
        self.input.clear()
        self._show(view)
        self.clock.shown()
        self.decisions.setFocus()

    def _labelled(self, label: str, result: Any) -> None:
        assert self.view is not None
        kind = t("correction") if label != self.view.label else t("accepted")
        self.saved.setText(t("Saved: {label} ({kind})").format(label=label, kind=kind))
        self.image_bytes = None
        self.view = None
        self._show(None, keep_saved=True)
        self.input.setFocus()

    def _explained(self, explanation: ExplanationResponse) -> None:
        self._last_explanation = explanation
        if explanation.words:
            self.explanation.setText(_highlighted(explanation))
        elif explanation.heatmap and self.image_bytes is not None:
            self.explanation.setPixmap(_heat_map(self.image_bytes, heatmap_strengths(explanation)))

    def _show(self, view: AnswerView | None, keep_saved: bool = False) -> None:
        self.view = view
        can_label = self.context.role in ("operator", "supervisor")
        self.decisions.show_choices(view, enabled=can_label)
        self.explain_button.setEnabled(view is not None and can_label)
        self.explanation.clear()
        self._last_explanation = None
        if not keep_saved:
            self.saved.clear()
        if view is None:
            self.answer.setText(t("No answer yet"))
            self.details.clear()
            self.suggestion.hide()
            return
        self.answer.setText(f"{view.label}  —  " + t("{pct} % confident").format(pct=view.confidence_pct))
        self.details.setText(
            t("Model {model} · stage {stage} · {provider} · {ms} ms").format(
                model=view.model, stage=stage_name(view.stage), provider=view.provider, ms=view.latency_ms
            )
        )
        if view.suggestion is not None:
            self.suggestion.setText(
                t("Pilot suggestion (not the answer): {label}, {pct} %").format(
                    label=view.suggestion, pct=view.suggestion_pct
                )
            )
        self.suggestion.setVisible(view.suggestion is not None)
        if not can_label:
            self.saved.setText(t("This role may not label; sign in as an operator to accept or correct."))

    def _back_to_input(self, typed: str) -> None:
        self.input.setFocus()
        if typed:
            self.input.insert(typed)

    # ---------------------------------------------------------------- drag and drop

    def dragEnterEvent(self, event: Any) -> None:
        if event.mimeData().hasUrls() and self.image_button.isVisible():
            event.acceptProposedAction()

    def dropEvent(self, event: Any) -> None:
        urls = event.mimeData().urls()
        if urls:
            self.load_image(Path(urls[0].toLocalFile()))


def _highlighted(explanation: ExplanationResponse) -> str:
    spans = []
    for word, strength in word_strengths(explanation):
        red, green, blue, alpha = strength_rgba(strength)
        style = f"background-color: rgba({red},{green},{blue},{alpha / 255:.2f}); padding: 2px;"
        spans.append(f'<span style="{style}">{html.escape(word)}</span>')
    legend = html.escape(t("orange: for the answer · blue: against it"))
    return " ".join(spans) + f"<br><small>{legend}</small>"


def _heat_map(image_bytes: bytes, grid: list[list[float]], size: int = 320) -> QPixmap:
    image = QImage.fromData(image_bytes).scaled(size, size, Qt.AspectRatioMode.KeepAspectRatio)
    pixmap = QPixmap.fromImage(image)
    painter = QPainter(pixmap)
    rows = len(grid)
    for r, row in enumerate(grid):
        for c, strength in enumerate(row):
            painter.fillRect(
                int(c * pixmap.width() / len(row)), int(r * pixmap.height() / rows),
                int(pixmap.width() / len(row)) + 1, int(pixmap.height() / rows) + 1,
                QColor(*strength_rgba(strength)),
            )  # fmt: skip
    painter.end()
    return pixmap
