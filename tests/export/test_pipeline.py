"""The export pipeline on tiny models built in the test: layouts, variants and gates."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from export import ExportConfig, GateConfig, Tolerance, export_model
from genba import bundle
from genba.errors import GateFailedError, UsageError
from genba.runtime import BundleModel, RuntimeConfig


def _load(path: Path) -> BundleModel:
    return BundleModel(bundle.verify_directory(path, None), RuntimeConfig(provider="cpu"))


def test_bert_classifier_splits_into_backbone_and_fp32_head(bert_bundle: Path) -> None:
    manifest = bundle.verify_directory(bert_bundle, None).manifest
    assert manifest.graphs["backbone"].outputs == ("embedding",)
    assert manifest.graphs["head"].precision == "fp32"
    assert manifest.labels == ("ok", "scratch", "dent")
    assert manifest.input.kind == "text" and manifest.input.max_length == 128
    assert manifest.lineage.parent is None and (manifest.lineage.source or {})["model_type"] == "bert"
    assert {"onnxruntime-gpu", "onnx", "torch", "transformers", "optimum"} <= set(manifest.runtime or ())
    assert (manifest.reference_stats or {})["embedding"]["dim"] == 32
    chosen = (manifest.validation or {})["candidates"][0]
    assert chosen["chosen"] and chosen["gates"]["max_abs_diff"]["passed"]


def test_auto_builds_every_candidate_and_keeps_the_fastest_passing_one(
    tiny_bert: Path, text_eval_file: Path, tmp_path: Path
) -> None:
    result = export_model(
        ExportConfig(
            model_dir=tiny_bert,
            task="text-classification",
            out=tmp_path / "auto",
            precision="auto",
            eval=text_eval_file,
            calibration=text_eval_file,
        )
    )
    report = result.report
    names = {c["name"] for c in report["candidates"]}
    assert {"fp32", "int8-per-channel", "int8-mixed", "int8-per-tensor", "int8-static"} <= names
    assert any(s["name"] == "fp16" for s in report["skipped"]) or "fp16" in names
    passing = [c for c in report["candidates"] if c["passed"]]
    chosen = next(c for c in report["candidates"] if c["chosen"])
    assert chosen["latency_ms_b1"] == min(c["latency_ms_b1"] for c in passing)
    assert "accuracy_drop_pts" in chosen["gates"] and report["torch_accuracy"] is not None
    assert result.manifest.precision is not None and result.manifest.precision.variant == chosen["name"]


def test_a_failing_gate_fails_the_export_and_leaves_no_bundle(tiny_bert: Path, tmp_path: Path) -> None:
    strict = GateConfig(tolerances={"int8": Tolerance(max_abs_diff=None, min_mean_cosine=1.0)})
    out = tmp_path / "refused"
    with pytest.raises(GateFailedError, match="no variant passed its gates") as failure:
        export_model(
            ExportConfig(
                model_dir=tiny_bert, task="text-classification", out=out, precision="int8", gates=strict
            )
        )
    candidates = failure.value.report["candidates"]
    assert {c["name"] for c in candidates} == {"int8-per-channel", "int8-mixed", "int8-per-tensor"}
    assert all(not c["gates"]["mean_cosine"]["passed"] for c in candidates)
    assert list(tmp_path.iterdir()) == []


def test_the_accuracy_gate_compares_with_torch(tiny_bert: Path, text_eval_file: Path, tmp_path: Path) -> None:
    # fp32 matches torch exactly, so it can never beat it by a point: the gate must refuse.
    with pytest.raises(GateFailedError, match="accuracy_drop_pts"):
        export_model(
            ExportConfig(
                model_dir=tiny_bert,
                task="text-classification",
                out=tmp_path / "b",
                precision="fp32",
                eval=text_eval_file,
                gates=GateConfig(max_accuracy_drop_pts=-1.0),
            )
        )
    passed = export_model(
        ExportConfig(
            model_dir=tiny_bert,
            task="text-classification",
            out=tmp_path / "ok",
            precision="fp32",
            eval=text_eval_file,
        )
    )
    gate = passed.report["candidates"][0]["gates"]["accuracy_drop_pts"]
    assert gate == {"value": 0.0, "limit": 1.0, "passed": True}


def test_vit_classifier_exports_and_predicts_images(tiny_vit: Path, tmp_path: Path) -> None:
    from PIL import Image

    result = export_model(
        ExportConfig(model_dir=tiny_vit, task="image-classification", out=tmp_path / "vit", precision="fp32")
    )
    assert set(result.manifest.graphs) == {"backbone", "head"}
    assert result.manifest.input.kind == "image"
    image = tmp_path / "part.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (48, 40, 3), dtype=np.uint8)).save(image)
    (prediction,) = _load(result.bundle).predict([image])
    assert prediction.label in ("ok", "crack")


def test_feature_extraction_bundle_serves_pooled_embeddings(
    texts: tuple[str, ...], tiny_encoder: Path, tmp_path: Path
) -> None:
    result = export_model(
        ExportConfig(model_dir=tiny_encoder, task="feature-extraction", out=tmp_path / "fe", precision="fp32")
    )
    assert set(result.manifest.graphs) == {"backbone"} and result.manifest.labels is None
    predictions = _load(result.bundle).predict(list(texts))
    assert {p.embedding_size for p in predictions} == {32}


def test_labels_override_names_but_must_match_the_output_count(tiny_bert: Path, tmp_path: Path) -> None:
    renamed = export_model(
        ExportConfig(
            model_dir=tiny_bert,
            task="text-classification",
            out=tmp_path / "r",
            precision="fp32",
            labels=("good", "scratched", "dented"),
        )
    )
    assert renamed.manifest.labels == ("good", "scratched", "dented")
    with pytest.raises(UsageError, match="label count mismatch: the model has 3 outputs"):
        export_model(
            ExportConfig(
                model_dir=tiny_bert, task="text-classification", out=tmp_path / "m", labels=("a", "b")
            )
        )
