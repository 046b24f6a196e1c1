"""Tokenizing a large batch on several threads gives exactly what one thread gives."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from export.datasets import central_split
from genba import bundle
from genba.runtime import BundleModel, RuntimeConfig
from genba.runtime.preprocess import MIN_TEXTS_PER_THREAD, TextPreprocessor


def _preprocessor(bert_bundle: Path, threads: int) -> TextPreprocessor:
    spec = bundle.verify_directory(bert_bundle, None).manifest.input.to_json()
    return TextPreprocessor(bert_bundle / spec["tokenizer"], spec, threads)


def test_threads_give_the_same_arrays_in_the_same_order(bert_bundle: Path) -> None:
    texts = [report.text for report in central_split(seed=3, n_eval=300).eval]
    texts[7] = "word " * 400  # truncated to max_length on whichever thread gets it
    serial = _preprocessor(bert_bundle, 1).encode(texts)
    for threads in (2, 3, 8):
        parallel = _preprocessor(bert_bundle, threads).encode(texts)
        assert parallel.keys() == serial.keys()
        for name in serial:
            np.testing.assert_array_equal(parallel[name], serial[name])


def test_padding_and_truncation_are_exact(bert_bundle: Path) -> None:
    pre = _preprocessor(bert_bundle, 4)
    texts = ["scratch", "dent on the rim of the housing near part 4411", "word " * 400]
    feeds = pre.encode(texts)
    lengths = feeds["attention_mask"].sum(axis=1)
    assert feeds["input_ids"].shape == (3, pre.max_length) and lengths[2] == pre.max_length
    assert lengths[0] < lengths[1] < lengths[2]
    assert (feeds["input_ids"][feeds["attention_mask"] == 0] == pre.pad_id).all()
    fixed = pre.encode(texts[:2], pad_to=64)
    assert fixed["input_ids"].shape == (2, 64)
    np.testing.assert_array_equal(
        fixed["input_ids"][:, : feeds["input_ids"].shape[1]][:, :10], feeds["input_ids"][:2, :10]
    )


def test_small_batches_stay_on_the_callers_thread(bert_bundle: Path) -> None:
    pre = _preprocessor(bert_bundle, 8)
    pre.encode(["one report"] * (2 * MIN_TEXTS_PER_THREAD - 1))
    assert pre._pool is None  # fewer than two chunks' worth: no pool was ever started
    pre.encode(["one report"] * (2 * MIN_TEXTS_PER_THREAD))
    assert pre._pool is not None


def test_the_runtime_setting_reaches_the_model(bert_bundle: Path) -> None:
    model = BundleModel(
        bundle.verify_directory(bert_bundle, None), RuntimeConfig(provider="cpu", tokenizer_threads=3)
    )
    assert isinstance(model.preprocessor, TextPreprocessor) and model.preprocessor.threads == 3


def test_automatic_threads_tokenize_in_parallel_only_where_cuda_serves(bert_bundle: Path) -> None:
    from genba.runtime.model import AUTO_TOKENIZER_THREADS, tokenizer_threads
    from genba.runtime.placement import CPU, CUDA

    automatic = RuntimeConfig(provider="cpu")
    assert automatic.tokenizer_threads == 0
    assert tokenizer_threads(automatic, CPU) == 1  # ONNX Runtime already uses the cores
    assert 1 <= tokenizer_threads(automatic, CUDA) <= AUTO_TOKENIZER_THREADS
    assert tokenizer_threads(RuntimeConfig(tokenizer_threads=5), CPU) == 5
    model = BundleModel(bundle.verify_directory(bert_bundle, None), automatic)
    assert isinstance(model.preprocessor, TextPreprocessor) and model.preprocessor.threads == 1
