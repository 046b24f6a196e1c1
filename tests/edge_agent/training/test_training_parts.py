"""The parts of site training one by one: label checks, the split, the fit, the cache and its table."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from contextlib import closing
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edge_agent.store import MIGRATIONS, SCHEMA_VERSION, InputRecord, LabelledInput, SiteStore
from edge_agent.store.schema import apply_migrations
from edge_agent.training.candidate import head_file
from edge_agent.training.data import training_set
from edge_agent.training.embeddings import backbone_key, cached_embeddings
from edge_agent.training.errors import (
    NotHeadSwappableError,
    SingleClassError,
    UnknownLabelsError,
    WrongInputKindError,
)
from edge_agent.training.head import (
    HeadTrainingConfig,
    _folds,
    _one_standard_error,
    fit_head,
    score_head,
    stratified_split,
)
from genba.bundle import Manifest
from genba.errors import BundleFormatError, ConfigError, UsageError

LABELS = ("ok", "scratch", "dent")


def item(input_id: int, label: str, kind: str = "text", text: str = "x") -> LabelledInput:
    return LabelledInput(input_id=input_id, kind=kind, payload=text.encode(), label=label, groups={})


# ---------------------------------------------------------------- labels


def test_a_training_set_is_in_input_order_with_indices_into_the_models_labels() -> None:
    data = training_set([item(9, "dent"), item(2, "ok"), item(5, "dent")], LABELS, "text")
    assert data.input_ids == [2, 5, 9]
    assert data.label_indices.tolist() == [0, 2, 2]
    assert data.class_counts() == {"ok": 1, "scratch": 0, "dent": 2}


@pytest.mark.parametrize(
    ("items", "error", "words"),
    [
        (
            [item(1, "dent"), item(2, "dent")],
            SingleClassError,
            "all 2 training labels are 'dent', a single class",
        ),
        ([item(1, "dent"), item(2, "rust"), item(3, "crack")], UnknownLabelsError, "'crack', 'rust'"),
        ([item(1, "dent", "image"), item(2, "ok")], WrongInputKindError, "image inputs"),
    ],
)
def test_bad_labels_fail_with_one_line_that_says_what_to_do(
    items: list[LabelledInput], error: type[UsageError], words: str
) -> None:
    with pytest.raises(error) as caught:
        training_set(items, LABELS, "text")
    message = str(caught.value)
    assert words in message and "\n" not in message and ": " in message
    assert caught.value.exit_code == 2


def _manifest(graphs: dict[str, Any], files: dict[str, str], **more: Any) -> Manifest:
    """A manifest with ``graphs`` and ``files`` (name: sha256), the rest made up."""
    return Manifest.from_json(
        {
            "format_version": 1,
            "model": {"name": "m", "version": 1},
            "task": "text-classification",
            "input": {"kind": "text", "max_length": 128},
            "opset": 18,
            "lineage": {},
            "graphs": graphs,
            "files": {name: {"sha256": sha, "bytes": 1} for name, sha in files.items()},
            **more,
        }
    )


def test_only_backbone_plus_head_bundles_can_be_head_swapped() -> None:
    split = _manifest({"backbone": {"file": "backbone.onnx"}, "head": {"file": "head.onnx"}}, {})
    assert head_file(split) == "head.onnx"
    with pytest.raises(NotHeadSwappableError) as caught:
        head_file(_manifest({"model": {"file": "model.onnx"}}, {}))
    assert "one graph (model)" in str(caught.value) and "last-k" in str(caught.value)
    assert "\n" not in str(caught.value)


# ---------------------------------------------------------------- split and fit


def clusters(per_class: int, seed: int = 0, dim: int = 8) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(3, dim)) * 3
    targets = np.repeat(np.arange(3), per_class)
    return (centers[targets] + rng.normal(size=(len(targets), dim))).astype(np.float32), targets


def test_the_validation_split_is_stratified_seeded_and_leaves_every_class_in_training() -> None:
    targets = np.array([0] * 10 + [1] * 5 + [2] * 1)
    train, validation = stratified_split(targets, 0.2, seed=4)
    assert sorted([*train, *validation]) == list(range(16))
    assert np.bincount(targets[validation], minlength=3).tolist() == [2, 1, 0]
    assert set(targets[train]) == {0, 1, 2}
    again = stratified_split(targets, 0.2, seed=4)
    assert np.array_equal(train, again[0]) and np.array_equal(validation, again[1])
    others = {tuple(stratified_split(targets, 0.2, seed=s)[1]) for s in range(6)}
    assert len(others) > 1


def test_the_fit_chooses_l2_by_cross_validation_then_refits_on_all_labels() -> None:
    features, targets = clusters(10)
    fit = fit_head(features, targets, 3, seed=1)
    report = fit.report
    assert (report["folds"], report["validation_size"], report["examples"]) == (5, 30, 30)
    assert [row["l2"] for row in report["grid"]] == list(HeadTrainingConfig().l2_grid)
    assert report["chosen"]["l2"] in HeadTrainingConfig().l2_grid
    # Well separated clusters: every value scores 1.0, so the most regularised one is chosen.
    assert all(row["validation_accuracy"] == 1.0 for row in report["grid"])
    assert report["chosen"]["l2"] == max(HeadTrainingConfig().l2_grid)
    assert report["train_accuracy"] == 1.0
    assert fit.weights.weight.shape == (3, 8) and fit.weights.bias.shape == (3,)
    again = fit_head(features, targets, 3, seed=1)
    assert np.array_equal(fit.weights.weight, again.weights.weight)
    assert np.array_equal(fit.weights.bias, again.weights.bias)


def test_every_label_is_scored_once_across_the_folds_and_small_classes_spread() -> None:
    targets = np.array([0] * 7 + [1] * 3 + [2] * 1)
    folds = _folds(targets, HeadTrainingConfig(folds=5), seed=3)
    assert len(folds) == 5
    scored = np.concatenate([validation for _, validation in folds])
    assert sorted(scored.tolist()) == list(range(len(targets)))
    for train, validation in folds:
        assert not set(train) & set(validation) and len(train) + len(validation) == len(targets)
    # class 1's three labels sit in three different folds
    assert len({f for f, (_, validation) in enumerate(folds) for i in validation if targets[i] == 1}) == 3
    assert [v.tolist() for _, v in _folds(targets, HeadTrainingConfig(), seed=3)] == [
        v.tolist() for _, v in folds
    ]
    # no class with two labels: nothing can be held out; past cv_max_labels one split stands in
    assert _folds(np.array([0, 1, 2]), HeadTrainingConfig(), seed=0) == []
    assert len(_folds(targets, HeadTrainingConfig(cv_max_labels=10), seed=0)) == 1


def test_the_most_regularised_value_within_one_standard_error_of_the_best_wins() -> None:
    grid = [
        {"l2": 0.001, "validation_accuracy": 0.80, "validation_loss": 0.5},
        {"l2": 0.1, "validation_accuracy": 0.76, "validation_loss": 0.6},
        {"l2": 10.0, "validation_accuracy": 0.70, "validation_loss": 0.7},
    ]
    # one standard error of 0.80 on 50 labels is 0.057: 0.76 is within it, 0.70 is not
    assert _one_standard_error(grid, 50)["l2"] == 0.1
    # on 1,000 labels the error is 0.013: only the best is left
    assert _one_standard_error(grid, 1000)["l2"] == 0.001


def test_a_few_labels_pull_a_parent_head_only_as_far_as_they_show_it_wrong() -> None:
    """The prior's biases say class 0 is common; five balanced labels a class must not erase that."""
    from export.graphs import HeadWeights

    features, targets = clusters(5, seed=2)
    centers = np.stack([features[targets == c].mean(axis=0) for c in range(3)])
    # nearest-centroid logits (c·x - |c|²/2), with class 0 made a little likelier
    bias = -0.5 * (centers**2).sum(axis=1) + np.array([2.0, 0.0, 0.0])
    prior = HeadWeights(centers.astype(np.float32), bias.astype(np.float32))
    assert score_head(prior, features, targets)[0] == 1.0
    fit = fit_head(features, targets, 3, seed=0, prior=prior)
    assert fit.report["anchored_to_parent"] and fit.report["folds"] == 5
    # the prior already answers these labels right, so the strongest pull wins and both
    # weights and biases stay near the prior's
    assert fit.report["chosen"]["l2"] == max(HeadTrainingConfig().anchored_l2_grid)
    assert np.abs(fit.weights.bias - prior.bias).max() < 0.05
    assert np.abs(fit.weights.weight - prior.weight).max() < 0.05


def test_too_few_labels_to_hold_out_fit_with_the_default_l2() -> None:
    features, targets = clusters(1)
    fit = fit_head(features, targets, 3, seed=0, config=HeadTrainingConfig(default_l2=0.05))
    assert fit.report["validation_size"] == 0 and fit.report["validation_accuracy"] is None
    assert fit.report["chosen"]["l2"] == 0.05 and fit.report["grid"] == [] and fit.report["folds"] == 0


def test_a_head_config_reports_every_problem_at_once() -> None:
    with pytest.raises(ConfigError) as caught:
        HeadTrainingConfig(l2_grid=(), max_iterations=0, validation_fraction=1.0, folds=1, threads=-1)
    assert len(caught.value.problems) == 5
    assert any("threads" in problem for problem in caught.value.problems)


@pytest.mark.parametrize(("threads", "inside"), [(1, 1), (0, 3)])
def test_a_head_fits_on_its_own_torch_threads_and_gives_the_callers_back(
    monkeypatch: pytest.MonkeyPatch, threads: int, inside: int
) -> None:
    """Every fit of the grid and the refit run on ``threads`` torch threads (0: the caller's
    setting, here 3); after the fit, and after a fit that fails, torch has the caller's again."""
    import torch

    seen: list[int] = []
    failing: list[bool] = []
    real_lbfgs = torch.optim.LBFGS

    def lbfgs_counting_threads(*args: Any, **kwargs: Any) -> Any:
        seen.append(torch.get_num_threads())
        if failing:
            raise RuntimeError("the fit failed")
        return real_lbfgs(*args, **kwargs)

    monkeypatch.setattr(torch.optim, "LBFGS", lbfgs_counting_threads)
    caller = torch.get_num_threads()
    features, targets = clusters(5, seed=1)
    try:
        torch.set_num_threads(3)
        fit_head(features, targets, 3, seed=0, config=HeadTrainingConfig(threads=threads))
        assert len(seen) == 5 * 5 + 1 and set(seen) == {inside}
        assert torch.get_num_threads() == 3
        failing.append(True)
        with pytest.raises(RuntimeError, match="the fit failed"):
            fit_head(features, targets, 3, seed=0, config=HeadTrainingConfig(threads=threads))
        assert torch.get_num_threads() == 3
    finally:
        torch.set_num_threads(caller)


# ---------------------------------------------------------------- the cache table


@pytest.fixture
def store(tmp_path: Path) -> Any:
    with SiteStore(tmp_path / "store.db") as opened:
        yield opened


def add_inputs(store: SiteStore, texts: Sequence[str]) -> list[int]:
    written = store.record_served(
        [InputRecord(kind="text", payload=t.encode()) for t in texts], [[] for _ in texts]
    )
    return [input_id for input_id, _ in written]


def test_a_v1_store_gains_the_embeddings_table_and_keeps_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    with closing(sqlite3.connect(path, isolation_level=None)) as conn:
        apply_migrations(conn, path, MIGRATIONS[:1])
        conn.execute(
            "INSERT INTO inputs (created_at, kind, payload, payload_sha256) VALUES (1, 'text', x'61', '')"
        )
    with SiteStore(path) as store:
        assert store.schema_version == SCHEMA_VERSION >= 2  # migrated to the newest, through v2
        assert store.get_input(1).payload == b"a"
        assert store.embedding_count() == 0


def test_vectors_round_trip_by_key_and_replace_older_ones(store: SiteStore) -> None:
    ids = add_inputs(store, ["a", "b"])
    vectors = {ids[0]: np.array([1.5, -2.0, 0.25], dtype=np.float32), ids[1]: np.arange(3, dtype=np.float64)}
    assert store.put_embeddings("key-1", vectors) == 2
    found = store.get_embeddings("key-1", [*ids, 999])
    assert set(found) == set(ids) and found[ids[0]].dtype == np.float32
    assert found[ids[0]].tolist() == [1.5, -2.0, 0.25]
    assert store.get_embeddings("key-2", ids) == {}
    store.put_embeddings("key-1", {ids[0]: np.zeros(3)})
    assert store.get_embeddings("key-1", ids)[ids[0]].tolist() == [0.0, 0.0, 0.0]
    assert (store.embedding_count(), store.embedding_count("key-1"), store.embedding_count("key-2")) == (
        2,
        2,
        0,
    )
    assert store.put_embeddings("key-1", {12345: np.zeros(3)}) == 0  # no such input: skipped


def test_vectors_of_pruned_inputs_are_never_returned_and_are_dropped(
    store: SiteStore, tmp_path: Path
) -> None:
    ids = add_inputs(store, ["private report", "another"])
    store.put_embeddings("key", {i: np.ones(4) for i in ids})
    with closing(sqlite3.connect(tmp_path / "store.db", isolation_level=None)) as conn:
        conn.execute("UPDATE inputs SET payload = x'', pruned_at = 1 WHERE id = ?", (ids[0],))
    assert set(store.get_embeddings("key", ids)) == {ids[1]}
    assert store.put_embeddings("key", {ids[0]: np.ones(4)}) == 0
    assert store.drop_pruned_embeddings() == 1
    assert store.embedding_count() == 1


@pytest.mark.parametrize(
    ("vectors", "words"),
    [
        ({1: np.zeros(3), 2: np.zeros(4)}, "one size"),
        ({1: np.zeros((2, 2))}, "one size"),
        ({1: np.array([np.nan, 1.0])}, "finite"),
    ],
)
def test_bad_vectors_are_refused_before_writing(
    store: SiteStore, vectors: dict[int, np.ndarray], words: str
) -> None:
    add_inputs(store, ["a", "b"])
    with pytest.raises(UsageError, match=words):
        store.put_embeddings("key", vectors)
    assert store.embedding_count() == 0


# ---------------------------------------------------------------- embedding through the cache


class CountingEmbedder:
    """Embeds text as (length, vowel count): enough to see which inputs were embedded, and in what batches."""

    def __init__(self, with_embedding: bool = True) -> None:
        self.batches: list[list[str]] = []
        self.with_embedding = with_embedding

    def predict_arrays(self, items: Sequence[Any]) -> tuple[np.ndarray | None, np.ndarray | None, float]:
        self.batches.append(list(items))
        vectors = np.array([[len(t), sum(c in "aeiou" for c in t)] for t in items], dtype=np.float32)
        return None, vectors if self.with_embedding else None, 1.0


def test_cached_embeddings_computes_only_what_the_cache_lacks(store: SiteStore) -> None:
    texts = ["dent", "scratch on rim", "ok", "scratch", "good part"]
    ids = add_inputs(store, texts)
    items = [item(i, "ok", text=t) for i, t in zip(ids, texts, strict=True)]
    embedder = CountingEmbedder()
    first = cached_embeddings(store, embedder, "key", items[:3], batch_size=2)
    assert (first.new, first.cached) == (3, 0)
    assert [len(batch) for batch in embedder.batches] == [2, 1]
    assert first.vectors.tolist() == [[4, 1], [14, 3], [2, 1]]  # in the order asked for

    embedder.batches.clear()
    second = cached_embeddings(store, embedder, "key", items, batch_size=2)
    assert (second.new, second.cached) == (2, 3)
    assert sorted(t for batch in embedder.batches for t in batch) == ["good part", "scratch"]
    assert second.vectors[:3].tolist() == first.vectors.tolist()
    assert cached_embeddings(store, embedder, "other-backbone", items[:1]).new == 1


def test_a_model_without_an_embedding_output_cannot_train_a_head(store: SiteStore) -> None:
    ids = add_inputs(store, ["a"])
    with pytest.raises(BundleFormatError, match="no embedding output"):
        cached_embeddings(store, CountingEmbedder(with_embedding=False), "key", [item(ids[0], "ok")])
    assert store.embedding_count() == 0


def test_a_head_swap_keeps_the_cache_key_and_a_new_backbone_changes_it() -> None:
    def manifest(backbone: str, head: str, max_length: int = 128) -> Manifest:
        return _manifest(
            {"backbone": {"file": "backbone.onnx"}, "head": {"file": "head.onnx"}},
            {"backbone.onnx": backbone, "head.onnx": head, "preprocess/tokenizer.json": "t"},
            input={"kind": "text", "max_length": max_length},
        )

    key = backbone_key(manifest("b1", "h1"))
    assert key.startswith("backbone:")
    assert backbone_key(manifest("b1", "h2")) == key
    assert backbone_key(manifest("b2", "h1")) != key
    assert backbone_key(manifest("b1", "h1", max_length=64)) != key


def test_a_parent_head_anchors_the_fit_by_its_l2_strength() -> None:
    from export.graphs import HeadWeights
    from export.head_training import fit_weighted_linear_head

    rng = np.random.default_rng(0)
    features = rng.normal(size=(30, 8)).astype(np.float32)
    labels = np.arange(30) % 3
    prior = HeadWeights(rng.normal(size=(3, 8)).astype(np.float32), rng.normal(size=3).astype(np.float32))
    kept = fit_weighted_linear_head(features, labels, np.ones(30), 3, l2=100.0, prior=prior)
    moved = fit_weighted_linear_head(features, labels, np.ones(30), 3, l2=1e-6, prior=prior)
    assert np.abs(kept.weight - prior.weight).max() < 0.05
    assert np.abs(kept.bias - prior.bias).max() < 0.05  # the biases are anchored too
    assert np.abs(moved.weight - prior.weight).max() > 0.2
    assert np.abs(moved.bias - prior.bias).max() > 0.2
    report = fit_head(features, labels, 3, prior=prior).report
    assert report["anchored_to_parent"] is True
    assert report["chosen"]["l2"] in HeadTrainingConfig().anchored_l2_grid


def test_each_variant_has_its_own_cache_key_and_a_head_swap_keeps_both() -> None:
    def manifest(cpu: str, cuda: str, head: str) -> Manifest:
        graphs = {"backbone": {"file": "backbone.onnx"}, "head": {"file": "head.onnx"}}
        cuda_graphs = {"backbone": {"file": "backbone-cuda.onnx"}, "head": {"file": "head.onnx"}}
        files = {"backbone.onnx": cpu, "backbone-cuda.onnx": cuda, "head.onnx": head}
        return _manifest(
            graphs,
            {**files, "preprocess/tokenizer.json": "t"},
            variants={"cpu": {"graphs": graphs}, "cuda": {"graphs": cuda_graphs}},
        )

    cpu, cuda = (
        backbone_key(manifest("c1", "g1", "h1"), "cpu"),
        backbone_key(manifest("c1", "g1", "h1"), "cuda"),
    )
    assert cpu != cuda  # int8 and fp16 vectors must never be mixed in one cache
    assert backbone_key(manifest("c1", "g1", "h2"), "cpu") == cpu
    assert backbone_key(manifest("c1", "g1", "h2"), "cuda") == cuda
    # A new fp16 graph leaves the cpu variant's vectors valid, and the other way round.
    assert backbone_key(manifest("c1", "g2", "h1"), "cpu") == cpu
    assert backbone_key(manifest("c2", "g1", "h1"), "cuda") == cuda
    assert backbone_key(manifest("c1", "g2", "h1"), "cuda") != cuda
