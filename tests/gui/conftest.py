"""The operator app against a real agent: a site folder, `genba agent serve` on loopback, a bundle.

Qt runs offscreen (set in the root conftest before PySide6 loads). Japanese screenshots need a
CJK font: `.ci/run` installs Debian's `fonts-noto-cjk`; without it, Japanese text still loads
(the tests check the strings) but renders as boxes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from edge_agent.site import SiteFolder
from edge_agent.site_init import init_site


@pytest.fixture
def served_site(
    tmp_path: Path, keypair: tuple[Path, Path], agent_harness: Any, bundle_versions: dict[int, Path]
) -> Iterator[Any]:
    """A site serving bundle v1 through a real agent process; ``.site``, ``.process``, ``.client()``."""
    site = init_site(tmp_path / "site-a", site_name="site-a", trust=[keypair[1]])
    agent_harness.write_settings(site, {**agent_harness.TEST_SETTINGS, "drift": {"window_items": 20}})
    process = agent_harness.AgentProcess(site, tmp_path / "agent.log").start()
    with process.client() as client:
        client.install(bundle_versions[1])
    yield process
    if process.process is not None and process.process.poll() is None:
        process.process.kill()
        process.process.wait(timeout=30)


@pytest.fixture
def open_window(qtbot: Any) -> Callable[..., Any]:
    """``open_window(site, role=..., language=...)``: the main window, once its first status has landed."""
    from gui.app import MainWindow
    from gui.config import GuiConfig
    from gui.i18n import Translations

    def open_(
        site: SiteFolder, role: str | None = "supervisor", language: str = "en", wait: bool = True
    ) -> Any:
        translations = Translations()
        translations.switch(language)
        window = MainWindow(GuiConfig(data=site.root, role=role, refresh_s=60.0), translations)
        qtbot.addWidget(window)
        window.show()
        if wait:
            qtbot.waitUntil(lambda: bool(window.context.status), timeout=20_000)
            qtbot.waitUntil(lambda: not window.tasks.running, timeout=20_000)
        return window

    return open_


@pytest.fixture
def settle(qtbot: Any) -> Callable[..., None]:
    """``settle(window)``: wait until every call the window started has delivered its result."""

    def wait(window: Any, timeout: int = 20_000) -> None:
        qtbot.waitUntil(lambda: not window.tasks.running, timeout=timeout)

    return wait
