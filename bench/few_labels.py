"""Benchmark: what a site gains from a few of its own labels, the labelling queue, and pseudo-labels.

On the synthetic shop-floor data, for every site and seed: the site's training pool and its
fixed evaluation split. Every text is embedded ONCE through the default int8 bundle's
backbone (the very vectors site training caches), and the default IT head's answers come
from the same bundle. Then, on the evaluation split:

* ``default``: the default IT head (``train_default_head``, the head inside the bundle);
* ``random``: ``edge_agent.training.head.fit_head`` on N labels per class drawn at random
  per class (``sample_per_class``), N in 2, 5, 10, 20, 50;
* ``queue``: 2 random labels per class, then rounds of ``select_for_labelling`` on the
  current head's probabilities over the rest of the pool until the next budget on a finer
  grid; the pool item's recorded ``label`` (noise included) is the operator's answer;
* ``pseudo``: the 20-per-class random head plus confident pseudo-labels on the unlabelled
  pool (``fit_head_with_pseudo_labels``), thresholds 0.9 and 0.95, with the 20-label site
  head as the teacher (and, for comparison, the production default head).

``head_train_s_1000``: median seconds of ``fit_head`` on 1,000 cached embeddings, on the fit's
own torch threads (``HeadTrainingConfig.threads``: one; 2 before docs/bench/head_fit_threads.json),
after a warm-up. Prints one JSON document and writes it with a PNG plot to --out
and to docs/bench/.

    .venv/bin/python bench/few_labels.py [--out bench-out/few_labels] [--seeds 3]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from genba import env as _env  # noqa: F401  (telemetry off before onnxruntime loads)

THREADS = 2
#: A pool large enough that every class has 50 recorded labels at every site and seed
#: (600 leaves site-a's contamination and site-b/c's scratch below 50). Eval is unchanged by it.
POOL_SIZE = 900
RANDOM_GRID = (2, 5, 10, 20, 50)
REPORTED = (5, 10, 20, 50)
QUEUE_START = 2
QUEUE_GRID = (2, 3, 4, 5, 6, 7, 8, 10, 12, 14, 16, 18, 20, 25, 30, 35, 40, 45, 50)
PSEUDO_AT = 20
THRESHOLDS = (0.9, 0.95)
DIVERSITY = 0.9
AGENT_BUNDLE = Path("bench-out/agent/bundle")
AGENT_KEY = Path("bench-out/agent/keys/it-sign.pem.pub")
DOCS = Path("docs/bench")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("bench-out/few_labels"))
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=5, help="timed head fits on 1,000 examples")
    parser.add_argument(
        "--skip-last-k", action="store_true", help="head mode only (minutes instead of ~half an hour)"
    )
    args = parser.parse_args()
    import torch

    torch.set_num_threads(THREADS)
    from edge_agent.training.pseudo import DEFAULT_PSEUDO_WEIGHT
    from export.datasets import GENERATOR_VERSION, LABELS, SITES, site_split

    started = time.perf_counter()
    args.out.mkdir(parents=True, exist_ok=True)
    bundle, trust = _bundle(args.out)
    seeds = list(range(args.seeds))
    splits = {(site, seed): site_split(site, seed=seed, n_pool=POOL_SIZE) for site in SITES for seed in seeds}
    texts = sorted({r.text for split in splits.values() for r in (*split.train, *split.eval)})
    print(f"… embedding {len(texts)} distinct texts once", file=sys.stderr)
    embed_start = time.perf_counter()
    vectors, production = _embed(bundle, trust, texts)
    embed_s = time.perf_counter() - embed_start
    prior = _default_head(bundle)  # site heads start from, and are pulled toward, IT's head
    row = {text: i for i, text in enumerate(texts)}
    last_k_bench = None
    if not args.skip_last_k:
        from last_k_runs import LastKBench

        last_k_bench = LastKBench(bundle, trust, trust.with_suffix(""), THREADS)

    runs: dict[str, list[dict[str, Any]]] = {site: [] for site in SITES}
    for (site, seed), split in splits.items():
        print(f"… {site} seed {seed}", file=sys.stderr)
        runs[site].append(_site_run(split, seed, vectors, production, row, LABELS, prior, last_k_bench))
    head_s, head_runs = _head_timing(splits, vectors, row, LABELS, args.repeats, prior)

    summary = _summarise(runs)
    document = {
        "gain_pts_at_20": summary["gain_pts_at_20"],
        "gain_pts_at_20_by_mode": summary["gain_pts_at_20_by_mode"],
        "gain_pts_at_20_from_scratch": summary["gain_pts_at_20_from_scratch"],
        "label_fraction_active_vs_random": summary["label_fraction_active_vs_random"],
        "unlabelled_gain_pts": summary["unlabelled_gain_pts"],
        "head_train_s_1000": round(head_s, 3),
        "last_k_train_s": last_k_bench.timing() if last_k_bench else None,
        "targets": {
            "gain_pts_at_20": ">= 15",
            "label_fraction_active_vs_random": "<= 0.7",
            "head_train_s_1000": "<= 10",
            "unlabelled_gain_pts": "reported as measured",
        },
        "mean_accuracy": summary["mean_accuracy"],
        "last_k": summary["last_k"],
        "queue_vs_random": summary["queue_vs_random"],
        "pseudo": summary["pseudo"],
        "per_site": summary["per_site"],
        "generator_version": GENERATOR_VERSION,
        "seeds": seeds,
        "sites": list(SITES),
        "details": {
            "embeddings": "default int8 bundle backbone on ONNX Runtime CPU, once per distinct text",
            "bundle": str(bundle),
            "precision": _precision_variant(bundle),
            "default_head": "the bundle's head: export.default_model.train_default_head(seed=0)",
            "site_head": (
                "edge_agent.training.head.fit_head with prior = the default head, as 'genba agent train' "
                "does; random_from_scratch: the same without the prior"
            ),
            "gain_pts_at_20": "last-k (served: the re-exported, site-signed int8 candidate on ONNX Runtime) "
            "minus the default IT head, 20 random labels per class; head mode beside it",
            "last_k": "edge_agent.training.last_k.fine_tune with agent.toml's [training] defaults from the "
            "packaged MiniLM and the default head; torch_acc: the fine-tuned torch model; "
            "served_acc_at_20: after write_last_k_candidate (int8-per-channel, export gates, site key)",
            "accuracy": "on each site's fixed evaluation split (site_split(site, seed).eval), true labels",
            "operator_answer": "the pool item's recorded label (5% label noise included)",
            "pool_size": POOL_SIZE,
            "eval_size": len(next(iter(splits.values())).eval),
            "texts_embedded": len(texts),
            "embed_s": round(embed_s, 1),
            "queue": {
                "start": f"{QUEUE_START} random labels per class (sample_per_class)",
                "rounds_to_labels_per_class": list(QUEUE_GRID),
                "selection": f"select_for_labelling(margin, diversity={DIVERSITY}) on the remaining pool",
            },
            "label_fraction": "smallest queue budget on its grid whose mean accuracy reaches random's "
            "mean at 50/class, over random's 50/class total",
            "pseudo_weight": DEFAULT_PSEUDO_WEIGHT,
            "pseudo_teacher": "the 20-per-class site head's probabilities on the unlabelled pool",
            "unlabelled_gain_pts": "best threshold, chosen on the evaluation split (so optimistic)",
            "head_train_s_1000_runs": [round(s, 3) for s in head_runs],
            "head_train": "fit_head on 1,000 cached pool embeddings (5-value L2 grid on a validation "
            "split + refit), on the fit's own torch threads (HeadTrainingConfig.threads), median after one "
            "warm-up",
            "threads": THREADS,
            "wall_s": round(time.perf_counter() - started, 1),
        },
    }
    text = json.dumps(document, indent=2)
    print(text)
    (args.out / "few_labels.json").write_text(text + "\n", encoding="utf-8")
    _plot(summary["mean_accuracy"], args.out / "few_labels.png", summary["last_k"])
    DOCS.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(args.out / "few_labels.json", DOCS / "few_labels.json")
    shutil.copyfile(args.out / "few_labels.png", DOCS / "few_labels.png")
    return 0


# ------------------------------------------------------------------ set-up


def _bundle(out: Path) -> tuple[Path, Path]:
    """The default int8 bundle: agent_api's if it verifies, else ours, else exported now (once)."""
    from genba import keys
    from genba.bundle import verify_directory
    from genba.errors import GenbaError

    key = out / "keys" / "it-sign.pem"
    pub = key.with_name(key.name + ".pub")
    for bundle, trust in ((AGENT_BUNDLE, AGENT_KEY), (out / "bundle", pub)):
        try:
            verify_directory(bundle, [keys.load_public_key(trust)])
            return bundle, trust
        except (GenbaError, OSError):
            continue
    from export.default_model import export_default_bundle, train_default_head, write_default_data

    for stale in (out / "bundle", out / "keys", out / "data"):
        shutil.rmtree(stale, ignore_errors=True)
    keys.write_key_pair(keys.generate_signing_key(), key)
    print("… exporting the default bundle (once)", file=sys.stderr)
    export_default_bundle(
        out / "bundle",
        write_default_data(out / "data"),
        train_default_head(),
        signing_key=key,
        threads=THREADS,
    )
    return out / "bundle", pub


def _precision_variant(bundle: Path) -> str | None:
    from genba.bundle import read_manifest

    precision = read_manifest(bundle)[0].precision
    return precision.variant if precision else None


def _embed(bundle: Path, trust: Path, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """(embeddings, production probabilities) per text, shortest first so batches pad little."""
    from genba import keys
    from genba.bundle import verify_directory
    from genba.runtime.config import RuntimeConfig
    from genba.runtime.model import BundleModel

    verified = verify_directory(bundle, [keys.load_public_key(trust)])
    model = BundleModel(verified, RuntimeConfig(provider="cpu", intra_op_threads=THREADS, spin_wait=False))
    order = sorted(range(len(texts)), key=lambda i: (len(texts[i]), i))
    vectors = np.zeros((len(texts), 0), dtype=np.float32)
    probabilities = np.zeros((len(texts), 0), dtype=np.float32)
    for offset in range(0, len(order), 64):
        batch = order[offset : offset + 64]
        scores, embedding, _ = model.predict_arrays([texts[i] for i in batch])
        assert scores is not None and embedding is not None, "the default bundle is backbone + head"
        if not vectors.size:
            vectors = np.zeros((len(texts), embedding.shape[1]), dtype=np.float32)
            probabilities = np.zeros((len(texts), scores.shape[1]), dtype=np.float32)
        vectors[batch], probabilities[batch] = embedding, scores
    return vectors, probabilities


def _default_head(bundle: Path) -> Any:
    import onnx

    from export.graphs import head_weights

    return head_weights(onnx.load(str(bundle / "head.onnx")))


# ------------------------------------------------------------------ one site, one seed


def _site_run(
    split: Any,
    seed: int,
    vectors: np.ndarray,
    production: np.ndarray,
    row: dict[str, int],
    labels: tuple[str, ...],
    prior: Any,
    last_k_bench: Any = None,
) -> dict[str, Any]:
    from edge_agent.training.head import fit_head
    from export.datasets import sample_per_class

    pool = split.train
    position = {id(report): i for i, report in enumerate(pool)}
    x_pool = vectors[[row[r.text] for r in pool]]
    y_pool = np.array([labels.index(r.label) for r in pool])
    y_true_pool = np.array([labels.index(r.true_label) for r in pool])
    x_eval = vectors[[row[r.text] for r in split.eval]]
    y_eval = np.array([labels.index(r.label) for r in split.eval])

    def fit(chosen: list[int]) -> Any:
        return fit_head(x_pool[chosen], y_pool[chosen], len(labels), seed=seed, prior=prior).weights

    def fit_from_scratch(chosen: list[int]) -> Any:
        return fit_head(x_pool[chosen], y_pool[chosen], len(labels), seed=seed).weights

    def accuracy(head: Any) -> float:
        return float((np.argmax(_logits(x_eval, head), axis=1) == y_eval).mean())

    default = float((np.argmax(production[[row[r.text] for r in split.eval]], axis=1) == y_eval).mean())
    random_acc: dict[int, float] = {}
    scratch_acc: dict[int, float] = {}
    heads: dict[int, Any] = {}
    samples: dict[int, list[int]] = {}
    for per_class in RANDOM_GRID:
        samples[per_class] = [position[id(r)] for r in sample_per_class(pool, per_class, seed=seed)]
        heads[per_class] = fit(samples[per_class])
        random_acc[per_class] = accuracy(heads[per_class])
        scratch_acc[per_class] = accuracy(fit_from_scratch(samples[per_class]))

    queue_acc, queue_fills, queue_at_20 = _queue(x_pool, samples[QUEUE_START], fit, accuracy, len(labels))
    last_k = _last_k_runs(last_k_bench, split, pool, y_pool, samples, queue_at_20, labels, prior, seed)

    # Pseudo-labels at 20 per class: the random 20-per-class head as teacher (and production for contrast).
    chosen = samples[PSEUDO_AT]
    unlabelled = np.setdiff1d(np.arange(len(pool)), chosen)
    teachers = {
        "site_head": _softmax(_logits(x_pool[unlabelled], heads[PSEUDO_AT])),
        "production": production[[row[pool[i].text] for i in unlabelled]],
    }
    pseudo: dict[str, dict[str, Any]] = {}
    for teacher, probabilities in teachers.items():
        for threshold in THRESHOLDS:
            pseudo[f"{teacher}@{threshold}"] = _pseudo_run(
                x_pool,
                y_pool,
                y_true_pool,
                chosen,
                unlabelled,
                probabilities,
                threshold,
                seed,
                accuracy,
                prior,
            )
    return {
        "default": default,
        "random": random_acc,
        "scratch": scratch_acc,
        "queue": queue_acc,
        "queue_fills": queue_fills,
        "pseudo": pseudo,
        "last_k": last_k,
    }


def _last_k_runs(
    bench: Any,
    split: Any,
    pool: Any,
    y_pool: np.ndarray,
    samples: dict[int, list[int]],
    queue_at_20: list[int],
    labels: tuple[str, ...],
    prior: Any,
    seed: int,
) -> dict[str, Any] | None:
    """last-k on the same random samples as the head (and the queue's 20-per-class labels)."""
    if bench is None:
        return None
    from last_k_runs import ABLATION_K, EXPORT_AT

    eval_texts = [r.text for r in split.eval]
    eval_targets = np.array([labels.index(r.label) for r in split.eval])

    def run(chosen: list[int], **options: Any) -> dict[str, Any]:
        texts = [pool[i].text for i in chosen]
        result: dict[str, Any] = bench.run(
            texts, y_pool[chosen], eval_texts, eval_targets, prior, seed, **options
        )
        return result

    random_runs = {n: run(samples[n], export=n == EXPORT_AT) for n in REPORTED}
    return {
        "random": random_runs,
        "queue_at_20": run(queue_at_20),
        f"k{ABLATION_K}_at_20": run(samples[EXPORT_AT], k=ABLATION_K) if seed == 0 else None,
    }


def _queue(
    x_pool: np.ndarray, start: list[int], fit: Any, accuracy: Any, classes: int
) -> tuple[dict[int, float], int, list[int]]:
    """Accuracy at each queue budget (labels per class on QUEUE_GRID, as totals / classes)."""
    from edge_agent.selection import select_for_labelling

    labelled = list(start)
    results: dict[int, float] = {}
    fills = 0  # labels taken in plain margin order because the rest were near-duplicates
    head = fit(labelled)
    results[QUEUE_GRID[0]] = accuracy(head)
    for per_class in QUEUE_GRID[1:]:
        need = per_class * classes - len(labelled)
        remaining = np.setdiff1d(np.arange(len(x_pool)), labelled)
        probabilities = _softmax(_logits(x_pool[remaining], head))
        picked = select_for_labelling(probabilities, x_pool[remaining], need, diversity=DIVERSITY)
        if len(picked) < need:
            extra = [
                i
                for i in select_for_labelling(
                    probabilities, x_pool[remaining], need + len(picked), diversity=1.0
                )
                if i not in picked
            ]
            fills += need - len(picked)
            picked += extra[: need - len(picked)]
        labelled += remaining[picked].tolist()
        head = fit(labelled)
        results[per_class] = accuracy(head)
        if per_class == PSEUDO_AT:
            at_20 = list(labelled)
    return results, fills, at_20


def _pseudo_run(
    x_pool: np.ndarray,
    y_pool: np.ndarray,
    y_true_pool: np.ndarray,
    chosen: list[int],
    unlabelled: np.ndarray,
    probabilities: np.ndarray,
    threshold: float,
    seed: int,
    accuracy: Any,
    prior: Any,
) -> dict[str, Any]:
    from edge_agent.training.pseudo import confident_pseudo_labels, fit_head_with_pseudo_labels

    picked, pseudo_labels = confident_pseudo_labels(probabilities, threshold)
    items = unlabelled[picked]
    fit = fit_head_with_pseudo_labels(
        x_pool[chosen],
        y_pool[chosen],
        x_pool[items],
        pseudo_labels,
        probabilities.shape[1],
        seed=seed,
        prior=prior,
    )
    return {
        "accuracy": accuracy(fit.weights),
        "pseudo_labels": len(items),
        "pseudo_label_precision": float((pseudo_labels == y_true_pool[items]).mean()) if len(items) else None,
    }


# ------------------------------------------------------------------ timing


def _head_timing(
    splits: dict[tuple[str, int], Any],
    vectors: np.ndarray,
    row: dict[str, int],
    labels: tuple[str, ...],
    repeats: int,
    prior: Any,
) -> tuple[float, list[float]]:
    from edge_agent.training.head import fit_head

    reports = [r for split in splits.values() for r in split.train][:1000]
    x = vectors[[row[r.text] for r in reports]]
    y = np.array([labels.index(r.label) for r in reports])
    fit_head(x, y, len(labels), seed=0, prior=prior)  # warm-up
    runs = []
    for _ in range(repeats):
        start = time.perf_counter()
        fit_head(x, y, len(labels), seed=0, prior=prior)
        runs.append(time.perf_counter() - start)
    return statistics.median(runs), runs


# ------------------------------------------------------------------ summary


def _summarise(runs: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    every = [run for site_runs in runs.values() for run in site_runs]

    def mean(values: list[float]) -> float:
        return float(np.mean(values))

    def pts(value: float) -> float:
        return round(100.0 * value, 2)

    default = mean([r["default"] for r in every])
    random_mean = {n: mean([r["random"][n] for r in every]) for n in RANDOM_GRID}
    scratch_mean = {n: mean([r["scratch"][n] for r in every]) for n in RANDOM_GRID}
    queue_mean = {n: mean([r["queue"][n] for r in every]) for n in QUEUE_GRID}
    target = random_mean[50]
    reached = [n for n in QUEUE_GRID if queue_mean[n] >= target]
    fraction = round(min(reached) / 50, 3) if reached else None
    pseudo_keys = list(every[0]["pseudo"])
    pseudo_mean = {key: mean([r["pseudo"][key]["accuracy"] for r in every]) for key in pseudo_keys}
    site_keys = [key for key in pseudo_keys if key.startswith("site_head@")]
    best = max(site_keys, key=lambda key: pseudo_mean[key])
    per_site = {}
    for site, site_runs in runs.items():
        per_site[site] = {
            "default_acc": pts(mean([r["default"] for r in site_runs])),
            "random_acc": {n: pts(mean([r["random"][n] for r in site_runs])) for n in REPORTED},
            "queue_acc": {n: pts(mean([r["queue"][n] for r in site_runs])) for n in REPORTED},
            "pseudo_acc_at_20": {
                k: pts(mean([r["pseudo"][k]["accuracy"] for r in site_runs])) for k in pseudo_keys
            },
            "gain_pts_at_20": pts(mean([r["random"][20] - r["default"] for r in site_runs])),
            "random_acc_per_seed_at_20": [pts(r["random"][20]) for r in site_runs],
        }
    last_k = _summarise_last_k(runs, default) if every[0]["last_k"] is not None else None
    head_gain = pts(random_mean[20] - default)
    return {
        "gain_pts_at_20": last_k["gain_pts_at_20"] if last_k else head_gain,
        "gain_pts_at_20_by_mode": {"head": head_gain, "last_k": last_k["gain_pts_at_20"] if last_k else None},
        "last_k": last_k,
        "gain_pts_at_20_from_scratch": pts(scratch_mean[20] - default),
        "label_fraction_active_vs_random": fraction,
        "unlabelled_gain_pts": pts(pseudo_mean[best] - random_mean[PSEUDO_AT]),
        "mean_accuracy": {
            "default": pts(default),
            "random": {n: pts(v) for n, v in random_mean.items()},
            "random_from_scratch": {n: pts(v) for n, v in scratch_mean.items()},
            "queue": {n: pts(v) for n, v in queue_mean.items()},
        },
        "queue_vs_random": {
            "random_acc_at_50": pts(target),
            "queue_labels_per_class_to_reach_it": min(reached) if reached else None,
            "queue_minus_random_pts": {n: pts(queue_mean[n] - random_mean[n]) for n in REPORTED},
            "queue_fills_without_diversity": sum(r["queue_fills"] for r in every),
        },
        "pseudo": {
            "threshold_best": float(best.split("@")[1]),
            "gain_pts": {k: pts(pseudo_mean[k] - random_mean[PSEUDO_AT]) for k in pseudo_keys},
            "mean_pseudo_labels": {
                k: round(mean([r["pseudo"][k]["pseudo_labels"] for r in every]), 1) for k in pseudo_keys
            },
            "mean_pseudo_label_precision": {
                k: _mean_or_none([r["pseudo"][k]["pseudo_label_precision"] for r in every])
                for k in pseudo_keys
            },
        },
        "per_site": per_site,
    }


def _summarise_last_k(runs: dict[str, list[dict[str, Any]]], default: float) -> dict[str, Any]:
    from last_k_runs import ABLATION_K, EXPORT_AT

    every = [run for site_runs in runs.values() for run in site_runs]

    def mean(values: list[float]) -> float:
        return float(np.mean(values))

    def pts(value: float) -> float:
        return round(100.0 * value, 2)

    torch_mean = {n: mean([r["last_k"]["random"][n]["torch_acc"] for r in every]) for n in REPORTED}
    onnx_at = mean([r["last_k"]["random"][EXPORT_AT]["onnx_acc"] for r in every])
    queue_at = mean([r["last_k"]["queue_at_20"]["torch_acc"] for r in every])
    ablated = [r for r in every if r["last_k"][f"k{ABLATION_K}_at_20"] is not None]
    return {
        "gain_pts_at_20": pts(onnx_at - default),
        "served_acc_at_20": pts(onnx_at),
        "int8_minus_torch_pts_at_20": pts(onnx_at - torch_mean[EXPORT_AT]),
        "torch_acc": {n: pts(v) for n, v in torch_mean.items()},
        "queue_minus_random_pts_at_20": pts(queue_at - torch_mean[EXPORT_AT]),
        f"k{ABLATION_K}_minus_default_k_pts_at_20": pts(
            mean([r["last_k"][f"k{ABLATION_K}_at_20"]["torch_acc"] for r in ablated])
            - mean([r["last_k"]["random"][EXPORT_AT]["torch_acc"] for r in ablated])
        ),
        "per_site": {
            site: {
                "torch_acc": {
                    n: pts(mean([r["last_k"]["random"][n]["torch_acc"] for r in site_runs])) for n in REPORTED
                },
                "served_acc_at_20": pts(
                    mean([r["last_k"]["random"][EXPORT_AT]["onnx_acc"] for r in site_runs])
                ),
                "gain_pts_at_20": pts(
                    mean([r["last_k"]["random"][EXPORT_AT]["onnx_acc"] - r["default"] for r in site_runs])
                ),
                "best_epochs_at_20": [r["last_k"]["random"][EXPORT_AT]["best_epoch"] for r in site_runs],
            }
            for site, site_runs in runs.items()
        },
    }


def _mean_or_none(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return round(float(np.mean(present)), 4) if present else None


def _logits(features: np.ndarray, head: Any) -> np.ndarray:
    return np.asarray(features @ head.weight.T + head.bias, dtype=np.float64)


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return np.asarray(shifted / shifted.sum(axis=1, keepdims=True))


# ------------------------------------------------------------------ plot (Pillow; no matplotlib here)


def _plot(mean_accuracy: dict[str, Any], path: Path, last_k: dict[str, Any] | None = None) -> None:
    from PIL import Image, ImageDraw

    width, height, left, right, top, bottom = 900, 560, 80, 30, 50, 70
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    series = {
        "head, random labels": (mean_accuracy["random"], (31, 119, 180)),
        "head, labelling queue": (mean_accuracy["queue"], (214, 39, 40)),
    }
    if last_k is not None:
        series["last-k, random labels (torch)"] = (last_k["torch_acc"], (44, 160, 44))
    values = [v for s, _ in series.values() for v in s.values()] + [mean_accuracy["default"]]
    y_low, y_high = 5 * int(min(values) // 5), 5 * (int(max(values) // 5) + 1)
    x_high = 50

    def at(x: float, y: float) -> tuple[float, float]:
        px = left + (width - left - right) * x / x_high
        py = top + (height - top - bottom) * (1 - (y - y_low) / (y_high - y_low))
        return px, py

    draw.rectangle([at(0, y_high), at(x_high, y_low)], outline="black")
    for y in range(y_low, y_high + 1, 5):
        draw.line([at(0, y), at(x_high, y)], fill=(225, 225, 225))
        draw.text((left - 30, at(0, y)[1] - 6), f"{y}", fill="black")
    for x in (0, 5, 10, 20, 30, 40, 50):
        draw.line([at(x, y_low), (at(x, y_low)[0], at(x, y_low)[1] + 5)], fill="black")
        draw.text((at(x, y_low)[0] - 6, at(x, y_low)[1] + 8), f"{x}", fill="black")
    draw.text((width // 2 - 110, height - 30), "labels per class (queue: total / 6)", fill="black")
    draw.text(
        (10, top - 35), "accuracy on the site evaluation splits, % (mean over sites and seeds)", fill="black"
    )
    default = mean_accuracy["default"]
    draw.line([at(0, default), at(x_high, default)], fill=(120, 120, 120), width=2)
    for (name, (points, colour)), offset in zip(series.items(), (-20, 0, 20), strict=False):
        xy = [at(float(n), v) for n, v in sorted((int(k), v) for k, v in points.items())]
        draw.line(xy, fill=colour, width=3)
        for px, py in xy:
            draw.ellipse([px - 4, py - 4, px + 4, py + 4], fill=colour)
        legend = at(30, y_low)
        draw.line(
            [(legend[0], legend[1] - 60 + offset), (legend[0] + 30, legend[1] - 60 + offset)],
            fill=colour,
            width=3,
        )
        draw.text((legend[0] + 38, legend[1] - 66 + offset), name, fill="black")
    legend = at(30, y_low)
    draw.line([(legend[0], legend[1] - 20), (legend[0] + 30, legend[1] - 20)], fill=(120, 120, 120), width=2)
    draw.text((legend[0] + 38, legend[1] - 26), f"default IT head ({default:.1f})", fill="black")
    image.save(path)


if __name__ == "__main__":
    sys.exit(main())
