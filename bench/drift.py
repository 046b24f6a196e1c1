"""Benchmark: how soon drift is raised after a shift, how often it is raised without one, and what an
explanation costs, on the packaged all-MiniLM-L6-v2 bundle with the agent's default drift settings.

* ``detection_delay_items``: a real agent (site store, serving path, drift monitor) serves a stream
  of site-a reports: its first window becomes the reference, then one and a half windows more of
  site-a, then site-b's reports (another site's vocabulary and class mix). Items served after the
  shift until the monitor raises ``drift``; median over ``--streams`` seeds (and the maximum).
* ``false_alarm_rate``: share of windows flagged ``drift`` when reference and window are disjoint
  random draws from 2,400 reports of the same site (``--trials`` of them), with the features and
  the test the monitor uses.
  ``warning_rate`` is the same for ``warning`` or worse.
* ``explain_ms_p50``: wall time of ``Agent.explain`` on distinct stored reports (no cache hits),
  leave-one-word-out occlusion on the serving sessions, 2 CPU cores. ``explain_ms_p50_120_words``:
  the same on reports joined up to 120 words (the longest explained is 128).

    .venv/bin/python bench/drift.py [--streams 5] [--trials 400] [--out bench-out/drift]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np

DOCS = Path(__file__).resolve().parent.parent / "docs" / "bench"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--streams", type=int, default=5, help="shifted streams served through the agent")
    parser.add_argument("--trials", type=int, default=400, help="unshifted reference/window pairs")
    parser.add_argument("--explanations", type=int, default=40)
    parser.add_argument("--out", type=Path, default=Path("bench-out/drift"))
    args = parser.parse_args()
    from edge_agent.config import DriftConfig
    from genba.demo.sites import signed_default_bundle

    config = DriftConfig()
    bundle, trust = signed_default_bundle(args.out.parent / "default-bundle")
    shutil.rmtree(args.out / "sites", ignore_errors=True)
    started = time.perf_counter()
    site_a, site_b = _reports("site-a", 2400), _reports("site-b", 1200)
    delays, explain_ms, pool = _streams(args, bundle, trust, config, site_a, site_b)
    short_ms, long_ms = explain_ms
    alarms = _false_alarms(pool, config, args.trials)
    window = config.window_items
    figures: dict[str, Any] = {
        "window_items": window,
        "alpha": config.alpha,
        "detection_delay_items": statistics.median(delays),
        "detection_delay_items_max": max(delays),
        "detected_within_two_windows": sum(d <= 2 * window for d in delays) / len(delays),
        "false_alarm_rate": alarms["drift"],
        "warning_rate": alarms["warning"],
        "false_alarm_trials": args.trials,
        "explain_ms_p50": round(float(np.percentile(short_ms, 50)), 1),
        "explain_ms_p95": round(float(np.percentile(short_ms, 95)), 1),
        "explain_ms_p50_120_words": round(float(np.percentile(long_ms, 50)), 1),
        "streams": args.streams,
        "wall_s": round(time.perf_counter() - started, 1),
    }
    text = json.dumps(figures, indent=2)
    print(text)
    (args.out / "drift.json").write_text(text + "\n", encoding="utf-8")
    DOCS.mkdir(parents=True, exist_ok=True)
    (DOCS / "drift.json").write_text(text + "\n", encoding="utf-8")
    return 0


def _reports(site: str, count: int) -> list[str]:
    from export.datasets import shopfloor

    split = shopfloor.site_split(site, seed=7, n_pool=count, n_eval=0)
    return [report.text for report in split.train]


def _streams(
    args: argparse.Namespace, bundle: Path, trust: Path, config: Any, site_a: list[str], site_b: list[str]
) -> tuple[list[int], tuple[list[float], list[float]], np.ndarray]:
    """Serve each shifted stream through a fresh agent; returns delays, explanation times and the
    drift features of every site-a report (the pool the false-alarm test draws from)."""
    window = config.window_items
    before = window + window * 3 // 2  # the reference window, then 1.5 windows of unshifted reports
    delays: list[int] = []
    explain_ms: tuple[list[float], list[float]] = ([], [])
    pool = None
    for seed in range(args.streams):
        rng = np.random.default_rng(seed)
        ordered_a = [site_a[i] for i in rng.permutation(len(site_a))]
        ordered_b = [site_b[i] for i in rng.permutation(len(site_b))][: 4 * window]
        with _agent(args.out / "sites" / f"stream-{seed}", bundle, trust) as agent:
            delay = _serve_until_drift(agent, ordered_a[:before], ordered_b)
            delays.append(delay)
            if seed == 0:
                explain_ms = (
                    _explain_times(agent, list(range(1, args.explanations + 1))),
                    _explain_times(agent, _serve_long(agent, site_a, 10)),
                )
                pool = _features(agent, site_a, config.projections)
    assert pool is not None
    return delays, explain_ms, pool


def _serve_until_drift(agent: Any, unshifted: list[str], shifted: list[str]) -> int:
    """Items served after the shift until the first window flagged ``drift`` ends (read from the store)."""
    from edge_agent.answers import Item

    stream = unshifted + shifted
    model_id = agent.active.production.model_id
    for start in range(0, len(stream), 25):
        agent.predict([Item("text", t, t.encode(), {}, "operator") for t in stream[start : start + 25]])
        agent.drift.check_pending(agent)  # the gatekeeper may have run it already: the store says
        flagged = [c for c in agent.store.drift_checks(model_id, limit=1000) if c["status"] == "drift"]
        if flagged:
            served = _served_count(agent, min(c["last_prediction"] for c in flagged))
            if served <= len(unshifted):
                raise SystemExit(f"drift raised before the shift (window ending at item {served})")
            return served - len(unshifted)
    raise SystemExit(f"no drift raised within {len(shifted)} shifted reports")


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


def _false_alarms(pool: np.ndarray, config: Any, trials: int) -> dict[str, float]:
    """Disjoint random reference and window from the same site's served reports, ``trials`` times."""
    from edge_agent import drift

    labels = [f"c{i}" for i in range(pool.shape[1] - 1 - config.projections)]
    names = drift.feature_names(labels, config.projections)
    window = config.window_items
    rng = np.random.default_rng(2026)
    counts = {"drift": 0, "warning": 0}
    for _ in range(trials):
        order = rng.permutation(len(pool))
        check = drift.compare_windows(
            pool[order[:window]], pool[order[window : 2 * window]], names,
            alpha=config.alpha, warning_alpha=config.warning_alpha,
        )  # fmt: skip
        counts["drift"] += check.status == "drift"
        counts["warning"] += check.status != "ok"
    return {status: round(count / trials, 4) for status, count in counts.items()}


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
