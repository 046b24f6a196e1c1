"""The agent down, back, or refusing the token: a message in the banner, never a crash or a freeze."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import Qt


def test_the_agent_going_down_and_coming_back_shows_in_the_banner(
    qtbot: Any, served_site: Any, open_window: Callable[..., Any], settle: Callable[..., None]
) -> None:
    window = open_window(served_site.site, role="operator")
    assert window.banner.property("state") == "up" and "site-a" in window.banner.text()
    served_site.stop()
    window.refresh()
    settle(window)
    assert window.banner.property("state") == "down"
    assert "genba agent serve" in window.banner.text()  # says what to do
    tab = window.pages["inspect"]
    qtbot.keyClicks(tab.input, "dent near the flange")
    qtbot.keyClick(tab.input, Qt.Key.Key_Return)
    settle(window)
    assert tab.view is None and tab.predict_button.isEnabled()  # nothing half-shown; ready to retry
    assert window.isVisible()

    served_site.start()  # a new process, on a new port: the app finds it through agent.addr
    window.refresh()
    settle(window)
    assert window.banner.property("state") == "up" and "production" in window.banner.text()


def test_a_token_the_agent_refuses_shows_a_message_not_a_crash(
    qtbot: Any, served_site: Any, open_window: Callable[..., Any], settle: Callable[..., None]
) -> None:
    served_site.site.token_file("operator").write_text("not-the-token\n", encoding="ascii")
    window = open_window(served_site.site, role="operator", wait=False)
    qtbot.waitUntil(lambda: window.problem is not None, timeout=20_000)
    settle(window)
    assert window.banner.property("state") == "down" and window.isVisible()
    assert "token" in window.banner.text().lower()
    for name in window.pages:  # every tab can be shown and asked to refresh without a crash
        window.tabs.setCurrentWidget(window.pages[name])
        settle(window)
    assert window.problem is not None


def test_genba_gui_refuses_in_one_line_without_a_display_or_a_site(
    tmp_path: Any, monkeypatch: Any, capsys: Any
) -> None:
    from genba.cli import main

    for name in ("QT_QPA_PLATFORM", "DISPLAY", "WAYLAND_DISPLAY"):
        monkeypatch.delenv(name, raising=False)
    assert main(["gui", "--data", str(tmp_path)]) == 2
    assert "no display to open the app on" in capsys.readouterr().err
    monkeypatch.setenv("QT_QPA_PLATFORM", "offscreen")
    assert main(["gui", "--data", str(tmp_path / "nowhere")]) == 2
    assert "is not a Genba site folder" in capsys.readouterr().err
