"""The decision bar shared by Inspect and the review queue: one button per label, keyboard first.

Enter accepts the model's answer, 1–9 picks another label; Esc and any other typed key are
handed back to the tab (``leave``), which decides what they mean there.
"""

from __future__ import annotations

from typing import Protocol

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import QHBoxLayout, QPushButton, QWidget

from gui.i18n import t
from gui.viewmodels.inspect import Choice


class Decidable(Protocol):
    """What the bar offers: the model's answer and the labels an operator may pick instead."""

    @property
    def label(self) -> str: ...

    @property
    def choices(self) -> tuple[Choice, ...]: ...

    def choice_for_key(self, key: str) -> Choice | None: ...


class DecisionBar(QWidget):
    """One button per label; takes the keyboard after an answer."""

    chosen = Signal(str)
    leave = Signal(str)  # back to the tab, with the key typed (or "")

    def __init__(self) -> None:
        super().__init__()
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.layout_ = QHBoxLayout(self)
        self.view: Decidable | None = None
        self.buttons: dict[str, QPushButton] = {}

    def show_choices(self, view: Decidable | None, enabled: bool) -> None:
        """One button per choice; the buttons are kept while the labels stay the same (cheap to
        update many times a second), rebuilt only when the label set changes."""
        self.view = view
        choices = view.choices if view else ()
        if [c.label for c in choices] != list(self.buttons):
            self._rebuild([c.label for c in choices])
        for choice in choices:
            button = self.buttons[choice.label]
            text = f"{choice.key}  {choice.label}" if choice.key else choice.label
            button.setText(t("Accept") + f"  {choice.label}  (Enter)" if choice.is_answer else text)
            kind = "accept" if choice.is_answer else "correct"
            if button.objectName() != kind:
                button.setObjectName(kind)
                button.style().unpolish(button)  # the style sheet styles "accept" apart
                button.style().polish(button)
            button.setEnabled(enabled)

    def _rebuild(self, labels: list[str]) -> None:
        for button in self.buttons.values():
            button.hide()  # gone at once: deleteLater waits for the event loop
            button.deleteLater()
        self.buttons = {}
        for label in labels:
            button = QPushButton()
            button.clicked.connect(lambda _=False, chosen=label: self.chosen.emit(chosen))
            self.layout_.addWidget(button)
            self.buttons[label] = button

    def keyPressEvent(self, event: QKeyEvent) -> None:
        view = self.view
        enabled = any(b.isEnabled() for b in self.buttons.values())
        if view is not None and enabled and event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            self.chosen.emit(view.label)
        elif view is not None and enabled and (choice := view.choice_for_key(event.text())) is not None:
            self.chosen.emit(choice.label)
        elif event.key() == Qt.Key.Key_Escape:
            self.leave.emit("")
        elif event.text().isprintable() and event.text():
            self.leave.emit(event.text())
        else:
            super().keyPressEvent(event)
