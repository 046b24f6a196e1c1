"""ONNX graph surgery: pooled-embedding backbones, classifier splitting, the head graph.

A classifier splits where its logits come from one linear layer (Gemm, or
MatMul + Add) over a pooled vector: everything before is the backbone that
outputs ``embedding``, the linear layer becomes the small fp32 ``head``.
Anything else stays one graph.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

EMBEDDING = "embedding"
LOGITS = "logits"


@dataclass(frozen=True)
class HeadWeights:
    """A linear classification head: ``logits = embedding @ weight.T + bias``."""

    weight: np.ndarray  # [num_labels, hidden]
    bias: np.ndarray  # [num_labels]

    def __post_init__(self) -> None:
        if self.weight.ndim != 2 or self.bias.shape != (self.weight.shape[0],):
            raise ValueError("head weight must be [labels, hidden] and bias [labels]")

    @property
    def num_labels(self) -> int:
        return int(self.weight.shape[0])


def load(path: Path) -> Any:
    import onnx

    return onnx.load(str(path))


def save(model: Any, path: Path) -> Path:
    import onnx

    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path


def sentence_backbone(model: Any) -> Any:
    """Keep only a sentence-transformers graph's ``sentence_embedding``, named ``embedding``."""
    return _expose_as(_extract(model, "sentence_embedding"), "sentence_embedding", EMBEDDING)


def pooled_backbone(model: Any, modality: str) -> Any:
    """Append pooling to a feature-extraction graph: masked mean (text) or token mean (image)."""
    from onnx import TensorProto, helper, numpy_helper

    graph = model.graph
    hidden = "last_hidden_state"
    if hidden not in {o.name for o in graph.output}:
        raise ValueError("graph has no last_hidden_state output to pool")
    graph.initializer.append(numpy_helper.from_array(np.array([1], dtype=np.int64), "genba_axis1"))
    graph.initializer.append(numpy_helper.from_array(np.array([-1], dtype=np.int64), "genba_axis_last"))
    graph.initializer.append(numpy_helper.from_array(np.array(1e-9, dtype=np.float32), "genba_eps"))
    if modality == "text":
        nodes = [
            helper.make_node("Unsqueeze", ["attention_mask", "genba_axis_last"], ["genba_mask3"]),
            helper.make_node("Cast", ["genba_mask3"], ["genba_maskf"], to=TensorProto.FLOAT),
            helper.make_node("Mul", [hidden, "genba_maskf"], ["genba_masked"]),
            helper.make_node("ReduceSum", ["genba_masked", "genba_axis1"], ["genba_sum"], keepdims=0),
            helper.make_node("ReduceSum", ["genba_maskf", "genba_axis1"], ["genba_count"], keepdims=0),
            helper.make_node("Max", ["genba_count", "genba_eps"], ["genba_safe_count"]),
            helper.make_node("Div", ["genba_sum", "genba_safe_count"], [EMBEDDING]),
        ]
    else:
        nodes = [helper.make_node("ReduceMean", [hidden, "genba_axis1"], [EMBEDDING], keepdims=0)]
    graph.node.extend(nodes)
    _set_outputs(model, [EMBEDDING])
    return _extract(model, EMBEDDING)


def split_classifier(model: Any) -> tuple[Any, HeadWeights] | None:
    """Split at the linear layer that makes ``logits``; None when the graph has no such layer."""
    found = _final_linear(model)
    if found is None:
        return None
    embedding_tensor, head = found
    return _expose_as(_extract(model, embedding_tensor), embedding_tensor, EMBEDDING), head


def head_graph(head: HeadWeights, opset: int) -> Any:
    """A tiny fp32 graph: ``embedding`` [batch, hidden] → ``logits`` [batch, labels]."""
    from onnx import TensorProto, helper, numpy_helper

    hidden = int(head.weight.shape[1])
    graph = helper.make_graph(
        [helper.make_node("Gemm", [EMBEDDING, "head_weight", "head_bias"], [LOGITS], transB=1)],
        "genba_head",
        [helper.make_tensor_value_info(EMBEDDING, TensorProto.FLOAT, ["batch", hidden])],
        [helper.make_tensor_value_info(LOGITS, TensorProto.FLOAT, ["batch", head.num_labels])],
        initializer=[
            numpy_helper.from_array(head.weight.astype(np.float32), "head_weight"),
            numpy_helper.from_array(head.bias.astype(np.float32), "head_bias"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 9
    return model


def head_weights(model: Any) -> HeadWeights | None:
    """The weights of a head graph (or any graph whose logits come from one linear layer)."""
    found = _final_linear(model)
    return found[1] if found is not None else None


def _final_linear(model: Any) -> tuple[str, HeadWeights] | None:
    from onnx import numpy_helper

    producers = {out: node for node in model.graph.node for out in node.output}
    initializers = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    node = producers.get(LOGITS)
    while node is not None and node.op_type == "Identity":
        node = producers.get(node.input[0])
    if node is None:
        return None
    if node.op_type == "Gemm":
        return _from_gemm(node, initializers)
    if node.op_type == "Add":
        return _from_matmul_add(node, producers, initializers)
    return None


def _from_gemm(node: Any, initializers: dict[str, np.ndarray]) -> tuple[str, HeadWeights] | None:
    attrs = {a.name: a for a in node.attribute}
    if len(node.input) < 3 or node.input[1] not in initializers or node.input[2] not in initializers:
        return None
    if "transA" in attrs and attrs["transA"].i:
        return None
    weight = initializers[node.input[1]]
    trans_b = bool(attrs["transB"].i) if "transB" in attrs else False
    alpha = attrs["alpha"].f if "alpha" in attrs else 1.0
    beta = attrs["beta"].f if "beta" in attrs else 1.0
    weight = (weight if trans_b else weight.T) * alpha
    return node.input[0], HeadWeights(weight, initializers[node.input[2]].reshape(-1) * beta)


def _from_matmul_add(
    node: Any, producers: dict[str, Any], initializers: dict[str, np.ndarray]
) -> tuple[str, HeadWeights] | None:
    bias_name = next((name for name in node.input if name in initializers), None)
    other = next((name for name in node.input if name != bias_name), None)
    matmul = producers.get(other) if other else None
    if bias_name is None or matmul is None or matmul.op_type != "MatMul":
        return None
    if matmul.input[1] not in initializers:
        return None
    weight = initializers[matmul.input[1]].T  # MatMul holds [hidden, labels]
    bias = initializers[bias_name].reshape(-1)
    if weight.ndim != 2 or bias.shape != (weight.shape[0],):
        return None
    return matmul.input[0], HeadWeights(weight, bias)


def _extract(model: Any, tensor: str) -> Any:
    """The subgraph from the model's inputs to ``tensor``; every branch it does not need is dropped."""
    from onnx import helper

    graph = model.graph
    producers = {out: node for node in graph.node for out in node.output}
    needed: set[int] = set()
    pending, seen = [tensor], set()
    while pending:
        name = pending.pop()
        if name in seen or name not in producers:
            continue
        seen.add(name)
        node = producers[name]
        if id(node) not in needed:
            needed.add(id(node))
            pending.extend(_names_used_by(node))
    nodes = [node for node in graph.node if id(node) in needed]  # original (topological) order
    used = {name for node in nodes for name in _names_used_by(node)}
    extracted_graph = helper.make_graph(
        nodes,
        graph.name,
        [i for i in graph.input if i.name in used],
        [helper.make_tensor_value_info(tensor, 1, None)],
        initializer=[t for t in graph.initializer if t.name in used],
        value_info=[v for v in graph.value_info if v.name in used],
    )
    extracted = helper.make_model(extracted_graph, opset_imports=list(model.opset_import))
    extracted.ir_version = model.ir_version
    extracted.functions.extend(model.functions)
    return extracted


def _names_used_by(node: Any) -> list[str]:
    """A node's inputs plus outer-scope names its subgraphs (If/Loop bodies) read."""
    names = [name for name in node.input if name]
    for attribute in node.attribute:
        for subgraph in [attribute.g, *attribute.graphs] if attribute.type in (5, 10) else []:
            for inner in subgraph.node:
                names.extend(_names_used_by(inner))
    return names


def _expose_as(model: Any, tensor: str, name: str) -> Any:
    from onnx import helper

    if tensor != name:
        model.graph.node.append(helper.make_node("Identity", [tensor], [name]))
    _set_outputs(model, [name])
    return model


def _set_outputs(model: Any, names: list[str]) -> None:
    from onnx import TensorProto, helper

    del model.graph.output[:]
    model.graph.output.extend(helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in names)
