"""Save a screenshot of every tab of the operator app: docs/img/tab-<name>.png (and the Japanese Inspect).

With ``--data SITE`` it shows a site whose agent is serving. Without, it builds one under
``bench-out/screenshots`` from the default bundle and gives it a day's work through the real API:
site-a reports tagged by line and shift, operators labelling the queue from the reports' true
labels, a head trained at the site and shadowing production, then another site's reports (drift).

    .venv/bin/python scripts/screenshots.py [--data SITE] [--out docs/img]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
TABS = ("inspect", "queue", "model", "federation", "kpis")
SETTINGS = {
    "gates": {"min_items": 120, "min_labels": 12, "auto_advance": False},
    "drift": {"window_items": 100},
    "groups": {"min_labels": 5},
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, help="a site folder whose agent is serving")
    parser.add_argument("--out", type=Path, default=Path("docs/img"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with _site(args.data) as site:
        for path in _shoot(site, args.out):
            print(path)
    return 0


@contextlib.contextmanager
def _site(data: Path | None) -> Iterator[Any]:
    from edge_agent.site import SiteFolder
    from genba.demo.sites import served_site, signed_default_bundle

    if data is not None:
        yield SiteFolder(data).require_initialized()
        return
    bundle, trust = signed_default_bundle(Path("bench-out/default-bundle"))
    with served_site(Path("bench-out/screenshots/site-a"), bundle, trust, SETTINGS) as site:
        _a_day_of_work(site)
        yield site


def _a_day_of_work(site: Any) -> None:
    from edge_agent.service.client import AgentClient
    from export.datasets import shopfloor

    rng = random.Random(7)
    reports = shopfloor.site_split("site-a", seed=11, n_pool=600, n_eval=0).train
    truth = {report.text: report.true_label for report in reports}
    with AgentClient.for_site(site.root, "supervisor") as client:
        _serve(client, reports[:260])
        for item in client.queue(limit=60):  # operators label what the queue asks for
            label = truth.get(item.text or "", "no_defect")
            client.label(item.input_id, label, operator_seconds=round(rng.uniform(1.5, 6.0), 1))
        client.train("head")
        _wait(lambda: (job := client.training()) is not None and job.state != "running", 300)
        _serve(client, reports[260:460])
        other = shopfloor.site_split("site-b", seed=12, n_pool=240, n_eval=0).train
        _serve(client, other)


def _serve(client: Any, reports: Any) -> None:
    for start in range(0, len(reports), 20):
        chunk = reports[start : start + 20]
        for report in chunk:
            _, line, shift = report.group.split("/")
            client.predict(report.text, groups={"line": line, "shift": shift})


def _shoot(site: Any, out: Path) -> list[Path]:
    from PySide6.QtWidgets import QApplication

    from gui.app import STYLE, MainWindow
    from gui.config import GuiConfig
    from gui.i18n import Translations
    from gui.widgets.inspect_tab import InspectTab

    app = QApplication.instance() or QApplication([])
    assert isinstance(app, QApplication)
    app.setStyleSheet(STYLE)
    translations = Translations()
    translations.switch("en")
    window = MainWindow(GuiConfig(data=site.root, role="supervisor", refresh_s=3600), translations)
    window.resize(1400, 900)
    window.show()
    settle = _settler(app, window)
    settle()
    inspect = window.pages["inspect"]
    assert isinstance(inspect, InspectTab)
    inspect.input.setText("deep scratch on the housing near the left rim, line 2")
    inspect.predict()
    settle(lambda: inspect.view is not None)
    inspect.explain()
    settle(lambda: "<span" in inspect.explanation.text())
    saved = []
    for name in TABS:
        window.tabs.setCurrentWidget(window.pages[name])
        settle()
        saved.append(_grab(window, out / f"tab-{name}.png"))
    window.tabs.setCurrentWidget(inspect)
    window.language.setCurrentIndex(1)  # 日本語
    settle()
    saved.append(_grab(window, out / "tab-inspect-ja.png"))
    window.timer.stop()
    window.tasks.pool.waitForDone(30_000)
    window.close()
    return saved


def _settler(app: Any, window: Any) -> Callable[..., None]:
    def settle(until: Callable[[], bool] = lambda: True, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            app.processEvents()
            if until() and not window.tasks.running:
                break
            time.sleep(0.01)
        for _ in range(20):  # layouts and repaints after the last result
            app.processEvents()
            time.sleep(0.01)

    return settle


def _grab(window: Any, path: Path) -> Path:
    if not window.grab().save(str(path), "PNG"):
        raise SystemExit(f"could not write {path}")
    return path


def _wait(condition: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit("timed out waiting for the agent")
        time.sleep(0.5)


if __name__ == "__main__":
    raise SystemExit(main())
