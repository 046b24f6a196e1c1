"""IO binding gives the same answers as plain ``session.run``, in every graph layout."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from genba import bundle
from genba.errors import ConfigError
from genba.runtime import BundleModel, GraphSet, RuntimeConfig
from genba.runtime.sessions import gpu_visible


def _model(path: Path, io_binding: str) -> BundleModel:
    config = RuntimeConfig(provider="cpu", intra_op_threads=1, io_binding=io_binding)  # type: ignore[arg-type]
    return BundleModel(bundle.verify_directory(path, None), config)


def _graph_bytes(path: Path) -> dict[str, bytes]:
    manifest = bundle.verify_directory(path, None).manifest
    return {role: (path / spec.file).read_bytes() for role, spec in manifest.graphs.items()}


def _single_graph(graphs: dict[str, bytes]) -> bytes:
    """Backbone and head merged into one graph with both outputs, as a one-graph bundle would hold."""
    import onnx
    from onnx import compose

    backbone, head = (onnx.load_from_string(graphs[role]) for role in ("backbone", "head"))
    head = compose.add_prefix(head, prefix="head_", rename_inputs=False, rename_outputs=False)
    head.ir_version = backbone.ir_version = max(backbone.ir_version, head.ir_version)
    merged = compose.merge_models(
        backbone, head, io_map=[("embedding", "embedding")], outputs=["embedding", "logits"]
    )
    return merged.SerializeToString()


def _assert_same(bound: dict[str, np.ndarray], plain: dict[str, np.ndarray]) -> None:
    assert list(bound) == list(plain)
    for name in plain:
        assert bound[name].dtype == plain[name].dtype
        np.testing.assert_allclose(bound[name], plain[name], rtol=1e-6)


def test_bound_split_bundle_matches_plain_run(
    texts: tuple[str, ...], bert_bundle: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import onnxruntime

    bound, plain = _model(bert_bundle, "on"), _model(bert_bundle, "off")
    assert bound.io_binding and not plain.io_binding
    batches = (list(texts), [texts[0]])
    expected = [plain.run(batch) for batch in batches]

    def plain_run_refused(*args: object, **kwargs: object) -> None:
        raise AssertionError("the bound path called session.run")

    monkeypatch.setattr(onnxruntime.InferenceSession, "run", plain_run_refused)
    for batch, plain_outputs in zip(batches, expected, strict=True):
        _assert_same(bound.run(batch), plain_outputs)


def test_bound_predictions_match_plain_predictions(texts: tuple[str, ...], bert_bundle: Path) -> None:
    bound, plain = _model(bert_bundle, "on"), _model(bert_bundle, "off")
    assert [p.label for p in bound.predict(list(texts))] == [p.label for p in plain.predict(list(texts))]
    bound_probabilities, bound_embedding, _ = bound.predict_arrays(list(texts))
    plain_probabilities, plain_embedding, _ = plain.predict_arrays(list(texts))
    assert bound_probabilities is not None and plain_probabilities is not None
    np.testing.assert_allclose(bound_probabilities, plain_probabilities, rtol=1e-6)
    np.testing.assert_allclose(bound_embedding, plain_embedding, rtol=1e-6)  # type: ignore[arg-type]


def test_bound_backbone_without_head_matches_plain_run(texts: tuple[str, ...], bert_bundle: Path) -> None:
    backbone = {"backbone": _graph_bytes(bert_bundle)["backbone"]}
    bound = GraphSet(backbone, RuntimeConfig(provider="cpu", intra_op_threads=1, io_binding="on"))
    plain = GraphSet(backbone, RuntimeConfig(provider="cpu", intra_op_threads=1, io_binding="off"))
    feeds = _model(bert_bundle, "off").preprocessor.encode(list(texts))
    result = bound.run_feeds(feeds)
    assert set(result) == {"embedding"}
    _assert_same(result, plain.run_feeds(feeds))


def test_bound_single_graph_matches_plain_run(texts: tuple[str, ...], bert_bundle: Path) -> None:
    single = {"model": _single_graph(_graph_bytes(bert_bundle))}
    bound = GraphSet(single, RuntimeConfig(provider="cpu", intra_op_threads=1, io_binding="on"))
    plain = GraphSet(single, RuntimeConfig(provider="cpu", intra_op_threads=1, io_binding="off"))
    assert bound.layout == "single" and bound.io_binding
    feeds = _model(bert_bundle, "off").preprocessor.encode(list(texts))
    result = bound.run_feeds(feeds)
    assert set(result) == {"embedding", "logits"}
    _assert_same(result, plain.run_feeds(feeds))
    split_logits = _model(bert_bundle, "off").run(list(texts))["logits"]
    np.testing.assert_allclose(result["logits"], split_logits, rtol=1e-5)


@pytest.mark.skipif(gpu_visible(), reason="on a GPU machine auto may land on CUDA and bind")
def test_auto_binds_only_on_cuda(bert_bundle: Path) -> None:
    assert not _model(bert_bundle, "auto").io_binding


def test_predict_arrays_agrees_with_predict(texts: tuple[str, ...], bert_bundle: Path) -> None:
    model = _model(bert_bundle, "off")
    probabilities, embedding, latency_ms = model.predict_arrays(list(texts))
    predictions = model.predict(list(texts))
    assert probabilities is not None and embedding is not None and latency_ms > 0
    assert probabilities.shape == (len(texts), len(model.labels)) and embedding.shape == (len(texts), 32)
    for row, prediction in zip(probabilities, predictions, strict=True):
        assert prediction.label == model.labels[int(np.argmax(row))]
        assert prediction.score == pytest.approx(float(row.max()))


def test_io_binding_setting_is_validated_with_the_others() -> None:
    with pytest.raises(ConfigError) as error:
        RuntimeConfig(io_binding="always", inter_op_threads=0)  # type: ignore[arg-type]
    assert "io_binding must be one of auto, on, off" in str(error.value)
    assert "inter_op_threads" in str(error.value)
