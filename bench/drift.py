"""Benchmark: drift monitoring on block-correlated shop-floor streams, the agent's drift settings
before and after reference spans, strata and hysteresis side by side, on the packaged
all-MiniLM-L6-v2 bundle.

Shop-floor traffic arrives in blocks by production line and shift, and lines and shifts differ in
content (``bench/drift_streams.py``: each line makes its own parts and has its own defect mix, each
shift has its own defect mix; a block is ``--block-items`` reports of one line in one shift, a shift
runs ``--shift-blocks`` blocks cycling the three lines, shifts cycle day, swing, night). The drift
features of 4,800 site-a and 2,400 site-b reports are computed once with the real model
(``predict_arrays``, ``edge_agent.drift.features``); the monitor is then replayed offline on many
streams (``drift_streams.replay``: the first ``reference_windows`` windows are the reference, each
later contiguous window goes to ``edge_agent.drift.compare_windows``, stratified on ``strata``)
for two settings:

* ``before``: what the agent did until now: a one-window reference, no strata, and every window
  found to drift is an alarm (shown as ``clear_windows`` 0);
* ``after``: ``DriftConfig()``'s defaults (``reference_windows``, ``strata``, ``clear_windows``:
  after an alarm, another only once that many windows in a row were not drift). A field
  DriftConfig does not have yet reads as ``before``'s value, and then both settings agree.

Figures, per setting:

* ``false_alarm_rate_blocks``: alarms per checked window on ``--block-streams`` unshifted streams
  of site-a, ``--windows`` windows each after the reference; ``drift_window_share_blocks``: the
  share of those windows whose status is ``drift`` (alarm or not); ``warning_window_share_blocks``:
  ``warning`` or worse.
* ``detected_within_two_windows``: on ``--streams`` shifted streams (site-a, then site-b's reports,
  another vocabulary and defect mix, from a block boundary 0.5 to 2 windows after the longer of the
  two references, the same streams for both settings), the share whose first alarm after the shift
  comes with a window ending at most two windows of items after it; ``not_detected``: no alarm in
  the ``--detect-windows`` windows replayed after the shift; ``detection_delay_windows_median``:
  items from the shift to the end of the alarm's window, in windows (null when most were not
  detected). ``drift_status_within_two_windows`` is the same for the first window whose status is
  drift, alarm or not: an episode opened by a false alarm shortly before the shift
  (``episode_open_at_shift``) holds the shift's alarm back.

Besides: ``false_alarm_rate_iid`` (``warning_rate_iid``): share of windows flagged ``drift``
(``warning`` or worse) when reference (``after``'s size) and window are disjoint random draws of
site-a's reports (``--trials``), the iid case ``alpha`` is calibrated for. ``agent_*``: one shifted
block stream served through a real agent (site store, serving path, drift monitor with its default
settings, every item tagged with its line and shift), shifting 1.5 windows after its reference:
alarms raised before the shift, items served after it until the window that raised the alarm ends
(``agent_detection_delay_items``) or the first drift window ends, and the share of its windows whose
status the offline replay of the same stream matches. ``explain_ms_p50``: wall time of
``Agent.explain`` on distinct stored reports (no cache hits), leave-one-word-out occlusion on the
serving sessions, 2 CPU cores; ``explain_ms_p50_120_words``: the same on reports joined up to 120
words (the longest explained is 128). ``wall_s`` leaves out exporting the bundle on first use.

    .venv/bin/python bench/drift.py [--streams 300] [--block-streams 80] [--windows 10]
        [--block-items 80] [--shift-blocks 6] [--line-contrast 1] [--shift-contrast 1]
        [--trials 400] [--agent-seed 0] [--out bench-out/drift]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import drift_streams as streams
import numpy as np

DOCS = Path(__file__).resolve().parent.parent / "docs" / "bench"
POOL_A, POOL_B = 4800, 2400


def main() -> int:
    args = _arguments()
    from genba.demo.sites import signed_default_bundle

    settings = _settings()
    bundle, trust = signed_default_bundle(args.out.parent / "default-bundle")
    shutil.rmtree(args.out / "sites", ignore_errors=True)
    started = time.perf_counter()
    pools = [streams.site_pool("site-a", POOL_A), streams.site_pool("site-b", POOL_B)]
    agent_figures, features, names = _agent_check(args, bundle, trust, pools)
    after = settings["after"]
    longest = max(s.reference_windows for s in settings.values())
    figures: dict[str, Any] = {
        "window_items": after.window_items,
        "alpha": after.alpha,
        "block_items": args.block_items,
        "shift_blocks": args.shift_blocks,
        "line_contrast": args.line_contrast,
        "shift_contrast": args.shift_contrast,
        **{name: {**_setting_json(s), **_false_alarms_on_blocks(args, s, pools, features, names),
                  **_detection_on_blocks(args, s, longest, pools, features, names)}
           for name, s in settings.items()},
        **_iid_false_alarms(features[0], names, after, args.trials),
        **agent_figures,
        "block_streams": args.block_streams,
        "windows_per_block_stream": args.windows,
        "streams": args.streams,
        "detect_windows": args.detect_windows,
        "iid_trials": args.trials,
        "agent_seed": args.agent_seed,
        "pool_reports": {"site-a": POOL_A, "site-b": POOL_B},
        "wall_s": round(time.perf_counter() - started, 1),
    }  # fmt: skip
    text = json.dumps(figures, indent=2)
    print(text)
    (args.out / "drift.json").write_text(text + "\n", encoding="utf-8")
    DOCS.mkdir(parents=True, exist_ok=True)
    (DOCS / "drift.json").write_text(text + "\n", encoding="utf-8")
    return 0


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--streams", type=int, default=300, help="shifted block streams replayed")
    parser.add_argument("--block-streams", type=int, default=80, help="unshifted block streams replayed")
    parser.add_argument("--windows", type=int, default=10, help="windows checked per unshifted stream")
    parser.add_argument("--detect-windows", type=int, default=4, help="windows replayed after a shift")
    parser.add_argument("--block-items", type=int, default=80, help="items per (line, shift) block")
    parser.add_argument("--shift-blocks", type=int, default=6, help="blocks per shift (lines cycle)")
    parser.add_argument("--line-contrast", type=float, default=1.0, help="line defect-mix strength (0: none)")
    parser.add_argument(
        "--shift-contrast", type=float, default=1.0, help="shift defect-mix strength (0: none)"
    )
    parser.add_argument("--trials", type=int, default=400, help="iid reference/window pairs")
    parser.add_argument("--agent-seed", type=int, default=0, help="the stream served through the agent")
    parser.add_argument("--explanations", type=int, default=40)
    parser.add_argument("--out", type=Path, default=Path("bench-out/drift"))
    return parser.parse_args()


#: What the agent did until now: the first window is the reference, no strata, no hysteresis.
_BEFORE: dict[str, Any] = {"reference_windows": 1, "strata": (), "clear_windows": 1}


def _settings() -> dict[str, streams.Setting]:
    """``before``: DriftConfig() with ``_BEFORE``'s fields, every drift window an alarm; ``after``:
    DriftConfig()'s defaults. A field DriftConfig does not have yet reads as ``before``'s value, so
    then both settings agree."""
    from edge_agent.config import DriftConfig

    fields = {f.name for f in dataclasses.fields(DriftConfig)}
    before = dataclasses.replace(DriftConfig(), **{k: v for k, v in _BEFORE.items() if k in fields})
    # Before hysteresis the agent alarmed on every drift window: the replay's clear_windows 0
    # (DriftConfig takes 1 at least).
    return {"before": _setting(before, clear_windows=0), "after": _setting(DriftConfig())}


def _setting(config: Any, clear_windows: int | None = None) -> streams.Setting:
    return streams.Setting(
        window_items=config.window_items,
        reference_windows=getattr(config, "reference_windows", _BEFORE["reference_windows"]),
        strata=tuple(getattr(config, "strata", _BEFORE["strata"])),
        clear_windows=getattr(config, "clear_windows", 0) if clear_windows is None else clear_windows,
        alpha=config.alpha,
        warning_alpha=config.warning_alpha,
    )


def _setting_json(setting: streams.Setting) -> dict[str, Any]:
    return {"reference_windows": setting.reference_windows, "strata": list(setting.strata),
            "clear_windows": setting.clear_windows}  # fmt: skip


def _stream_options(args: argparse.Namespace) -> dict[str, Any]:
    return {"block_items": args.block_items, "shift_blocks": args.shift_blocks,
            "line_contrast": args.line_contrast, "shift_contrast": args.shift_contrast}  # fmt: skip


def _false_alarms_on_blocks(
    args: argparse.Namespace, setting: streams.Setting, pools: list[streams.Pool], features: list[np.ndarray],
    names: list[str],
) -> dict[str, Any]:  # fmt: skip
    """Unshifted block streams (the same for every setting: seeded by their number)."""
    checked = alarms = drifts = warnings = 0
    for seed in range(args.block_streams):
        length = (setting.reference_windows + args.windows) * setting.window_items
        rng = np.random.default_rng(1000 + seed)
        result = streams.replay(
            streams.block_stream(pools[:1], length, rng, **_stream_options(args)), features, names, setting,
            args.windows,
        )  # fmt: skip
        checked += len(result.statuses)
        alarms += sum(result.alarms)
        drifts += result.statuses.count("drift")
        warnings += sum(s != "ok" for s in result.statuses)
    return {
        "false_alarm_rate_blocks": round(alarms / checked, 4),
        "drift_window_share_blocks": round(drifts / checked, 4),
        "warning_window_share_blocks": round(warnings / checked, 4),
        "windows_checked_blocks": checked,
    }


def _detection_on_blocks(
    args: argparse.Namespace, setting: streams.Setting, longest: int, pools: list[streams.Pool],
    features: list[np.ndarray], names: list[str],
) -> dict[str, Any]:  # fmt: skip
    """Shifted block streams (the same for every setting), each shifting at a block boundary 0.5 to 2
    windows after the ``longest`` reference of all settings."""
    size = setting.window_items
    delays: dict[bool, list[float]] = {True: [], False: []}  # by alarm, by drift status
    open_at_shift = 0
    for seed in range(args.streams):
        rng = np.random.default_rng(2000 + seed)
        shift_after = longest * size + int(rng.integers(size // 2, 2 * size + 1))
        length = shift_after + args.block_items + args.detect_windows * size
        stream = streams.block_stream(pools, length, rng, shift_after=shift_after, **_stream_options(args))
        assert stream.shift_at is not None
        result = streams.replay(stream, features, names, setting, length // size)
        for alarm, found in delays.items():
            delay = streams.first_after(result, stream.shift_at, alarm=alarm)
            found.append(float("inf") if delay is None else delay)
        open_at_shift += streams.episode_open_at(result, stream.shift_at, setting.clear_windows)
    median = statistics.median(delays[True])
    return {
        "detected_within_two_windows": _share(delays[True], lambda d: d <= 2 * size),
        "detection_delay_windows_median": None if median == float("inf") else round(median / size, 2),
        "not_detected": _share(delays[True], lambda d: d == float("inf")),
        "drift_status_within_two_windows": _share(delays[False], lambda d: d <= 2 * size),
        "episode_open_at_shift": round(open_at_shift / args.streams, 4),
    }


def _share(values: list[float], test: Callable[[float], bool]) -> float:
    return round(sum(map(test, values)) / len(values), 4)


def _iid_false_alarms(
    pool: np.ndarray, names: list[str], setting: streams.Setting, trials: int
) -> dict[str, float]:
    """Disjoint random reference and window of the same site's reports, ``trials`` times."""
    from edge_agent import drift

    window, reference = setting.window_items, setting.reference_windows * setting.window_items
    rng = np.random.default_rng(2026)
    counts = {"drift": 0, "warning": 0}
    for _ in range(trials):
        order = rng.permutation(len(pool))
        check = drift.compare_windows(
            pool[order[:reference]], pool[order[reference : reference + window]], names,
            alpha=setting.alpha, warning_alpha=setting.warning_alpha,
        )  # fmt: skip
        counts["drift"] += check.status == "drift"
        counts["warning"] += check.status != "ok"
    return {"false_alarm_rate_iid": round(counts["drift"] / trials, 4),
            "warning_rate_iid": round(counts["warning"] / trials, 4)}  # fmt: skip


# ---------------------------------------------------------------- the real agent


def _agent_check(
    args: argparse.Namespace, bundle: Path, trust: Path, pools: list[streams.Pool]
) -> tuple[dict[str, Any], list[np.ndarray], list[str]]:
    """One shifted block stream served through a real agent with its default drift settings, the
    offline replay of the same stream to compare with, explanation times, and the drift features of
    every pooled report (computed with the agent's production model)."""
    from edge_agent import drift

    with _agent(args.out / "sites" / "stream-0", bundle, trust) as agent:
        config = agent.drift.config
        setting, size = _setting(config), config.window_items
        shift_after = setting.reference_windows * size + size * 3 // 2
        stream = streams.block_stream(
            pools, shift_after + 4 * size, np.random.default_rng(args.agent_seed), shift_after=shift_after,
            **_stream_options(args),
        )  # fmt: skip
        served = _serve_until_alarm(agent, pools, stream)
        short_ms = _explain_times(agent, list(range(1, args.explanations + 1)))
        long_ms = _explain_times(agent, _serve_long(agent, pools[0].texts, 10))
        features = [_features(agent, pool.texts, config.projections) for pool in pools]
    labels = [f"c{i}" for i in range(features[0].shape[1] - 1 - config.projections)]
    names = drift.feature_names(labels, config.projections)
    replayed = streams.replay(stream, features, names, setting, len(stream.index) // size)
    assert stream.shift_at is not None
    figures = _agent_figures(served, replayed, stream.shift_at) | {
        "explain_ms_p50": round(float(np.percentile(short_ms, 50)), 1),
        "explain_ms_p95": round(float(np.percentile(short_ms, 95)), 1),
        "explain_ms_p50_120_words": round(float(np.percentile(long_ms, 50)), 1),
    }
    return figures, features, names


def _agent_figures(served: streams.Replay, replayed: streams.Replay, shift_at: int) -> dict[str, Any]:
    """The agent's alarms around the shift, and how many of its windows the replay judged alike."""
    offline = dict(zip(replayed.ends, replayed.statuses, strict=True))
    alike = [status == offline.get(end) for end, status in zip(served.ends, served.statuses, strict=True)]
    return {
        "agent_shift_at_item": shift_at,
        "agent_alarms_before_shift": sum(
            a for e, a in zip(served.ends, served.alarms, strict=True) if e <= shift_at
        ),
        "agent_detection_delay_items": streams.first_after(served, shift_at, alarm=True),
        "agent_drift_status_delay_items": streams.first_after(served, shift_at, alarm=False),
        "agent_windows_checked": len(served.ends),
        "agent_windows_as_replayed": round(sum(alike) / len(alike), 4) if alike else None,
    }


def _serve_until_alarm(agent: Any, pools: list[streams.Pool], stream: streams.Stream) -> streams.Replay:
    """Serve the stream 25 items at a time, tagged with line and shift, until an alarm after the
    shift; returns the windows checked against the production reference, as the store has them (a
    check without an ``alarm`` field predates hysteresis: then every drift window alarmed)."""
    from edge_agent.answers import Item

    assert stream.shift_at is not None
    model_id = agent.active.production.model_id
    texts = [pools[s].texts[i] for s, i in zip(stream.source, stream.index, strict=True)]
    served = streams.Replay([], [], [])
    for start in range(0, len(texts), 25):
        batch = range(start, min(start + 25, len(texts)))
        agent.predict(
            [Item("text", texts[i], texts[i].encode(), stream.groups[i], "operator") for i in batch]
        )
        agent.check_drift()  # the gatekeeper may have run it already: the store says
        checks = [c for c in agent.store.drift_checks(model_id, limit=1000) if c["reference"] == "production"]
        served = streams.Replay(
            ends=[_served_count(agent, c["last_prediction"]) for c in reversed(checks)],
            statuses=[c["status"] for c in reversed(checks)],
            alarms=[bool(c.get("alarm", c["status"] == "drift")) for c in reversed(checks)],
        )
        if streams.first_after(served, stream.shift_at, alarm=True) is not None:
            break
    return served


def _served_count(agent: Any, last_prediction: int) -> int:
    production = agent.active.production.model_id
    ids, _ = agent.store.drift_features(production, 0, 1_000_000)
    return int(ids.index(last_prediction)) + 1


def _features(agent: Any, texts: list[str], projections: int) -> np.ndarray:
    from edge_agent import drift

    model = agent.active.production.model
    parts = []
    for start in range(0, len(texts), 64):
        probabilities, embedding, _ = model.predict_arrays(texts[start : start + 64])
        matrix = drift.features(probabilities, embedding, projections)
        assert matrix is not None
        parts.append(matrix)
    return np.concatenate(parts)


def _serve_long(agent: Any, texts: list[str], count: int) -> list[int]:
    from edge_agent.answers import Item

    joined = [" ".join(" ".join(texts[i * 40 : (i + 1) * 40]).split()[:120]) for i in range(count)]
    return [a.input_id for a in agent.predict([Item("text", t, t.encode(), {}, "operator") for t in joined])]


def _explain_times(agent: Any, input_ids: list[int]) -> list[float]:
    times = []
    for input_id in input_ids:
        started = time.perf_counter()
        agent.explain(input_id)
        times.append((time.perf_counter() - started) * 1000.0)
    return times


class _agent:
    """A site with the bundle installed and an agent serving in-process (gates off: only drift)."""

    def __init__(self, root: Path, bundle: Path, trust: Path) -> None:
        from edge_agent.agent import Agent
        from edge_agent.config import config_from_mapping
        from edge_agent.site_init import init_site

        self.bundle = bundle
        site = init_site(root, site_name="bench-drift", trust=[trust])
        settings = {"runtime": {"provider": "cpu"}, "gates": {"auto_advance": False}}
        self.agent = Agent(site, config_from_mapping({"site": {"name": "bench-drift"}, **settings}))

    def __enter__(self) -> Any:
        self.agent.start()
        self.agent.install(self.bundle, actor="supervisor")
        return self.agent

    def __exit__(self, *exc: object) -> None:
        self.agent.close()


if __name__ == "__main__":
    raise SystemExit(main())
