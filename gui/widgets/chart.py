"""A line chart over days, drawn with QPainter: named series, gaps where a figure is missing.

Deliberately plain (large text, thick lines, a dot on every point so a lone day still shows):
it is read from a step away on a shop-floor screen, not studied.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QFont, QPainter, QPainterPath, QPaintEvent, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget

#: Colour-blind safe (Okabe–Ito), in the order the series come.
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00")
_GRID = QColor("#d0d0d0")
_TEXT = QColor("#202020")


def nice_ceiling(value: float) -> float:
    """The smallest of 1, 2, 2.5, 5 × 10ⁿ at or above ``value`` (1 for nothing to show)."""
    if not value > 0 or not math.isfinite(value):
        return 1.0
    scale = 10.0 ** math.floor(math.log10(value))
    return next(step * scale for step in (1.0, 2.0, 2.5, 5.0, 10.0) if step * scale >= value * (1 - 1e-9))


def y_ticks(top: float) -> list[float]:
    """Grid values from 0 to ``top`` in round steps: 0, 20 … 100; 0, 0.5 … 2; 0, 5 … 25."""
    mantissa = top / 10.0 ** math.floor(math.log10(top)) if top > 0 else 1.0
    steps = 4 if math.isclose(mantissa, 2.0) else 5
    return [top * step / steps for step in range(steps + 1)]


class LineChart(QWidget):
    def __init__(self) -> None:
        super().__init__()
        self.title = ""
        self.unit = ""
        self.empty_note = ""
        self.days: tuple[str, ...] = ()
        self.series: list[tuple[str, tuple[float | None, ...]]] = []
        self.y_max: float | None = None
        self.setMinimumHeight(300)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)

    def set_data(
        self,
        title: str,
        days: Sequence[str],
        series: Sequence[tuple[str, Sequence[float | None]]],
        *,
        unit: str = "",
        y_max: float | None = None,
        empty_note: str = "",
    ) -> None:
        """``series``: (name, one value per day); ``y_max``: a fixed top, else one above the data."""
        self.title, self.unit, self.empty_note, self.y_max = title, unit, empty_note, y_max
        self.days = tuple(days)
        self.series = [(name, tuple(values)) for name, values in series]
        self.update()

    def top(self) -> float:
        if self.y_max is not None:
            return self.y_max
        values = [v for _, values in self.series for v in values if v is not None]
        return nice_ceiling(max(values, default=0.0) * 1.05)

    # ---------------------------------------------------------------- drawing

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.fillRect(self.rect(), QColor("white"))
        line = painter.fontMetrics().height()
        self._draw_header(painter, line)
        small = QFont(self.font())
        small.setPointSizeF(max(self.font().pointSizeF() * 0.85, 11.0))
        painter.setFont(small)
        left = painter.fontMetrics().horizontalAdvance("00000") + 12
        plot = QRectF(left, 2.4 * line + 8, self.width() - left - 16, self.height() - 3.6 * line - 16)
        if plot.width() > 10 and plot.height() > 10:
            self._draw_axes(painter, plot)
            for index, (_, values) in enumerate(self.series):
                self._draw_series(painter, plot, values, _colour(index))
            if not any(v is not None for _, values in self.series for v in values):
                painter.setPen(QColor("grey"))
                painter.drawText(
                    plot, Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap, self.empty_note
                )
        painter.end()

    def _draw_header(self, painter: QPainter, line: int) -> None:
        bold = QFont(self.font())
        bold.setBold(True)
        painter.setFont(bold)
        painter.setPen(_TEXT)
        title = f"{self.title} ({self.unit})" if self.unit else self.title
        painter.drawText(QRectF(8, 4, self.width() - 16, line), Qt.AlignmentFlag.AlignLeft, title)
        painter.setFont(self.font())
        x = 8.0
        for index, (name, _) in enumerate(self.series):
            painter.fillRect(QRectF(x, 8 + line + line * 0.25, line * 0.6, line * 0.6), _colour(index))
            x += line * 0.8
            painter.drawText(QRectF(x, 8 + line, self.width(), line), Qt.AlignmentFlag.AlignLeft, name)
            x += painter.fontMetrics().horizontalAdvance(name) + line

    def _draw_axes(self, painter: QPainter, plot: QRectF) -> None:
        metrics = painter.fontMetrics()
        top = self.top()
        for value in y_ticks(top):
            y = plot.bottom() - plot.height() * value / top
            painter.setPen(QPen(_GRID, 1))
            painter.drawLine(QPointF(plot.left(), y), QPointF(plot.right(), y))
            painter.setPen(_TEXT)
            box = QRectF(0, y - metrics.height() / 2, plot.left() - 6, metrics.height())
            painter.drawText(box, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter, f"{value:g}")
        if not self.days:
            return
        label_width = metrics.horizontalAdvance("00-00") + 14
        every = max(1, math.ceil(len(self.days) / max(1, int(plot.width() // label_width))))
        for index in range(0, len(self.days), every):
            x = self._x(plot, index)
            box = QRectF(x - label_width / 2, plot.bottom() + 4, label_width, metrics.height())
            painter.drawText(box, Qt.AlignmentFlag.AlignHCenter, self.days[index][5:])  # MM-DD

    def _draw_series(
        self, painter: QPainter, plot: QRectF, values: Sequence[float | None], colour: QColor
    ) -> None:
        top = self.top()
        path = QPainterPath()
        points: list[QPointF] = []
        pen_down = False
        for index, value in enumerate(values):
            if value is None:
                pen_down = False  # a gap: the next point starts a new stretch
                continue
            point = QPointF(self._x(plot, index), plot.bottom() - plot.height() * min(value / top, 1.0))
            if pen_down:
                path.lineTo(point)
            else:
                path.moveTo(point)
            pen_down = True
            points.append(point)
        painter.setPen(QPen(colour, 3))
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.drawPath(path)
        painter.setBrush(colour)
        for point in points:
            painter.drawEllipse(point, 4.5, 4.5)

    def _x(self, plot: QRectF, index: int) -> float:
        return plot.left() + plot.width() * (index + 0.5) / max(len(self.days), 1)


def _colour(index: int) -> QColor:
    return QColor(PALETTE[index % len(PALETTE)])
