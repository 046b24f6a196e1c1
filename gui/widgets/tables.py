"""Read-only tables for the tabs: rows the operator reads, never edits."""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QTableWidget, QTableWidgetItem


def new_table(rows: int, columns: int, *, row_names: bool = False) -> QTableWidget:
    """``row_names``: show the vertical header (a card's field names), not row numbers."""
    table = QTableWidget(rows, columns)
    table.verticalHeader().setVisible(row_names)
    table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
    table.horizontalHeader().setStretchLastSection(True)
    return table


def fill(table: QTableWidget, row: int, column: int, text: str) -> None:
    """Set one cell's text, reusing its item."""
    item = table.item(row, column)
    if item is None:
        table.setItem(row, column, QTableWidgetItem(text))
    else:
        item.setText(text)


def fill_rows(table: QTableWidget, rows: Sequence[Sequence[str]]) -> None:
    """Replace the table's rows with ``rows`` (one text per column)."""
    table.setRowCount(len(rows))
    for row, texts in enumerate(rows):
        for column, text in enumerate(texts):
            fill(table, row, column, text)
