"""Review queue: the least certain items one by one, labelled with Enter or 1–9, skipped with S."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import Qt

from edge_agent.service.client import QueueEntry
from gui.viewmodels.queue import ReviewSession, labels_for

REPORTS = [
    "dent near the flange",
    "scratch on the housing surface",
    "oil on the bracket",
    "left rim dent",
    "crack along the weld seam",
]


def _entry(input_id: int, label: str | None, score: float | None = 0.6) -> QueueEntry:
    return QueueEntry(
        input_id=input_id,
        kind="text",
        text=f"item {input_id}",
        label=label,
        score=score,
        margin=0.1,
        created_at=0.0,
    )


def test_a_session_walks_the_queue_counting_labels_corrections_and_skips() -> None:
    session = ReviewSession(
        [_entry(1, "dent"), _entry(2, "scratch", 0.554), _entry(3, None, None)], ["dent", "scratch"]
    )
    first = session.current
    assert first is not None and first.label == "dent" and first.confidence_pct == 60
    assert [(c.key, c.label, c.is_answer) for c in first.choices] == [
        ("1", "dent", True),
        ("2", "scratch", False),
    ]
    assert first.choice_for_key("2") is not None and first.choice_for_key("3") is None
    session.record("dent")
    assert session.current is not None and session.current.confidence_pct == 55
    session.record("dent")  # a correction
    assert (
        session.current is not None and session.current.label == "" and session.current.confidence_pct is None
    )
    session.skip()
    assert session.done and session.current is None
    assert (session.total, session.labelled, session.corrected, session.skipped) == (3, 2, 1, 1)
    session.skip()
    session.record("dent")  # nothing left: neither counts
    assert (session.labelled, session.skipped) == (2, 1)


def test_without_production_labels_the_choices_come_from_the_queued_answers() -> None:
    entries = [_entry(1, "scratch"), _entry(2, "dent"), _entry(3, None), _entry(4, "dent")]
    assert labels_for([], entries) == ["dent", "scratch"]
    assert labels_for(["a", "b"], entries) == ["a", "b"]
    assert [c.label for c in ReviewSession(entries, []).items[0].choices] == ["dent", "scratch"]


def _stored_labels(served_site: Any) -> dict[int, tuple[str, int, float | None]]:
    with sqlite3.connect(served_site.site.store_file) as db:
        rows = db.execute("SELECT input_id, label, is_correction, operator_seconds FROM labels").fetchall()
    return {input_id: (label, correction, seconds) for input_id, label, correction, seconds in rows}


def test_the_queue_is_labelled_with_one_key_per_item_and_skips_stay_unlabelled(
    qtbot: Any, served_site: Any, open_window: Callable[..., Any], settle: Callable[..., None]
) -> None:
    with served_site.client() as client:
        client.predict_batch(REPORTS)
    window = open_window(served_site.site, role="operator")
    tab = window.pages["queue"]
    window.tabs.setCurrentWidget(tab)
    qtbot.waitUntil(lambda: tab.session is not None, timeout=20_000)
    settle(window)
    assert tab.session.total == len(REPORTS) and tab.progress.text() == "0 of 5 labelled"
    assert tab.text.text() in REPORTS and tab.answer.text().startswith(f"Model: {tab.session.current.label}")
    decided: dict[int, tuple[str, int]] = {}

    def press(key: Any, label: str, labelled: int) -> None:
        item = tab.session.current
        qtbot.keyClick(tab.decisions, key)
        qtbot.waitUntil(lambda: tab.progress.text().startswith(f"{labelled} of 5 labelled"), timeout=20_000)
        decided[item.input_id] = (label, int(label != item.label))

    press(Qt.Key.Key_Return, tab.session.current.label, 1)
    assert tab.message.text() == f"Saved: {decided[tab.session.items[0].input_id][0]} (accepted)"
    other = next(c for c in tab.session.current.choices if not c.is_answer)
    press(other.key, other.label, 2)
    assert tab.message.text() == f"Saved: {other.label} (correction)"
    skipped = tab.session.current
    qtbot.keyClick(tab.decisions, "s")
    assert tab.progress.text() == "2 of 5 labelled · 1 skipped" and tab.session.current is not skipped
    press(Qt.Key.Key_Return, tab.session.current.label, 3)
    press(Qt.Key.Key_Return, tab.session.current.label, 4)
    assert tab.session.done and tab.text.text() == "Queue done: 4 labelled, 1 skipped. Press R to load more."
    assert tab.reload_button.isVisibleTo(tab) and not tab.decisions.buttons
    stored = _stored_labels(served_site)
    assert {input_id: row[:2] for input_id, row in stored.items()} == decided
    assert skipped.input_id not in stored and all(
        row[2] is not None and row[2] >= 0 for row in stored.values()
    )

    qtbot.keyClick(tab.decisions, "r")  # the queue again: only the skipped item is left
    qtbot.waitUntil(lambda: tab.session.total == 1 and not tab.loading, timeout=20_000)
    assert tab.session.current.input_id == skipped.input_id and tab.progress.text() == "0 of 1 labelled"


def test_the_integration_role_is_not_offered_the_queue(
    qtbot: Any, served_site: Any, open_window: Callable[..., Any], settle: Callable[..., None]
) -> None:
    window = open_window(served_site.site, role="integration")
    tab = window.pages["queue"]
    window.tabs.setCurrentWidget(tab)
    settle(window)
    assert tab.session is None and "may not label" in tab.text.text() and not tab.decisions.buttons


def test_an_audit_sample_item_comes_first_and_asks_for_what_the_operator_sees(
    qtbot: Any, served_site: Any, open_window: Callable[..., Any], settle: Callable[..., None]
) -> None:
    with served_site.client() as client:
        answers = client.predict_batch(REPORTS)
    drawn = answers[3].input_id
    with sqlite3.connect(served_site.site.store_file) as db:  # as if the agent had drawn it
        db.execute("INSERT INTO audit_sample (input_id, drawn_at) VALUES (?, 0)", (drawn,))
    window = open_window(served_site.site, role="operator")
    tab = window.pages["queue"]
    window.tabs.setCurrentWidget(tab)
    qtbot.waitUntil(lambda: tab.session is not None, timeout=20_000)
    settle(window)
    first = tab.session.current
    assert first.input_id == drawn and first.audit and tab.text.text() == REPORTS[3]
    assert tab.answer.text().endswith("Random check: label what you see, whatever the model says")
    assert not any(item.audit for item in tab.session.items[1:])


def test_an_image_site_shows_each_queued_image_and_labels_it_with_one_key(
    qtbot: Any,
    vit_bundle: Any,
    keypair: Any,
    tmp_path: Any,
    agent_harness: Any,
    open_window: Callable[..., Any],
    settle: Callable[..., None],
) -> None:
    from PIL import Image

    from edge_agent.site_init import init_site

    bundle = vit_bundle
    site = init_site(tmp_path / "site-img", site_name="site-img", trust=[keypair[1]])
    agent_harness.write_settings(site, agent_harness.TEST_SETTINGS)
    process = agent_harness.AgentProcess(site, tmp_path / "agent.log").start()
    try:
        sizes = [(640, 480), (50, 90)]  # one larger than the screen's share, one small
        with process.client() as client:
            client.install(bundle)
            for index, size in enumerate(sizes):
                picture = tmp_path / f"part-{index}.png"
                Image.new("RGB", size, (40 * index, 200, 30)).save(picture)
                client.predict(image=picture.read_bytes())
        window = open_window(site, role="operator")
        tab = window.pages["queue"]
        window.tabs.setCurrentWidget(tab)
        qtbot.waitUntil(lambda: tab.session is not None and tab.session.total == 2, timeout=20_000)
        shown = []
        for done in range(1, len(sizes) + 1):
            qtbot.waitUntil(lambda: tab.image.isVisible() and not tab.image.pixmap().isNull(), timeout=20_000)
            pixmap = tab.image.pixmap()
            shown.append((pixmap.width(), pixmap.height()))
            assert tab.text.text() == ""  # no "not shown" placeholder: the operator sees the part
            qtbot.keyClick(tab.decisions, Qt.Key.Key_Return)  # accept the model's answer
            qtbot.waitUntil(lambda: tab.session.labelled == done, timeout=20_000)  # noqa: B023
        assert sorted(shown) == sorted([(480, 360), (50, 90)])  # scaled to fit, never enlarged
        assert tab.session.labelled == 2
        with sqlite3.connect(site.store_file) as db:
            assert db.execute("SELECT count(*) FROM labels WHERE actor = 'operator'").fetchone() == (2,)
    finally:
        process.stop()
