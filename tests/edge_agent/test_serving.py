"""Micro-batching: concurrent requests share a run, a lone request never waits, errors reach their callers."""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

from edge_agent.serving import BatchingConfig, MicroBatcher
from genba import bundle
from genba.errors import ConfigError, GenbaError, OverloadedError, ShuttingDownError
from genba.runtime import BundleModel, RuntimeConfig

TIMEOUT_S = 10.0


class FakeModel:
    """A stand-in for the model that records each batch; ``gate`` holds batches until it is set."""

    def __init__(self, delay_s: float = 0.0, gate: threading.Event | None = None, fail_on: str = "") -> None:
        self.delay_s = delay_s
        self.gate = gate
        self.fail_on = fail_on
        self.batches: list[list[str]] = []
        self.started = threading.Event()

    def __call__(self, items: list[str]) -> list[str]:
        self.started.set()
        if self.gate is not None:
            assert self.gate.wait(TIMEOUT_S)
        self.batches.append(list(items))
        time.sleep(self.delay_s)
        if self.fail_on and self.fail_on in items:
            raise ValueError(f"model failed on {self.fail_on}")
        return [f"{item}-done" for item in items]

    @property
    def sizes(self) -> list[int]:
        return [len(batch) for batch in self.batches]


@contextmanager
def running(model: FakeModel, **config: float) -> Iterator[MicroBatcher[str, str]]:
    batcher: MicroBatcher[str, str] = MicroBatcher(model, BatchingConfig(**config))  # type: ignore[arg-type]
    batcher.start()
    try:
        yield batcher
    finally:
        if model.gate is not None:
            model.gate.set()
        batcher.close()


def _results(futures: Sequence[concurrent.futures.Future[str]]) -> list[str]:
    return [future.result(TIMEOUT_S) for future in futures]


def test_config_reports_every_problem() -> None:
    with pytest.raises(ConfigError) as error:
        BatchingConfig(max_batch_size=0, max_wait_ms=-1.0, max_queue=0)
    assert len(error.value.problems) == 3
    assert "max_batch_size" in str(error.value) and "max_wait_ms" in str(error.value)
    assert "max_queue" in str(error.value)


def test_sequential_requests_run_alone_and_never_wait() -> None:
    model = FakeModel()
    with running(model, max_wait_ms=500.0) as batcher:
        for index in range(5):
            start = time.perf_counter()
            assert batcher.submit(f"r{index}").result(TIMEOUT_S) == f"r{index}-done"
            assert time.perf_counter() - start < 0.25  # far under max_wait_ms: nobody waited for company
    assert model.sizes == [1, 1, 1, 1, 1]
    assert batcher.stats["max_batch_size"] == 1 and batcher.stats["batches"] == 5


def test_requests_arriving_during_a_batch_form_the_next_batch() -> None:
    model = FakeModel(gate=threading.Event())
    with running(model, max_batch_size=8) as batcher:
        first = batcher.submit("first")
        assert model.started.wait(TIMEOUT_S)
        later = [batcher.submit(f"later{i}") for i in range(5)]
        assert model.gate is not None
        model.gate.set()
        assert _results([first, *later]) == ["first-done"] + [f"later{i}-done" for i in range(5)]
    assert model.batches == [["first"], [f"later{i}" for i in range(5)]]


def test_concurrent_clients_share_batches_and_get_their_own_answers() -> None:
    model = FakeModel(delay_s=0.02)
    barrier = threading.Barrier(16)
    answers: dict[int, list[str]] = {}

    def client(number: int) -> None:
        barrier.wait(TIMEOUT_S)
        answers[number] = [batcher.submit(f"c{number}-{k}").result(TIMEOUT_S) for k in range(4)]

    with running(model, max_batch_size=8, max_wait_ms=2.0) as batcher:
        threads = [threading.Thread(target=client, args=(n,)) for n in range(16)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(TIMEOUT_S)
    assert answers == {n: [f"c{n}-{k}-done" for k in range(4)] for n in range(16)}
    assert max(model.sizes) > 1 and all(1 <= size <= 8 for size in model.sizes)
    assert sum(model.sizes) == 64 and batcher.stats["items"] == 64
    assert batcher.stats["mean_batch_size"] > 1.0


def test_a_clients_batch_stays_together_unless_larger_than_a_batch() -> None:
    model = FakeModel(gate=threading.Event())
    with running(model, max_batch_size=4) as batcher:
        blocker = batcher.submit("x")
        assert model.started.wait(TIMEOUT_S)
        groups = [["a", "b", "c"], ["d", "e", "f"], [f"g{i}" for i in range(10)]]
        futures = [batcher.submit_many(group) for group in groups]
        assert model.gate is not None
        model.gate.set()
        assert [_results(group) for group in futures] == [[f"{i}-done" for i in g] for g in groups]
        blocker.result(TIMEOUT_S)
    assert model.batches == [["x"], *groups[:2], groups[2][:4], groups[2][4:8], groups[2][8:]]


def test_a_failed_batch_fails_all_its_requests_and_the_next_batch_works() -> None:
    model = FakeModel(gate=threading.Event(), fail_on="boom")
    with running(model) as batcher:
        blocker = batcher.submit("x")
        assert model.started.wait(TIMEOUT_S)
        doomed = batcher.submit_many(["boom", "innocent"])
        assert model.gate is not None
        model.gate.set()
        blocker.result(TIMEOUT_S)
        for future in doomed:
            with pytest.raises(ValueError, match="model failed on boom"):
                future.result(TIMEOUT_S)
        assert batcher.submit("after").result(TIMEOUT_S) == "after-done"
    assert model.batches == [["x"], ["boom", "innocent"], ["after"]]


def test_a_wrong_number_of_results_fails_the_batch_with_a_genba_error() -> None:
    batcher: MicroBatcher[str, str] = MicroBatcher(lambda items: ["only-one"], BatchingConfig())
    blocked: list[concurrent.futures.Future[str]] = batcher.submit_many(["a", "b"])
    batcher.start()
    try:
        for future in blocked:
            with pytest.raises(GenbaError, match="returned 1 results for a batch of 2") as error:
                future.result(TIMEOUT_S)
            assert isinstance(error.value, RuntimeError)
    finally:
        batcher.close()


def test_a_full_queue_refuses_requests_with_overloaded_error() -> None:
    model = FakeModel()
    batcher: MicroBatcher[str, str] = MicroBatcher(model, BatchingConfig(max_batch_size=2, max_queue=3))
    accepted = [batcher.submit("a"), *batcher.submit_many(["b", "c"])]
    with pytest.raises(OverloadedError, match=r"overloaded \(3 requests waiting\); retry shortly") as error:
        batcher.submit("d")
    assert error.value.exit_code == 1
    with pytest.raises(OverloadedError):
        batcher.submit_many(["e"])
    batcher.start()
    assert _results(accepted) == ["a-done", "b-done", "c-done"]
    assert batcher.submit("f").result(TIMEOUT_S) == "f-done"  # room again once the queue drained
    batcher.close()
    assert "e" not in {item for batch in model.batches for item in batch}


def test_close_finishes_queued_work_then_refuses_new_work() -> None:
    model = FakeModel(delay_s=0.01)
    batcher: MicroBatcher[str, str] = MicroBatcher(model, BatchingConfig(max_batch_size=2))
    queued = [batcher.submit(f"q{i}") for i in range(7)]
    batcher.start()
    batcher.close()
    assert all(future.done() for future in queued)
    assert _results(queued) == [f"q{i}-done" for i in range(7)]
    with pytest.raises(ShuttingDownError, match="shutting down"):
        batcher.submit("late")
    assert isinstance(ShuttingDownError(), GenbaError)


def test_close_without_a_worker_fails_queued_requests() -> None:
    batcher: MicroBatcher[str, str] = MicroBatcher(FakeModel(), BatchingConfig())
    orphan = batcher.submit("never-run")
    batcher.close()
    with pytest.raises(ShuttingDownError):
        orphan.result(TIMEOUT_S)


def test_a_cancelled_request_is_not_computed() -> None:
    model = FakeModel(gate=threading.Event())
    with running(model) as batcher:
        blocker = batcher.submit("x")
        assert model.started.wait(TIMEOUT_S)
        abandoned, kept = batcher.submit("abandoned"), batcher.submit("kept")
        assert abandoned.cancel()
        assert model.gate is not None
        model.gate.set()
        assert _results([blocker, kept]) == ["x-done", "kept-done"]
    assert model.batches == [["x"], ["kept"]]


def test_asyncio_clients_share_batches() -> None:
    model = FakeModel(delay_s=0.02)

    async def clients(batcher: MicroBatcher[str, str]) -> tuple[list[str], list[str]]:
        singles = await asyncio.gather(*(batcher.run(f"t{i}") for i in range(16)))
        group = await batcher.run_many(["m0", "m1", "m2"])
        return list(singles), group

    with running(model, max_batch_size=8) as batcher:
        singles, group = asyncio.run(asyncio.wait_for(clients(batcher), TIMEOUT_S))
    assert singles == [f"t{i}-done" for i in range(16)]
    assert group == ["m0-done", "m1-done", "m2-done"]
    assert max(model.sizes) > 1 and max(model.sizes) <= 8


def test_concurrent_texts_get_the_labels_they_get_alone(bert_bundle: Path) -> None:
    model = BundleModel(
        bundle.verify_directory(bert_bundle, None), RuntimeConfig(provider="cpu", intra_op_threads=1)
    )
    words = ("scratch", "dent", "ok", "oil", "rim", "flange", "bracket", "surface",
             "housing", "part", "found", "no", "near", "left", "on", "the")  # fmt: skip
    texts = [" ".join(words[i : i + 1 + i % 7]) for i in range(16)]  # lengths differ: padding varies
    alone = [model.predict([text])[0] for text in texts]
    gate, all_submitted = threading.Event(), threading.Barrier(17)

    def run_batch(items: list[str]) -> list[np.ndarray]:
        assert gate.wait(TIMEOUT_S)
        probabilities, _, _ = model.predict_arrays(items)
        assert probabilities is not None
        return list(probabilities)

    batcher: MicroBatcher[str, np.ndarray] = MicroBatcher(run_batch, BatchingConfig(max_batch_size=8))
    batcher.start()
    rows: dict[int, np.ndarray] = {}

    def client(index: int) -> None:
        future = batcher.submit(texts[index])
        all_submitted.wait(TIMEOUT_S)
        rows[index] = future.result(TIMEOUT_S)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(16)]
    for thread in threads:
        thread.start()
    all_submitted.wait(TIMEOUT_S)  # every request is queued before the first batch may run
    gate.set()
    for thread in threads:
        thread.join(TIMEOUT_S)
    batcher.close()
    assert batcher.stats["max_batch_size"] == 8 and batcher.stats["items"] == 16
    for index, prediction in enumerate(alone):
        assert model.labels[int(np.argmax(rows[index]))] == prediction.label
        expected = [prediction.scores[label] for label in model.labels]
        np.testing.assert_allclose(rows[index], expected, rtol=1e-5)


# ---------------------------------------------------------------- overlapping preparation


def test_the_next_batch_is_prepared_while_the_current_one_runs() -> None:
    """With ``prepare``, batch 2 is tokenized while batch 1 is still inside the model."""
    running, release = threading.Event(), threading.Event()
    prepared_during_run: list[bool] = []
    runs: list[tuple[list[str], list[str]]] = []

    def prepare(items: list[str]) -> list[str]:
        prepared_during_run.append(running.is_set() and not release.is_set())
        return [item.upper() for item in items]

    def run(items: list[str], prepared: list[str]) -> list[str]:
        runs.append((list(items), list(prepared)))
        if len(runs) == 1:
            running.set()
            assert release.wait(TIMEOUT_S)
        return prepared

    batcher: MicroBatcher[str, str] = MicroBatcher(run, BatchingConfig(max_wait_ms=0.0), prepare=prepare)
    batcher.start()
    first = batcher.submit("a")
    assert running.wait(TIMEOUT_S)
    second = batcher.submit_many(["b", "c"])
    deadline = time.monotonic() + TIMEOUT_S
    while len(prepared_during_run) < 2 and time.monotonic() < deadline:
        time.sleep(0.005)
    assert prepared_during_run == [False, True]  # batch 2 was prepared before batch 1 finished
    release.set()
    assert first.result(TIMEOUT_S) == "A" and [f.result(TIMEOUT_S) for f in second] == ["B", "C"]
    assert runs == [(["a"], ["A"]), (["b", "c"], ["B", "C"])]
    batcher.close()


def test_a_failed_preparation_fails_its_own_batch_only() -> None:
    def prepare(items: list[str]) -> list[str]:
        if "bad" in items:
            raise GenbaError("cannot tokenize")
        return items

    batcher: MicroBatcher[str, str] = MicroBatcher(
        lambda items, prepared: [f"ok:{p}" for p in prepared], BatchingConfig(), prepare=prepare
    )
    batcher.start()
    with pytest.raises(GenbaError, match="cannot tokenize"):
        batcher.submit("bad").result(TIMEOUT_S)
    assert batcher.submit("good").result(TIMEOUT_S) == "ok:good"
    batcher.close()
    assert batcher.stats["batches"] == 2


def test_close_drains_what_was_prepared() -> None:
    batcher: MicroBatcher[str, str] = MicroBatcher(
        lambda items, prepared: list(prepared), BatchingConfig(), prepare=lambda items: [i * 2 for i in items]
    )
    futures = batcher.submit_many(["x", "y"])  # queued before the worker starts
    batcher.start()
    batcher.close()
    assert [f.result(TIMEOUT_S) for f in futures] == ["xx", "yy"]


def test_prepared_inputs_give_the_same_answers_with_their_tokenizing_time(bert_bundle: Path) -> None:
    model = BundleModel(bundle.verify_directory(bert_bundle, None), RuntimeConfig(provider="cpu"))
    texts = ["scratch on the housing", "no dent found", "oil on the bracket near the rim"]
    prepared = model.prepare(texts)
    direct, _, _ = model.predict_arrays(texts)
    ahead, _, latency = model.predict_arrays(texts, prepared)
    assert direct is not None and ahead is not None
    np.testing.assert_allclose(ahead, direct, rtol=1e-6)
    assert latency >= prepared.ms > 0
    with pytest.raises(ValueError, match="for 3 items"):
        model.predict_arrays(texts[:2], prepared)


def test_an_unknown_overlap_setting_is_refused() -> None:
    with pytest.raises(ConfigError, match="batching.overlap"):
        BatchingConfig(overlap="sometimes")
