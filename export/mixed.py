"""Sensitivity-guided mixed precision: keep the few layers int8 hurts most in fp32.

Dynamic int8 quantizes each MatMul's activations with one scale per tensor, so
layers whose inputs carry outliers (typically some feed-forward projections)
add most of the error. Each candidate layer is quantized alone and the drift of
the embedding from fp32 is measured on real inputs; the worst layers stay fp32
for as long as the size budget allows. The gates then judge the result like
any other variant.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from export.validate import row_cosines

_CANDIDATE_OPS = ("MatMul", "Attention")
_BYTES_SAVED_PER_PARAM = 3  # fp32 (4 bytes) kept instead of int8 (1 byte)


@dataclass(frozen=True)
class Sensitivity:
    node: str
    error: float  # 1 - mean cosine of the embedding when only this node is int8
    extra_bytes: int  # what keeping it in fp32 adds to the bundle


def rank_nodes(
    base: Path,
    probe_feeds: Sequence[dict[str, np.ndarray]],
    quantize_only: Callable[[Path, Path, list[str]], None],
    workdir: Path,
) -> list[Sensitivity]:
    """Every quantizable node's solo error, worst first."""
    import onnx

    model = onnx.load(str(base))
    weights = {t.name: int(np.prod(t.dims)) for t in model.graph.initializer}
    nodes = [
        n
        for n in model.graph.node
        if n.op_type in _CANDIDATE_OPS and len(n.input) > 1 and n.input[1] in weights
    ]
    names = [n.name for n in nodes]
    reference = _embeddings(base.read_bytes(), probe_feeds)
    ranking = []
    for node in nodes:
        out = workdir / "sensitivity-probe.onnx"
        with contextlib.redirect_stdout(io.StringIO()):
            quantize_only(base, out, [other for other in names if other != node.name])
        error = 1.0 - float(row_cosines(_embeddings(out.read_bytes(), probe_feeds), reference).mean())
        ranking.append(Sensitivity(node.name, error, weights[node.input[1]] * _BYTES_SAVED_PER_PARAM))
    return sorted(ranking, key=lambda s: s.error, reverse=True)


def choose_fp32_nodes(ranking: Sequence[Sensitivity], budget_bytes: int, max_nodes: int = 8) -> list[str]:
    """Greedily keep the worst nodes in fp32 while they fit in the byte budget."""
    kept: list[str] = []
    spent = 0
    for item in ranking:
        if len(kept) == max_nodes or item.error <= 0:
            break
        if spent + item.extra_bytes <= budget_bytes:
            kept.append(item.node)
            spent += item.extra_bytes
    return kept


def _embeddings(graph: bytes, feeds: Sequence[dict[str, np.ndarray]]) -> np.ndarray:
    from genba.runtime import GraphSet, RuntimeConfig

    graphs = GraphSet({"backbone": graph}, RuntimeConfig(provider="cpu"))
    return np.concatenate([graphs.run_feeds(f)["embedding"] for f in feeds])
