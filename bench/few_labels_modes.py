"""Benchmark: site training modes side by side on the same few labels (last-k and contrastive).

For every site and seed of the synthetic shop-floor data (``export.datasets``, the generator
``bench/few_labels.py`` uses): N labels per class drawn at random (``sample_per_class``), the
same draw for every mode; each mode fine-tunes the packaged MiniLM from IT's default head with
agent.toml's defaults and is scored (torch) on the site's evaluation split, as is IT's head on the
untouched model (``default``). ``train_s``: seconds of the fine-tuning itself, 2 threads.

* ``gain_pts_at_N``: the best mode's mean accuracy over IT's default head, in points.
* ``by_mode``: mean accuracy per mode and N, and ``train_s_median`` per mode.

    .venv/bin/python bench/few_labels_modes.py [--per-class 5 10 20] [--seeds 1] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from genba import env as _env  # noqa: F401  (telemetry off before onnxruntime loads)

MODES = ("last-k", "contrastive")
THREADS = 2


def main() -> int:
    import torch
    from few_labels import POOL_SIZE, _bundle, _default_head
    from last_k_runs import LastKBench

    from export.datasets import GENERATOR_VERSION, LABELS, SITES, sample_per_class, site_split

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--per-class", type=int, nargs="+", default=[5, 10, 20])
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--out", type=Path, default=Path("bench-out/few_labels_modes"))
    args = parser.parse_args()
    torch.set_num_threads(THREADS)
    args.out.mkdir(parents=True, exist_ok=True)
    bundle, trust = _bundle(args.out)
    bench = LastKBench(bundle, trust, trust.with_suffix(""), THREADS)
    prior = _default_head(bundle)
    runs: list[dict[str, Any]] = []
    started = time.perf_counter()
    for site in SITES:
        for seed in range(args.seeds):
            split = site_split(site, seed=seed, n_pool=POOL_SIZE)
            eval_texts = [r.text for r in split.eval]
            eval_targets = np.array([LABELS.index(r.label) for r in split.eval])
            default = bench.default_accuracy(prior, eval_texts, eval_targets)
            for per_class in args.per_class:
                sample = sample_per_class(split.train, per_class, seed=seed)
                texts = [r.text for r in sample]
                targets = np.array([LABELS.index(r.label) for r in sample])
                for mode in MODES:
                    print(f"… {site} seed {seed} {per_class}/class {mode}", file=sys.stderr)
                    result = bench.run(texts, targets, eval_texts, eval_targets, prior, seed, mode=mode)
                    runs.append({"site": site, "seed": seed, "per_class": per_class, "mode": mode,
                                 "default": default, **result})  # fmt: skip
    document = _summary(runs, args.per_class)
    seconds = round(time.perf_counter() - started, 1)
    document.update({"generator_version": GENERATOR_VERSION, "seeds": args.seeds, "sites": list(SITES),
                     "threads": THREADS, "seconds": seconds, "runs": runs})  # fmt: skip
    (args.out / "few_labels_modes.json").write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    print(json.dumps({k: v for k, v in document.items() if k != "runs"}, indent=2))
    return 0


def _summary(runs: list[dict[str, Any]], grid: list[int]) -> dict[str, Any]:
    def mean_pts(values: list[float]) -> float:
        return round(100 * statistics.mean(values), 2)

    defaults = {(r["site"], r["seed"]): r["default"] for r in runs}
    default = mean_pts(list(defaults.values()))
    by_mode: dict[str, Any] = {}
    for mode in MODES:
        mine = [r for r in runs if r["mode"] == mode]
        by_mode[mode] = {
            "accuracy": {
                str(n): mean_pts([r["torch_acc"] for r in mine if r["per_class"] == n]) for n in grid
            },
            "train_s_median": {
                str(n): round(statistics.median(r["train_s"] for r in mine if r["per_class"] == n), 1)
                for n in grid
            },
        }
    best = {n: max(by_mode[m]["accuracy"][str(n)] for m in MODES) for n in grid}
    gains = {f"gain_pts_at_{n}": round(best[n] - default, 2) for n in grid}
    return {**gains, "default": default, "by_mode": by_mode}


if __name__ == "__main__":
    sys.exit(main())
