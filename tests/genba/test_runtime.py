"""The shared ONNX Runtime layer: provider policy, preprocessing, and parity with torch."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from genba import bundle
from genba.errors import ConfigError, RuntimeLoadError
from genba.runtime import BundleModel, RuntimeConfig
from genba.runtime.sessions import CPU, gpu_visible


def _model(path: Path, **config: object) -> BundleModel:
    return BundleModel(bundle.verify_directory(path, None), RuntimeConfig(**config))  # type: ignore[arg-type]


def test_cpu_policy_runs_on_cpu(bert_bundle: Path) -> None:
    assert _model(bert_bundle, provider="cpu").provider == CPU


def test_auto_policy_says_which_provider_is_active(texts: tuple[str, ...], bert_bundle: Path) -> None:
    model = _model(bert_bundle, provider="auto")
    expected = "CUDAExecutionProvider" if gpu_visible() else CPU
    assert model.provider == expected
    assert {p.provider for p in model.predict(list(texts))} == {expected}


@pytest.mark.skipif(gpu_visible(), reason="this machine has a GPU; the refusal is for CPU-only PCs")
def test_gpu_policy_refuses_to_start_without_cuda(bert_bundle: Path) -> None:
    with pytest.raises(RuntimeLoadError, match="CUDA execution provider did not load"):
        _model(bert_bundle, provider="gpu")


def test_invalid_runtime_config_reports_every_problem() -> None:
    with pytest.raises(ConfigError) as error:
        RuntimeConfig(provider="tpu", intra_op_threads=-1)  # type: ignore[arg-type]
    assert "provider must be one of" in str(error.value) and "intra_op_threads" in str(error.value)


def test_split_bundle_matches_the_torch_classifier(
    texts: tuple[str, ...], bert_bundle: Path, tiny_bert: Path
) -> None:
    import torch
    from transformers import AutoModelForSequenceClassification

    model = _model(bert_bundle, provider="cpu", intra_op_threads=1)
    feeds = model.preprocessor.encode(list(texts))
    ours = model.graphs.run_feeds(feeds)
    torch_model = AutoModelForSequenceClassification.from_pretrained(tiny_bert).eval()
    with torch.inference_mode():
        expected = torch_model(**{k: torch.from_numpy(v) for k, v in feeds.items()}).logits.numpy()
    np.testing.assert_allclose(ours["logits"], expected, atol=1e-4)
    assert ours["embedding"].shape == (len(texts), 32)


def test_batches_are_padded_to_their_longest_item_only(bert_bundle: Path) -> None:
    model = _model(bert_bundle, provider="cpu")
    short = model.preprocessor.encode(["ok"])
    mixed = model.preprocessor.encode(["ok", "scratch on the left rim near the flange"])
    assert short["input_ids"].shape[1] < mixed["input_ids"].shape[1] < 128
    single = model.run(["ok"])["logits"]
    batched = model.run(["ok", "scratch on the left rim near the flange"])["logits"][:1]
    np.testing.assert_allclose(single, batched, atol=1e-5)


def test_predictions_carry_label_score_and_latency(texts: tuple[str, ...], bert_bundle: Path) -> None:
    model = _model(bert_bundle, provider="cpu")
    predictions = model.predict(list(texts))
    assert len(predictions) == len(texts)
    for prediction in predictions:
        assert prediction.label in model.labels
        assert 0.0 < (prediction.score or 0.0) <= 1.0
        assert prediction.latency_ms > 0
        assert abs(sum(prediction.scores.values()) - 1.0) < 1e-5
