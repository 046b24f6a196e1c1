"""A backbone variant per target in one signed bundle, and which one a machine serves."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from export import ExportConfig, export_model
from genba import bundle, keys
from genba.bundle import BundleWriter
from genba.errors import BundleFormatError, ConfigError, IntegrityError, PlacementError, SignatureError
from genba.runtime import BundleModel, RuntimeConfig, targets
from genba.runtime.placement import KernelTable
from genba.variants import variants_of

#: CUDA kernels for what the tiny BERT's fp16 graph uses, and no dynamic int8 operators.
FP16_ONLY = KernelTable.from_json(
    {
        "onnxruntime": "1.31.1",  # the pinned onnxruntime-gpu: a table for another release is ignored
        "kernels": {
            f"{domain}|{op}": [[1, 10_000, ["float", "float16", "int64", "int32", "bool"]]]
            for domain, op in [
                ("com.microsoft", "Attention"),
                ("com.microsoft", "EmbedLayerNormalization"),
                ("com.microsoft", "SkipLayerNormalization"),
                ("com.microsoft", "BiasGelu"),
                ("com.microsoft", "FastGelu"),
                ("com.microsoft", "Gelu"),
                ("", "MatMul"),
                ("", "Add"),
                ("", "Cast"),
                ("", "Gemm"),
                ("", "ReduceSum"),
                ("", "ReduceMean"),
                ("", "Div"),
                ("", "Mul"),
                ("", "Sub"),
                ("", "Unsqueeze"),
                ("", "Shape"),
                ("", "Gather"),
                ("", "Clip"),
                ("", "Expand"),
                ("", "Max"),
                ("", "Sqrt"),
                ("", "Pow"),
                ("", "Concat"),
                ("", "Reshape"),
                ("", "Slice"),
                ("", "Squeeze"),
                ("", "Where"),
                ("", "Equal"),
                ("", "ConstantOfShape"),
                ("", "LayerNormalization"),
                ("", "Softmax"),
                ("", "Transpose"),
                ("", "Tanh"),
                ("", "Erf"),
                ("", "Identity"),
                ("", "ReduceL2"),
            ]
        },
    }
)


@pytest.fixture(scope="module")
def int8_bundle(
    tiny_bert: Path, keypair: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """cpu target int8 plus cuda target fp16, signed."""
    out = tmp_path_factory.mktemp("variants") / "two"
    config = ExportConfig(
        model_dir=tiny_bert,
        task="text-classification",
        out=out,
        precision="int8",
        variant="int8-per-channel",
        signing_key=keypair[0],
    )
    return export_model(config).bundle


def _manifest(path: Path) -> bundle.Manifest:
    return bundle.verify_directory(path, None).manifest


def _rewritten(
    source: Path, out: Path, edit: Any, drop: set[str] = frozenset(), key: Path | None = None
) -> Path:
    """``source``'s files (but ``drop``) under an edited manifest, signed with ``key`` if given."""
    manifest = _manifest(source)
    kept = edit({k: v for k, v in manifest.to_json().items() if k not in {"files", "signer"}})
    with BundleWriter(out) as writer:
        for name in manifest.files:
            if name not in drop:
                (writer.root / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(source / name, writer.root / name)
        writer.commit(kept, keys.load_private_key(key) if key else None)
    return out


def _single_variant(source: Path, out: Path, key: Path | None = None) -> Path:
    """The bundle as Genba wrote it before variants: the cpu graphs only, no ``variants``."""

    def edit(manifest: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in manifest.items() if k != "variants"}

    return _rewritten(source, out, edit, drop={"backbone-cuda.onnx"}, key=key)


def test_a_bundle_carries_a_cpu_and_a_cuda_variant_each_gated_against_torch(int8_bundle: Path) -> None:
    manifest = _manifest(int8_bundle)
    cpu, cuda = (manifest.to_json()["variants"][target] for target in ("cpu", "cuda"))
    assert cpu["graphs"] == manifest.to_json()["graphs"] and cpu["precision"]["variant"] == "int8-per-channel"
    assert cuda["provider"] == "CUDAExecutionProvider" and cuda["precision"]["backbone"] == "fp16"
    assert cuda["graphs"]["backbone"]["file"] == "backbone-cuda.onnx"
    assert cuda["graphs"]["head"] == cpu["graphs"]["head"]  # one fp32 head, shared
    report = cuda["validation"]["report"]
    assert report["provider"] == "CPUExecutionProvider" and report["passed"]
    assert report["gates"]["max_abs_diff"]["passed"] and report["mean_cosine"] > 0.999
    assert {"backbone.onnx", "backbone-cuda.onnx", "head.onnx"} <= set(manifest.files)


def test_without_cuda_the_cpu_variant_serves_on_the_cpu(int8_bundle: Path, texts: tuple[str, ...]) -> None:
    for provider in ("auto", "cpu"):
        model = BundleModel(bundle.verify_directory(int8_bundle, None), RuntimeConfig(provider=provider))
        assert (model.variant, model.provider) == ("cpu", "CPUExecutionProvider")
        assert model.served.to_json()["precision"] == "int8-per-channel"
        assert len(model.predict(list(texts))) == len(texts)


def test_a_modified_cuda_graph_is_refused(int8_bundle: Path, tmp_path: Path) -> None:
    copy = Path(shutil.copytree(int8_bundle, tmp_path / "b"))
    data = bytearray((copy / "backbone-cuda.onnx").read_bytes())
    data[-10] ^= 0xFF
    (copy / "backbone-cuda.onnx").write_bytes(bytes(data))
    with pytest.raises(IntegrityError):
        bundle.verify_directory(copy, None)


def test_a_variants_table_changed_after_signing_is_refused(
    int8_bundle: Path, keypair: tuple[Path, Path], tmp_path: Path
) -> None:
    copy = Path(shutil.copytree(int8_bundle, tmp_path / "b"))
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["variants"]["cuda"]["graphs"]["backbone"]["file"] = "backbone.onnx"  # serve int8 on CUDA
    (copy / "manifest.json").write_bytes(bundle.canonical_bytes(manifest))
    with pytest.raises(SignatureError):
        bundle.verify_directory(copy, [keys.load_public_key(keypair[1])])


def test_a_cpu_variant_that_contradicts_the_graphs_is_refused(int8_bundle: Path, tmp_path: Path) -> None:
    def edit(manifest: dict[str, Any]) -> dict[str, Any]:
        manifest["variants"]["cpu"]["graphs"] = manifest["variants"]["cuda"]["graphs"]
        return manifest

    with pytest.raises(BundleFormatError, match="cpu variant"):
        variants_of(_manifest(_rewritten(int8_bundle, tmp_path / "b", edit)))


def test_an_older_single_variant_bundle_is_still_served(
    int8_bundle: Path, keypair: tuple[Path, Path], tmp_path: Path, texts: tuple[str, ...]
) -> None:
    old = _single_variant(int8_bundle, tmp_path / "old", key=keypair[0])
    verified = bundle.verify_directory(old, [keys.load_public_key(keypair[1])])
    model = BundleModel(verified, RuntimeConfig(provider="auto"))
    assert model.variant == "default" and model.provider == "CPUExecutionProvider"
    assert [p.label for p in model.predict(list(texts))] == [
        p.label for p in BundleModel(bundle.verify_directory(int8_bundle, None)).predict(list(texts))
    ]


def test_gpu_refuses_a_bundle_whose_compute_ops_would_fall_back_naming_them(
    int8_bundle: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The placement check decides before any CUDA session: no GPU is needed to refuse."""
    monkeypatch.setattr(targets, "kernel_table", lambda: FP16_ONLY)
    old = bundle.verify_directory(_single_variant(int8_bundle, tmp_path / "old"), None)
    with pytest.raises(PlacementError) as refused:
        BundleModel(old, RuntimeConfig(provider="gpu"))
    message = str(refused.value)
    assert "\n" not in message and "MatMulInteger" in message and "DynamicQuantizeLinear" in message
    assert "--targets cpu,cuda" in message


def test_auto_on_a_gpu_machine_serves_the_cpu_variant_when_the_gpu_one_would_fall_back(
    int8_bundle: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(targets, "kernel_table", lambda: FP16_ONLY)
    monkeypatch.setattr(targets, "cuda_possible", lambda config: True)  # as on a PC with a GPU
    old = bundle.verify_directory(_single_variant(int8_bundle, tmp_path / "old"), None)
    model = BundleModel(old, RuntimeConfig(provider="auto"))
    assert model.provider == "CPUExecutionProvider"
    assert "MatMulInteger" in model.served.reason and "on the CPU" in model.served.reason
    assert model.served.to_json()["predicted_placement"]["compute_ops_on_cpu"] > 0


def test_the_cuda_variant_of_a_two_variant_bundle_passes_the_prediction(
    int8_bundle: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(targets, "kernel_table", lambda: FP16_ONLY)
    verified = bundle.verify_directory(int8_bundle, None)
    predicted = targets.predicted_placement(
        targets.graph_bytes(verified, variants_of(verified.manifest)["cuda"])
    )
    assert predicted is not None and not predicted.compute_falls_back, predicted.to_json()
    cpu = targets.predicted_placement(targets.graph_bytes(verified, variants_of(verified.manifest)["cpu"]))
    assert cpu is not None and cpu.compute_falls_back


def test_a_cuda_only_export_is_still_a_bundle_every_machine_can_serve(
    tiny_bert: Path, tmp_path: Path, texts: tuple[str, ...]
) -> None:
    result = export_model(
        ExportConfig(model_dir=tiny_bert, task="text-classification", out=tmp_path / "c", targets=("cuda",))
    )
    manifest = result.manifest
    assert (
        set(manifest.variants or ()) == {"cuda"}
        and manifest.graphs["backbone"].file == "backbone-cuda.onnx"
    )
    model = BundleModel(bundle.verify_directory(result.bundle, None), RuntimeConfig(provider="cpu"))
    assert model.variant == "cuda" and len(model.predict(list(texts))) == len(texts)


def test_unknown_or_repeated_targets_are_refused(tiny_bert: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown targets"):
        ExportConfig(model_dir=tiny_bert, task="text-classification", out=tmp_path / "x", targets=("tpu",))
    with pytest.raises(ConfigError, match="each target once"):
        ExportConfig(model_dir=tiny_bert, task="text-classification", out=tmp_path / "x", targets=())


def test_a_failing_cuda_variant_is_left_out_unless_it_was_asked_for(tiny_bert: Path, tmp_path: Path) -> None:
    from dataclasses import replace

    from export import GateConfig, Tolerance
    from genba.errors import GateFailedError

    gates = GateConfig()
    impossible = replace(gates, tolerances={**gates.tolerances, "fp16": Tolerance(0.0, 1.01)})
    base = {"model_dir": tiny_bert, "task": "text-classification", "precision": "fp32", "gates": impossible}
    result = export_model(ExportConfig(out=tmp_path / "default", **base))  # type: ignore[arg-type]
    assert (
        set(result.manifest.variants or ()) == {"cpu"} and "backbone-cuda.onnx" not in result.manifest.files
    )
    assert "mean_cosine" in result.report["skipped_targets"]["cuda"]
    with pytest.raises(GateFailedError, match="cuda target"):
        export_model(ExportConfig(out=tmp_path / "asked", targets=("cpu", "cuda"), **base))  # type: ignore[arg-type]
    assert not (tmp_path / "asked").exists()


@pytest.mark.parametrize(
    ("entry", "problem"),
    [
        ("not a mapping", "malformed"),
        ({"provider": "CUDAExecutionProvider"}, "malformed"),
        ({"graphs": {"backbone": {"precision": "fp16"}}}, "malformed"),
        ({"graphs": {"model": {"file": "backbone-cuda.onnx"}}}, "layouts"),
    ],
)
def test_a_malformed_variants_table_is_refused_as_a_bundle_error(
    int8_bundle: Path, tmp_path: Path, entry: Any, problem: str
) -> None:
    def edit(manifest: dict[str, Any]) -> dict[str, Any]:
        manifest["variants"]["cuda"] = entry
        return manifest

    with pytest.raises(BundleFormatError, match=problem):
        variants_of(_manifest(_rewritten(int8_bundle, tmp_path / "b", edit)))


def test_graphs_that_are_none_of_the_variants_are_refused(int8_bundle: Path, tmp_path: Path) -> None:
    """Old agents serve the top-level graphs, new ones a variant: they must not differ."""

    def edit(manifest: dict[str, Any]) -> dict[str, Any]:
        del manifest["variants"]["cpu"]
        return manifest

    with pytest.raises(BundleFormatError, match="none of its variants"):
        variants_of(_manifest(_rewritten(int8_bundle, tmp_path / "b", edit)))


def test_a_kernel_table_for_another_onnxruntime_predicts_nothing(
    int8_bundle: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stale = KernelTable(onnxruntime="0.0.1", kernels=FP16_ONLY.kernels)
    monkeypatch.setattr(targets, "kernel_table", lambda: stale)
    verified = bundle.verify_directory(int8_bundle, None)
    assert (
        targets.predicted_placement(targets.graph_bytes(verified, variants_of(verified.manifest)["cpu"]))
        is None
    )
