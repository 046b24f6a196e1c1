"""The embedded default: MiniLM with a head trained on the central split, as ``make demo`` builds it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from export.datasets import LABELS
from export.default_model import default_central_split
from genba import bundle, keys
from genba.demo.default_bundle import run_demo
from genba.runtime import BundleModel, RuntimeConfig


@pytest.fixture(scope="module")
def demo_out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("demo-out")
    assert run_demo(out) == 0
    return out


@pytest.mark.slow
def test_demo_builds_a_signed_int8_bundle_that_verifies(
    demo_out: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (path,) = (demo_out / "bundles").iterdir()
    trusted = [keys.load_public_key(demo_out / "keys" / "it-sign.pem.pub")]
    manifest = bundle.verify_directory(path, trusted).manifest
    assert manifest["precision"]["backbone"] == "int8"
    assert manifest["labels"] == list(LABELS)
    assert manifest["graphs"]["head"]["precision"] == "fp32"
    chosen = next(c for c in manifest["validation"]["candidates"] if c["chosen"])
    assert chosen["passed"] and chosen["accuracy_delta_pts"] <= 1.0
    backbone_bytes = manifest["files"]["backbone.onnx"]["bytes"]
    fp32 = next(c for c in manifest["validation"]["candidates"] if c["name"] == "fp32")
    assert backbone_bytes <= 0.3 * fp32["file_bytes"]


@pytest.mark.slow
def test_default_head_is_a_real_classifier(demo_out: Path) -> None:
    (path,) = (demo_out / "bundles").iterdir()
    model = BundleModel(bundle.verify_directory(path, None), RuntimeConfig(provider="cpu"))
    reports = default_central_split(seed=0).eval
    predictions = [
        p.label
        for i in range(0, len(reports), 32)
        for p in model.predict([r.text for r in reports[i : i + 32]])
    ]
    accuracy = sum(p == r.label for p, r in zip(predictions, reports, strict=True)) / len(reports)
    assert accuracy >= 0.6, f"default head accuracy {accuracy:.3f} is barely above chance (1/6)"
    manifest_accuracy = next(c for c in model.manifest["validation"]["candidates"] if c["chosen"])["accuracy"]
    assert abs(accuracy - manifest_accuracy) < 1e-6
    report = json.loads((demo_out / "data" / "central-eval.jsonl").read_text().splitlines()[0])
    assert set(report) >= {"text", "label"}
