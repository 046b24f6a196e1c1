"""Sensitivity-guided mixed precision: the worst layers stay fp32 within the size budget."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from export import graphs
from export.mixed import Sensitivity, choose_fp32_nodes, rank_nodes
from export.quantize import _quantize_except
from genba.runtime.preprocess import preprocessor_for


def test_worst_nodes_are_kept_while_they_fit_the_budget() -> None:
    ranking = [
        Sensitivity("a", 0.004, 300),
        Sensitivity("b", 0.003, 900),
        Sensitivity("c", 0.002, 200),
        Sensitivity("d", 0.0, 10),
    ]
    assert choose_fp32_nodes(ranking, budget_bytes=600) == ["a", "c"]
    assert choose_fp32_nodes(ranking, budget_bytes=0) == []
    assert choose_fp32_nodes(ranking, budget_bytes=10_000, max_nodes=2) == ["a", "b"]


def test_ranking_measures_every_weighted_matmul_and_attention(bert_bundle: Path, tmp_path: Path) -> None:
    from genba.bundle import verify_directory

    verified = verify_directory(bert_bundle, None)
    preprocessor = preprocessor_for(bert_bundle, verified.manifest.input.to_json())
    feeds = [preprocessor.encode(["scratch on the housing", "no dent found", "oil on the rim"])]
    ranking = rank_nodes(bert_bundle / "backbone.onnx", feeds, _quantize_except, tmp_path)
    model = graphs.load(bert_bundle / "backbone.onnx")
    weights = {t.name for t in model.graph.initializer}
    weighted = ("MatMul", "Attention")
    expected = {n.name for n in model.graph.node if n.op_type in weighted and n.input[1] in weights}
    assert {s.node for s in ranking} == expected
    errors = [s.error for s in ranking]
    assert errors == sorted(errors, reverse=True) and max(errors) > 0
    assert all(np.isfinite(errors)) and all(s.extra_bytes > 0 for s in ranking)
