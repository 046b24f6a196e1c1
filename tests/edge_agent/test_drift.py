"""Drift monitoring on a real agent and a real bundle: one site's words, then another site's."""

from __future__ import annotations

import random
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edge_agent import drift
from edge_agent.agent import Agent
from edge_agent.answers import Item
from edge_agent.config import DriftConfig
from edge_agent.site import SiteFolder
from genba.errors import ConfigError

SHARED = ("on", "the", "a", "of", "at", "near", "left", "right", "line", "shift")
SITE_A = ("scratch", "dent", "housing", "surface", "bracket", "screw", "rim", "flange", "good", "ok")
SITE_B = ("oil", "dust", "gasket", "clip", "missing", "part", "bad", "no", "found")  # another site's words
WINDOW = 60


def _reports(words: tuple[str, ...], count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [
        " ".join(rng.choice(words + SHARED) for _ in range(rng.randint(4, 9))) for _ in range(count)
    ]  # fmt: skip


def _items(texts: list[str], groups: dict[str, str] | None = None) -> list[Item]:
    return [Item("text", t, t.encode(), groups or {}, "operator") for t in texts]


def _site(make_site: Callable[..., SiteFolder], drift_settings: dict[str, Any]) -> SiteFolder:
    """A CPU site whose gates never advance on their own, with these drift settings."""
    return make_site(
        settings={
            "runtime": {"provider": "cpu", "intra_op_threads": 1},
            "gates": {"auto_advance": False, "evaluate_every_s": 3600},
            "drift": drift_settings,
        }
    )


@pytest.fixture
def agent(make_site: Callable[..., SiteFolder], bundle_versions: dict[int, Path]) -> Iterator[Agent]:
    site = _site(make_site, {"window_items": WINDOW, "reference_windows": 1, "request_labels": 6})
    with Agent.open(site) as opened:
        opened.install(bundle_versions[1], actor="supervisor")
        yield opened


def test_another_sites_words_raise_drift_in_the_first_shifted_window_and_ask_for_its_labels(
    agent: Agent,
) -> None:
    agent.predict(_items(_reports(SITE_A, WINDOW - 1, seed=1)))
    agent.check_drift()
    assert (
        agent.drift_status()["status"] is None
        and agent.drift_status()["items_in_current_window"] == WINDOW - 1
    )
    agent.predict(_items(_reports(SITE_A, 1, seed=5)))  # the first window is full: it becomes the reference
    agent.check_drift()
    assert agent.drift_status()["status"] is not None
    agent.predict(_items(_reports(SITE_A, WINDOW, seed=2)))  # the same site's words: no drift
    shifted = agent.predict(_items(_reports(SITE_B, WINDOW, seed=3)))
    agent.check_drift()

    checks = list(reversed(agent.store.drift_checks()))
    assert [c["reference"] for c in checks] == ["manifest", "production", "production"]
    assert checks[0]["status"] != "drift"  # the export's statistics can warn, never raise drift
    assert checks[1]["status"] == "ok" and checks[2]["status"] == "drift"
    assert checks[2]["p_value"] <= 0.01 and checks[2]["items"] == WINDOW and checks[2]["tests"] > 1
    assert checks[2]["first_prediction"] == shifted[0].prediction_id
    assert checks[2]["last_prediction"] == shifted[-1].prediction_id
    reference = agent.store.drift_reference(agent.active.production.model_id)
    assert reference is not None and reference["items"] == WINDOW
    assert reference["last_prediction"] == checks[0]["last_prediction"]

    status = agent.drift_status()
    assert status["status"] == "drift" and status["labels_requested"] == 6
    audit = [e for e in agent.store.audit(limit=50) if e.fields["event"].startswith("drift_")]
    assert [e.fields["event"] for e in audit][:1] == ["drift_drift"]
    assert audit[0].fields["details"]["labels_requested"] == 6

    # The queue asks first for the drifted window's reports, until six of them carry a label.
    drifted = {answer.input_id for answer in shifted}
    queue = agent.queue(limit=10)
    assert {q.input_id for q in queue[:6]} <= drifted
    for item in queue[:6]:
        agent.label(item.input_id, "ok", actor="operator")
    assert agent.drift_status()["labels_requested"] == 0
    assert agent.drift.focus(agent.store, agent.active.production.model_id) is None


def test_the_false_alarm_rate_per_window_stays_near_alpha_and_a_shift_is_caught_within_two_windows(
    agent: Agent,
) -> None:
    """The monitor's own features and test, on the served model, over many random windows."""
    model = agent.active.production.model
    config = DriftConfig(window_items=WINDOW)

    def features(texts: list[str]) -> np.ndarray:
        probabilities, embedding, _ = model.predict_arrays(texts)
        matrix = drift.features(probabilities, embedding, config.projections)
        assert matrix is not None
        return matrix

    same = features(_reports(SITE_A, 1200, seed=10))
    other = features(_reports(SITE_B, 400, seed=11))
    names = drift.feature_names(model.labels, config.projections)
    rng = np.random.default_rng(0)
    trials, alarms, caught = 300, 0, 0
    for _ in range(trials):
        order = rng.permutation(len(same))
        reference, window = same[order[:WINDOW]], same[order[WINDOW : 2 * WINDOW]]
        test = {"alpha": config.alpha, "warning_alpha": config.warning_alpha}
        alarms += drift.compare_windows(reference, window, names, **test).status == "drift"
        shifted = [other[rng.permutation(len(other))[:WINDOW]] for _ in range(2)]
        caught += any(drift.compare_windows(reference, w, names, **test).status == "drift" for w in shifted)
    # alpha = 0.01: about 3 alarms expected in 300 windows; 12 or more would be a 1-in-10^4 accident.
    assert alarms / trials < 0.04, alarms
    assert caught / trials >= 0.95, caught


def test_drift_can_start_local_training_once_the_requested_labels_are_in(
    make_site: Callable[..., SiteFolder], bundle_versions: dict[int, Path]
) -> None:
    site = _site(
        make_site,
        {
            "window_items": WINDOW,
            "reference_windows": 1,
            "request_labels": 4,
            "train_on_drift": True,
        },
    )
    with Agent.open(site) as agent:
        agent.install(bundle_versions[1], actor="supervisor")
        for seed, words in ((1, SITE_A), (2, SITE_A), (3, SITE_B)):
            agent.predict(_items(_reports(words, WINDOW, seed=seed)))
        agent.check_drift()
        agent.train_on_drift()
        assert agent.training.current is None  # the requested labels are not in yet
        for item, label in zip(agent.queue(limit=4), ("ok", "dent", "ok", "dent"), strict=True):
            agent.label(item.input_id, label, actor="operator")
        agent.train_on_drift()
        job = agent.training.current
        assert job is not None and job.actor == "drift" and job.mode == "head"
        agent.train_on_drift()
        assert agent.training.current is job  # once per drift, not on every check
        started = [e for e in agent.store.audit(limit=50) if e.fields["event"] == "train_started"]
        assert [e.fields["actor"] for e in started] == ["drift"]


def test_features_are_scores_and_fixed_projections_and_no_text_is_stored(agent: Agent) -> None:
    texts = _reports(SITE_A, 5, seed=4)
    answers = agent.predict(_items(texts))
    ids, matrix = agent.store.drift_features(agent.active.production.model_id, 0, 10)
    assert ids == [a.prediction_id for a in answers] and matrix is not None
    labels = agent.active.production.model.labels
    assert matrix.shape == (5, 1 + len(labels) + DriftConfig().projections)
    np.testing.assert_allclose(matrix[:, 1 : 1 + len(labels)].sum(axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(matrix[:, 0], matrix[:, 1 : 1 + len(labels)].max(axis=1))
    directions = drift.projection_matrix(32, 4)
    np.testing.assert_array_equal(directions, drift.projection_matrix(32, 4))  # the same everywhere
    np.testing.assert_allclose(np.linalg.norm(directions, axis=0), 1.0, rtol=1e-6)
    with sqlite3.connect(agent.site.store_file) as db:
        blobs = [bytes(row[0]) for row in db.execute("SELECT vector FROM drift_features")]
    assert all(len(blob) == 4 * matrix.shape[1] for blob in blobs)
    assert not any(text.encode() in blob for text in texts for blob in blobs)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"window_items": 5}, "drift.window_items must be >= 20"),
        ({"alpha": 0.2, "warning_alpha": 0.1}, "0 < alpha <= warning_alpha < 1"),
        ({"train_mode": "full"}, "drift.train_mode must be one of head, last-k, contrastive, auto"),
    ],
)
def test_bad_drift_settings_are_refused_with_what_to_change(
    settings: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        DriftConfig(**settings)  # type: ignore[arg-type]


SITE_C = ("crack", "burr", "weld", "paint", "chip", "seal", "bolt", "nut", "pin", "bent")  # a new supplier


def _line(words: tuple[str, ...], line: str, seed: int) -> list[Item]:
    return _items(_reports(words, WINDOW, seed=seed), {"line": line})


def _window(agent: Agent, items: list[Item]) -> dict[str, Any]:
    agent.predict(items)
    (check,) = agent.check_drift()
    return check


def _events(agent: Agent, event: str) -> list[dict[str, Any]]:
    return [e.fields for e in agent.store.audit(limit=200) if e.fields["event"] == event]


def test_blocks_by_line_are_compared_like_with_like_and_a_lasting_shift_is_one_alarm_until_it_clears(
    make_site: Callable[..., SiteFolder], bundle_versions: dict[int, Path]
) -> None:
    """The reference spans two lines' blocks; a window of one line is judged against that line's answers.
    A shift within a line raises one alarm per episode (hysteresis), another once it has cleared."""
    site = _site(
        make_site, {"window_items": WINDOW, "reference_windows": 2, "strata": ["line"], "clear_windows": 2}
    )
    with Agent.open(site) as agent:
        agent.install(bundle_versions[1], actor="supervisor")
        model_id = agent.active.production.model_id
        building = [_window(agent, _line(SITE_A, "line-1", 1)), _window(agent, _line(SITE_B, "line-2", 2))]
        assert [c["reference"] for c in building] == ["manifest", "manifest"]
        status = agent.drift_status()
        assert status["reference_complete"] and status["reference"]["items"] == 120

        line_2 = _line(SITE_B, "line-2", 3)  # the line-2 block again: normal traffic, in a block
        stratified = _window(agent, line_2)
        assert stratified["status"] != "drift" and not stratified["alarm"]
        # The same window judged as if answers were independent draws from the whole reference: flagged.
        reference = agent.store.drift_reference(model_id)
        assert reference is not None
        first, items = reference["first_prediction"] - 1, reference["items"]
        _, matrix = agent.store.drift_features(model_id, first, items)
        _, window = agent.store.drift_features(model_id, stratified["first_prediction"] - 1, WINDOW)
        assert matrix is not None and window is not None
        names = drift.feature_names(list(agent.active.production.model.labels), DriftConfig().projections)
        pooled = drift.compare_windows(matrix, window, names, alpha=0.01, warning_alpha=0.05)
        assert pooled.status != "ok" and pooled.p_value < 0.05 < 0.5 < stratified["p_value"], pooled

        statuses = [_window(agent, _line(words, "line-1", seed)) for words, seed in
                    ((SITE_C, 4), (SITE_C, 5), (SITE_A, 6), (SITE_A, 7), (SITE_C, 8))]  # fmt: skip
        assert [(c["status"] == "drift", c["alarm"]) for c in statuses] == [
            (True, True), (True, False), (False, False), (False, False), (True, True),
        ]  # fmt: skip
        alarms = _events(agent, "drift_drift")
        assert [a["details"]["last_prediction"] for a in alarms] == [
            statuses[4]["last_prediction"], statuses[0]["last_prediction"],
        ]  # fmt: skip
        status = agent.drift_status()
        assert status["episode_open"] and status["alarm"]["last_prediction"] == statuses[4]["last_prediction"]


def test_a_supervisor_accepts_a_shift_and_the_next_windows_become_the_reference(
    make_site: Callable[..., SiteFolder], bundle_versions: dict[int, Path]
) -> None:
    site = _site(make_site, {"window_items": WINDOW, "reference_windows": 1, "request_labels": 3})
    with Agent.open(site) as agent:
        agent.install(bundle_versions[1], actor="supervisor")
        _window(agent, _line(SITE_A, "line-1", 1))
        assert _window(agent, _line(SITE_C, "line-1", 2))["alarm"]
        assert agent.drift.focus(agent.store, agent.active.production.model_id) is not None

        status = agent.rebaseline_drift(actor="supervisor", reason="the new supplier's parts are normal now")
        assert not status["episode_open"] and status["reference"] is None and status["labels_requested"] == 0
        (entry,) = _events(agent, "drift_rebaseline")
        assert entry["actor"] == "supervisor" and entry["details"]["had_reference"] is True
        assert entry["details"]["reason"] == "the new supplier's parts are normal now"

        rebuilt = _window(agent, _line(SITE_C, "line-1", 3))
        assert rebuilt["reference"] == "manifest" and rebuilt["status"] != "drift"
        assert agent.drift_status()["reference"]["first_prediction"] == rebuilt["first_prediction"]
        after = _window(agent, _line(SITE_C, "line-1", 4))  # the new normal: no alarm
        assert after["reference"] == "production" and after["status"] != "drift"
        assert _window(agent, _line(SITE_A, "line-1", 5))["alarm"]  # the old words are now the change


def test_a_stratum_the_reference_barely_saw_is_matched_on_its_coarser_stratum_then_on_everything() -> None:
    reference = np.arange(100, dtype=float)[:, None]
    strata = ["line-1/day"] * 40 + ["line-1/night"] * 5 + ["line-2/day"] * 55
    rows = drift.matched_reference(reference, strata, ["line-1/night"] * 10)
    assert set(rows[:, 0].tolist()) <= set(range(45))  # line 1's rows, day and night: never line 2
    rows = drift.matched_reference(reference, strata, ["line-2/day"] * 10)
    assert set(rows[:, 0].tolist()) <= set(range(45, 100))  # enough of its own
    rows = drift.matched_reference(reference, strata, ["line-3/day"] * 10)
    assert len(rows) == 100  # a line never seen: the whole reference
    mixed = drift.matched_reference(reference, strata, ["line-1/day"] * 5 + ["line-2/day"] * 5)
    assert sum(r < 40 for r in mixed[:, 0]) == sum(r >= 45 for r in mixed[:, 0])  # the window's proportions
