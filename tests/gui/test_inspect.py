"""Inspect: predict, see who answered, accept or correct with one key, ask why."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt


def _predict(qtbot: Any, window: Any, settle: Callable[..., None], text: str) -> Any:
    tab = window.pages["inspect"]
    qtbot.keyClicks(tab.input, text)
    qtbot.keyClick(tab.input, Qt.Key.Key_Return)  # what a barcode scanner sends after the text
    qtbot.waitUntil(lambda: tab.view is not None, timeout=20_000)
    settle(window)
    return tab


def test_a_scanned_report_is_answered_and_corrected_with_one_key(
    qtbot: Any, served_site: Any, open_window: Callable[..., Any], settle: Callable[..., None]
) -> None:
    window = open_window(served_site.site, role="operator")
    tab = _predict(qtbot, window, settle, "dent near the flange")
    view = tab.view
    assert (
        tab.answer.text().startswith(view.label) and f"{view.confidence_pct} % confident" in tab.answer.text()
    )
    assert (
        "v1" in tab.details.text()
        and "stage production" in tab.details.text()
        and "CPU" in tab.details.text()
    )
    assert not tab.suggestion.isVisible()
    assert tab.decisions.hasFocus()  # the keyboard moved to the decision bar
    other = next(c for c in view.choices if not c.is_answer)
    qtbot.keyClick(tab.decisions, other.key)  # one key: a correction
    qtbot.waitUntil(lambda: "Saved" in tab.saved.text(), timeout=20_000)
    assert f"Saved: {other.label} (correction)" == tab.saved.text()
    assert tab.input.hasFocus()  # ready for the next scan
    with sqlite3.connect(served_site.site.store_file) as db:
        stored = db.execute(
            "SELECT label, is_correction, actor, operator_seconds FROM labels WHERE input_id = ?",
            (view.input_id,),
        ).fetchall()
    assert len(stored) == 1 and stored[0][:3] == (other.label, 1, "operator") and stored[0][3] >= 0


def test_enter_accepts_and_f1_explains_with_highlighted_words(
    qtbot: Any, served_site: Any, open_window: Callable[..., Any], settle: Callable[..., None]
) -> None:
    window = open_window(served_site.site, role="operator")
    tab = _predict(qtbot, window, settle, "scratch on the housing surface")
    input_id, label = tab.view.input_id, tab.view.label
    qtbot.keyClick(tab, Qt.Key.Key_F1)
    qtbot.waitUntil(lambda: "<span" in tab.explanation.text(), timeout=20_000)
    for word in ("scratch", "housing", "surface"):
        assert f">{word}</span>" in tab.explanation.text()
    tab.decisions.setFocus()
    qtbot.keyClick(tab.decisions, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: "Saved" in tab.saved.text(), timeout=20_000)
    assert tab.saved.text() == f"Saved: {label} (accepted)"
    with sqlite3.connect(served_site.site.store_file) as db:
        assert db.execute(
            "SELECT label, is_correction FROM labels WHERE input_id = ?", (input_id,)
        ).fetchall() == [(label, 0)]


def test_a_pilot_suggestion_is_marked_as_not_the_answer(
    qtbot: Any,
    served_site: Any,
    open_window: Callable[..., Any],
    settle: Callable[..., None],
    bundle_versions: dict[int, Path],
) -> None:
    with served_site.client() as client:
        client.install(bundle_versions[2])
        client.promote("pilot")
    window = open_window(served_site.site, role="operator")
    tab = _predict(qtbot, window, settle, "oil on the bracket")
    assert tab.view.stage == "production" and tab.view.suggestion is not None
    assert tab.suggestion.isVisible() or tab.suggestion.isVisibleTo(tab)
    assert tab.suggestion.text().startswith("Pilot suggestion (not the answer): ")
    assert "candidate v2 in pilot" in window.banner.text()


def test_the_integration_role_sees_answers_but_is_not_offered_labelling(
    qtbot: Any, served_site: Any, open_window: Callable[..., Any], settle: Callable[..., None]
) -> None:
    window = open_window(served_site.site, role="integration")
    tab = _predict(qtbot, window, settle, "left rim dent")
    assert not any(button.isEnabled() for button in tab.decisions.buttons.values())
    assert "may not label" in tab.saved.text()


def test_an_image_dropped_on_an_image_site_is_answered_and_explained_with_a_heat_map(
    qtbot: Any,
    vit_bundle: Path,
    keypair: tuple[Path, Path],
    tmp_path: Path,
    agent_harness: Any,
    open_window: Callable[..., Any],
    settle: Callable[..., None],
) -> None:
    from PIL import Image
    from PySide6.QtCore import QMimeData, QPointF, QUrl
    from PySide6.QtGui import QDropEvent

    from edge_agent.site_init import init_site

    bundle = vit_bundle
    site = init_site(tmp_path / "site-img", site_name="site-img", trust=[keypair[1]])
    agent_harness.write_settings(site, agent_harness.TEST_SETTINGS)
    process = agent_harness.AgentProcess(site, tmp_path / "agent.log").start()
    try:
        with process.client() as client:
            client.install(bundle)
        window = open_window(site, role="operator")
        tab = window.pages["inspect"]
        assert not tab.image_button.isHidden()  # an image site offers images
        picture = tmp_path / "part.png"
        Image.new("RGB", (64, 64), (200, 30, 30)).save(picture)
        mime = QMimeData()
        mime.setUrls([QUrl.fromLocalFile(str(picture))])
        drop = QDropEvent(QPointF(20, 20), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                          Qt.KeyboardModifier.NoModifier)  # fmt: skip
        tab.dropEvent(drop)
        qtbot.waitUntil(lambda: tab.view is not None, timeout=20_000)
        settle(window)
        assert tab.view.label in ("ok", "crack") and "v1" in tab.details.text()
        qtbot.keyClick(tab, Qt.Key.Key_F1)
        qtbot.waitUntil(lambda: not tab.explanation.pixmap().isNull(), timeout=20_000)
        assert tab.explanation.pixmap().width() > 100
    finally:
        process.stop()
