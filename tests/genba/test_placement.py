"""Placement on CUDA: measured from a real ONNX Runtime profile, predicted from a kernel table.

This machine has no GPU, so the measured side is exercised on real CPU profiles (every node then
ran on the CPU: the classifier must still tell shape work from compute), and the predicted side
decides on graphs built here whose operators have, or lack, a kernel in the table.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper

from genba.runtime import placement
from genba.runtime.config import RuntimeConfig
from genba.runtime.placement import CPU, CUDA, KernelTable, NodePlace, assess, predict, read_profile
from genba.runtime.sessions import session_options

#: A CUDA kernel table shaped like the recorded one: float MatMul, int8-only MatMulInteger, no
#: DynamicQuantizeLinear at all, and the shape operators.
TABLE = KernelTable.from_json(
    {
        "onnxruntime": "test",
        "kernels": {
            "|MatMul": [[13, 10_000, ["float", "float16", "double"]]],
            "|MatMulInteger": [[10, 10_000, ["int8", "int32"]]],
            "|Cast": [[13, 10_000, ["float", "float16", "int64", "int32"]]],
            "|Shape": [[15, 10_000, ["float", "float16", "int64"]]],
            "|Gather": [[13, 10_000, ["float", "float16", "int64", "int32"]]],
            "|Unsqueeze": [[13, 10_000, ["float", "float16", "int64"]]],
            "|Relu": [[14, 10_000, ["float", "float16"]]],
        },
    }
)


def _int8_graph() -> bytes:
    """x (float) → DynamicQuantizeLinear → MatMulInteger (uint8 × int8) → Cast: a dynamic int8 layer."""
    weight = helper.make_tensor("w", TensorProto.INT8, [4, 3], np.arange(12, dtype=np.int8).tolist())
    zero = helper.make_tensor("w_zero", TensorProto.INT8, [], [0])
    nodes = [
        helper.make_node("DynamicQuantizeLinear", ["x"], ["xq", "scale", "xzero"], name="quantize"),
        helper.make_node("MatMulInteger", ["xq", "w", "xzero", "w_zero"], ["acc"], name="matmul_integer"),
        helper.make_node("Cast", ["acc"], ["y"], to=TensorProto.FLOAT, name="cast"),
        helper.make_node("Shape", ["x"], ["shape"], name="shape"),
        helper.make_node("Gather", ["shape", "zero_index"], ["rows"], axis=0, name="gather_rows"),
    ]
    graph = helper.make_graph(
        nodes,
        "int8",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])],
        [
            helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 3]),
            helper.make_tensor_value_info("rows", TensorProto.INT64, []),
        ],
        [weight, zero, helper.make_tensor("zero_index", TensorProto.INT64, [], [0])],
    )
    return _model(graph)


def _float_graph(elem: int = TensorProto.FLOAT16) -> bytes:
    weight = helper.make_tensor("w", elem, [4, 3], np.ones(12, dtype=np.float16).astype(float).tolist())
    nodes = [
        helper.make_node("Cast", ["x"], ["xh"], to=elem, name="to_half"),
        helper.make_node("MatMul", ["xh", "w"], ["h"], name="matmul"),
        helper.make_node("Relu", ["h"], ["r"], name="relu"),
        helper.make_node("Cast", ["r"], ["y"], to=TensorProto.FLOAT, name="to_float"),
    ]
    graph = helper.make_graph(
        nodes,
        "fp16",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 3])],
        [weight],
    )
    return _model(graph)


def _model(graph: onnx.GraphProto) -> bytes:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    onnx.checker.check_model(model)
    return bytes(model.SerializeToString())


def _profiled_cpu_run(graph: bytes, tmp_path: Path) -> list[NodePlace]:
    import onnxruntime as ort

    options = session_options(
        RuntimeConfig(provider="cpu", graph_optimization="disabled"), str(tmp_path / "p")
    )
    session = ort.InferenceSession(graph, sess_options=options, providers=[CPU])
    session.run(None, {"x": np.array([[0.5, -1.0, 2.0, 0.25]], dtype=np.float32)})
    return read_profile(Path(session.end_profiling()))


def test_a_real_profile_names_every_node_with_its_provider_operator_and_output_types(tmp_path: Path) -> None:
    nodes = {node.name: node for node in _profiled_cpu_run(_int8_graph(), tmp_path)}
    assert set(nodes) == {"quantize", "matmul_integer", "cast", "shape", "gather_rows"}
    assert {node.provider for node in nodes.values()} == {CPU}
    assert nodes["matmul_integer"].op_type == "MatMulInteger" and nodes["matmul_integer"].output_types == (
        "int32",
    )
    assert nodes["shape"].output_types == ("int64",)


def test_compute_on_the_cpu_is_named_and_shape_work_is_not(tmp_path: Path) -> None:
    report = assess(_profiled_cpu_run(_int8_graph(), tmp_path), CUDA, "measured")
    # MatMulInteger outputs integers too: it is compute because it is not a shape operator.
    assert report.compute_on_cpu == {"DynamicQuantizeLinear": 1, "MatMulInteger": 1, "Cast": 1}
    assert report.shape_on_cpu == {"Shape": 1, "Gather": 1}
    assert report.compute_falls_back and report.nodes_on_cpu == 5 and report.on_target == 0
    assert "MatMulInteger x1" in report.describe()


def test_a_graph_placed_on_cuda_but_for_its_shape_ops_passes() -> None:
    nodes = [
        NodePlace("attention", "Attention", CUDA, ("float16",)),
        NodePlace("matmul", "MatMul", CUDA, ("float16",)),
        NodePlace("mask_shape", "Gather", CPU, ("int64",)),
        NodePlace("mask_where", "Where", CPU, ("int64",)),
    ]
    report = assess(nodes, CUDA, "measured")
    assert not report.compute_falls_back
    assert report.to_json()["nodes_on_cpu"] == 2 and report.to_json()["compute_ops_on_cpu"] == 0


def test_a_shape_operator_on_float_data_counts_as_compute() -> None:
    report = assess([NodePlace("embeddings", "Gather", CPU, ("float",))], CUDA, "measured")
    assert report.compute_on_cpu == {"Gather": 1}


def test_prediction_names_the_operators_without_a_cuda_kernel_for_their_types() -> None:
    report = predict(_int8_graph(), TABLE)
    assert report.source == "predicted"
    # No DynamicQuantizeLinear kernel at all; MatMulInteger exists but not for uint8 activations.
    assert report.compute_on_cpu == {"DynamicQuantizeLinear": 1, "MatMulInteger": 1}


def test_prediction_passes_a_graph_whose_operators_all_have_kernels() -> None:
    report = predict(_float_graph(), TABLE)
    assert not report.compute_falls_back and report.on_target == report.nodes == 4


def test_an_operator_version_outside_the_kernel_range_is_not_supported() -> None:
    table = KernelTable.from_json({"onnxruntime": "t", "kernels": {"|MatMul": [[1, 12, ["float16"]]]}})
    assert not table.supports("", "MatMul", 18, ["float16"])
    assert table.supports("ai.onnx", "MatMul", 12, ["float16", None])


def test_the_recorded_kernel_table_refuses_dynamic_int8_and_passes_fp16() -> None:
    table = placement.kernel_table()
    assert table is not None and table.onnxruntime == "1.31.1"  # the pinned onnxruntime-gpu
    assert predict(_int8_graph(), table).compute_on_cpu == {"DynamicQuantizeLinear": 1, "MatMulInteger": 1}
    assert not predict(_float_graph(), table).compute_falls_back


def test_the_recorded_table_predicts_what_the_device_measured_for_bert_int8_and_fp16(
    tiny_bert: Path, tmp_path: Path
) -> None:
    """On the H200, MiniLM's int8 backbone left DynamicQuantizeLinear, MatMulInteger, QAttention
    and QEmbedLayerNormalization on the CPU and its fp16 backbone no compute operator
    (docs/bench/gpu_serving.json); the same fused BERT graphs built here must predict the same."""
    from export import ExportConfig, export_model

    table = placement.kernel_table()
    assert table is not None
    result = export_model(
        ExportConfig(model_dir=tiny_bert, task="text-classification", out=tmp_path / "b", precision="int8",
                     variant="int8-per-channel")
    )  # fmt: skip
    int8 = predict((result.bundle / "backbone.onnx").read_bytes(), table)
    fp16 = predict((result.bundle / "backbone-cuda.onnx").read_bytes(), table)
    assert set(int8.compute_on_cpu) == {
        "DynamicQuantizeLinear",
        "MatMulInteger",
        "QAttention",
        "QEmbedLayerNormalization",
    }
    assert not fp16.compute_falls_back and fp16.on_target == fp16.nodes


def test_constant_nodes_need_no_kernel() -> None:
    """ORT folds Constant nodes into initializers at load: they run nowhere, on neither provider."""
    nodes = [
        helper.make_node(
            "Constant", [], ["w"], value=helper.make_tensor("v", TensorProto.FLOAT16, [4, 3], [1.0] * 12)
        ),
        helper.make_node("Cast", ["x"], ["xh"], to=TensorProto.FLOAT16, name="to_half"),
        helper.make_node("MatMul", ["xh", "w"], ["y16"], name="matmul"),
        helper.make_node("Cast", ["y16"], ["y"], to=TensorProto.FLOAT, name="to_float"),
    ]
    graph = helper.make_graph(
        nodes,
        "constant",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 3])],
    )
    report = predict(_model(graph), TABLE)
    assert report.nodes == 3 and not report.compute_falls_back
