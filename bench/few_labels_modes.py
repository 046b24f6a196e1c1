"""Benchmark: site training modes side by side on the same few labels (head, last-k, contrastive, auto).

For every site and seed of the synthetic shop-floor data (``export.datasets``, the generator
``bench/few_labels.py`` uses): N labels per class drawn at random (``sample_per_class``), the
same draw for every mode; each mode fine-tunes the packaged MiniLM from IT's default head with
agent.toml's defaults and is scored (torch) on the site's evaluation split, as is IT's head on the
untouched model (``default``). ``head`` fits on the served int8 backbone's embeddings.
``auto`` is ``edge_agent.training.auto.choose_mode`` on the same labels: its winner's accuracy
(the same run as that mode's), or IT's head when it declines (nothing trained, production keeps
serving). ``train_s``: seconds of the training itself, 2 threads (auto: its trials plus the winner).

``last-k+adapt``: last-k after ``--unlabelled adapt`` on the site's unlabelled pool (the training
pool less the sampled labels, at most ``adapt_max_texts``).

* ``gain_pts_at_N``: auto's mean accuracy over IT's default head, in points.
* ``unlabelled_gain_pts_at_N``: last-k+adapt over last-k, same labels.
* ``best_mode_gain_pts_at_N``: the best single mode's, in hindsight.
* ``by_mode``: mean accuracy per mode and N, and ``train_s_median`` per mode.

    .venv/bin/python bench/few_labels_modes.py [--per-class 5 10 20] [--seeds 1] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from genba import env as _env  # noqa: F401  (telemetry off before onnxruntime loads)

MODES = ("head", "last-k", "contrastive", "auto", "last-k+adapt")
THREADS = 2


def main() -> int:
    import torch
    from few_labels import POOL_SIZE, _bundle, _default_head
    from last_k_runs import LastKBench

    from export.datasets import GENERATOR_VERSION, LABELS, SITES, sample_per_class, site_split

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--per-class", type=int, nargs="+", default=[5, 10, 20])
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES[:4]))
    parser.add_argument("--plot", type=Path, help="only draw the plot of an earlier run's JSON, beside it")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a [training] setting other than agent.toml's default (e.g. contrastive_max_pairs=2000)",
    )
    parser.add_argument("--out", type=Path, default=Path("bench-out/few_labels_modes"))
    args = parser.parse_args()
    if args.plot is not None:
        plot(json.loads(args.plot.read_text(encoding="utf-8")), args.plot.with_suffix(".png"))
        return 0
    torch.set_num_threads(THREADS)
    args.out.mkdir(parents=True, exist_ok=True)
    bundle, trust = _bundle(args.out)
    bench = LastKBench(bundle, trust, trust.with_suffix(""), THREADS)
    settings = _settings(args.set)
    bench.config = replace(bench.config, **settings)
    prior = _default_head(bundle)
    runs: list[dict[str, Any]] = []
    started = time.perf_counter()
    for site in SITES:
        for seed in range(args.seeds):
            split = site_split(site, seed=seed, n_pool=POOL_SIZE)
            eval_texts = [r.text for r in split.eval]
            eval_targets = np.array([LABELS.index(r.label) for r in split.eval])
            default = bench.default_accuracy(prior, eval_texts, eval_targets)
            eval_vectors = _served_embeddings(bench, eval_texts)
            for per_class in args.per_class:
                sample = sample_per_class(split.train, per_class, seed=seed)
                texts = [r.text for r in sample]
                targets = np.array([LABELS.index(r.label) for r in sample])
                vectors = _served_embeddings(bench, texts)
                mine: dict[str, dict[str, Any]] = {}
                for mode in args.modes:
                    print(f"… {site} seed {seed} {per_class}/class {mode}", file=sys.stderr)
                    if mode == "head":
                        mine[mode] = _head_run(vectors, targets, eval_vectors, eval_targets, prior, seed)
                    elif mode == "auto":
                        mine[mode] = _auto_run(bench, texts, targets, vectors, prior, seed, mine, default)
                    elif mode == "last-k+adapt":
                        pool = [r.text for r in split.train if r.text not in set(texts)]
                        unlabelled = pool[: bench.config.adapt_max_texts]
                        mine[mode] = bench.run(texts, targets, eval_texts, eval_targets, prior, seed,
                                               unlabelled=unlabelled)  # fmt: skip
                    else:
                        mine[mode] = bench.run(
                            texts, targets, eval_texts, eval_targets, prior, seed, mode=mode
                        )
                    runs.append({"site": site, "seed": seed, "per_class": per_class, "mode": mode,
                                 "default": default, **mine[mode]})  # fmt: skip
    document = _summary(runs, args.per_class, args.modes)
    seconds = round(time.perf_counter() - started, 1)
    document.update({"generator_version": GENERATOR_VERSION, "seeds": args.seeds, "sites": list(SITES),
                     "training_settings": settings,
                     "threads": THREADS, "seconds": seconds, "runs": runs})  # fmt: skip
    (args.out / "few_labels_modes.json").write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    plot(document, args.out / "few_labels_modes.png")
    print(json.dumps({k: v for k, v in document.items() if k != "runs"}, indent=2))
    return 0


def _settings(assignments: list[str]) -> dict[str, Any]:
    """``--set NAME=VALUE`` as [training] settings, each value typed like the default's."""
    from edge_agent.config import TrainingConfig

    defaults = TrainingConfig()
    settings: dict[str, Any] = {}
    for assignment in assignments:
        name, _, value = assignment.partition("=")
        if not hasattr(defaults, name):
            raise SystemExit(f"--set {assignment}: no [training] setting is called {name!r}")
        settings[name] = type(getattr(defaults, name))(value)
    return settings


def _served_embeddings(bench: Any, texts: list[str]) -> np.ndarray:
    """The served (int8) backbone's embeddings: what head mode and auto's head trial fit on."""
    from genba.runtime.model import BundleModel

    model = BundleModel(bench.parent, bench.runtime)
    rows = []
    for start in range(0, len(texts), 64):
        _, embedding, _ = model.predict_arrays(texts[start : start + 64])
        assert embedding is not None, "the default bundle is backbone + head"
        rows.append(embedding)
    return np.concatenate(rows).astype(np.float32)


def _head_run(
    vectors: np.ndarray,
    targets: np.ndarray,
    eval_vectors: np.ndarray,
    eval_targets: np.ndarray,
    prior: Any,
    seed: int,
) -> dict[str, Any]:
    from edge_agent.training.head import fit_head, score_head

    started = time.perf_counter()
    fit = fit_head(vectors, targets, prior.num_labels, seed=seed, prior=prior)
    accuracy, _ = score_head(fit.weights, eval_vectors, eval_targets)
    return {"torch_acc": accuracy, "train_s": round(time.perf_counter() - started, 3)}


def _auto_run(
    bench: Any,
    texts: list[str],
    targets: np.ndarray,
    vectors: np.ndarray,
    prior: Any,
    seed: int,
    done: dict[str, dict[str, Any]],
    default: float,
) -> dict[str, Any]:
    """auto's choice on these labels; its accuracy is the chosen mode's run (IT's head if it declines)."""
    import torch

    from edge_agent.training.auto import AutoInputs, choose_mode
    from edge_agent.training.errors import AutoDeclinedError

    inputs = AutoInputs(targets=targets, parent=prior, vectors=vectors, texts=texts, new_source=bench._source,
                        encode=bench.encode, device=torch.device("cpu"))  # fmt: skip
    started = time.perf_counter()
    try:
        choice = choose_mode(inputs, bench.config, seed)
    except AutoDeclinedError as declined:
        seconds = round(time.perf_counter() - started, 3)
        return {"torch_acc": default, "train_s": seconds, "chosen": None, "why": str(declined)}
    seconds = time.perf_counter() - started + done[choice.mode]["train_s"]
    return {"torch_acc": done[choice.mode]["torch_acc"], "train_s": round(seconds, 3), "chosen": choice.mode,
            "why": choice.report["why"]}  # fmt: skip


def _summary(runs: list[dict[str, Any]], grid: list[int], modes: list[str]) -> dict[str, Any]:
    def mean_pts(values: list[float]) -> float:
        return round(100 * statistics.mean(values), 2)

    defaults = {(r["site"], r["seed"]): r["default"] for r in runs}
    default = mean_pts(list(defaults.values()))
    by_mode: dict[str, Any] = {}
    for mode in modes:
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
    summary: dict[str, Any] = {}
    if "auto" in modes:
        summary |= {f"gain_pts_at_{n}": round(by_mode["auto"]["accuracy"][str(n)] - default, 2) for n in grid}
        autos = [r for r in runs if r["mode"] == "auto"]
        summary["auto_chose"] = {str(n): [r["chosen"] for r in autos if r["per_class"] == n] for n in grid}
    single = [m for m in modes if m != "auto"]
    best = {n: max(by_mode[m]["accuracy"][str(n)] for m in single) for n in grid}
    summary |= {f"best_mode_gain_pts_at_{n}": round(best[n] - default, 2) for n in grid}
    if {"last-k", "last-k+adapt"} <= set(modes):
        summary |= {
            f"unlabelled_gain_pts_at_{n}": round(
                by_mode["last-k+adapt"]["accuracy"][str(n)] - by_mode["last-k"]["accuracy"][str(n)], 2
            )
            for n in grid
        }
    return {**summary, "default": default, "by_mode": by_mode}


COLOURS = {"head": (31, 119, 180), "last-k": (44, 160, 44), "contrastive": (148, 103, 189),
           "auto": (214, 39, 40), "last-k+adapt": (255, 127, 14)}  # fmt: skip


def plot(document: dict[str, Any], path: Path) -> None:
    """Accuracy against labels per class, one line per mode, IT's head dashed."""
    from PIL import Image, ImageDraw

    width, height, left, right, top, bottom = 900, 560, 80, 190, 50, 70
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    series = {
        mode: {int(n): v for n, v in figures["accuracy"].items()}
        for mode, figures in document["by_mode"].items()
    }
    values = [v for points in series.values() for v in points.values()] + [document["default"]]
    y_low, y_high = 5 * int(min(values) // 5), 5 * (int(max(values) // 5) + 1)
    x_high = max(n for points in series.values() for n in points) + 2

    def at(x: float, y: float) -> tuple[float, float]:
        return (left + (width - left - right) * x / x_high,
                top + (height - top - bottom) * (1 - (y - y_low) / (y_high - y_low)))  # fmt: skip

    draw.rectangle([at(0, y_high), at(x_high, y_low)], outline="black")
    for y in range(y_low, y_high + 1, 5):
        draw.line([at(0, y), at(x_high, y)], fill=(225, 225, 225))
        draw.text((left - 30, at(0, y)[1] - 6), f"{y}", fill="black")
    for x in sorted({n for points in series.values() for n in points}):
        draw.text((at(x, y_low)[0] - 6, at(x, y_low)[1] + 8), f"{x}", fill="black")
    draw.text((width // 2 - 140, height - 30), "training labels per class", fill="black")
    draw.text((10, top - 35), "accuracy on the site evaluation splits, % (mean over sites)", fill="black")
    for x in range(0, int(x_high), 2):
        draw.line([at(x, document["default"]), at(x + 1, document["default"])], fill="black")
    draw.text((width - right + 10, at(0, document["default"])[1] - 6), "IT's head", fill="black")
    for row, (mode, points) in enumerate(series.items()):
        colour = COLOURS.get(mode, (0, 0, 0))
        xy = [at(n, v) for n, v in sorted(points.items())]
        if len(xy) > 1:
            draw.line(xy, fill=colour, width=3)
        for px, py in xy:
            draw.ellipse([px - 4, py - 4, px + 4, py + 4], fill=colour)
        draw.text((width - right + 10, top + 20 * row), mode, fill=colour)
    image.save(path)


if __name__ == "__main__":
    sys.exit(main())
