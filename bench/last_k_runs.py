"""last-k figures for bench/few_labels.py: the product's own fine-tuning and re-export, per site and seed.

Each run loads the packaged MiniLM, fine-tunes it with ``edge_agent.training.last_k.fine_tune``
(the agent.toml defaults: the top 6 blocks, AdamW, early stopping on a validation split of the
training labels) from the default IT head, and scores the fine-tuned torch model on the site's
evaluation split. At 20 labels per class the model is also re-exported exactly as
``genba agent train --mode last-k`` does (``write_last_k_candidate``: the parent's
int8-per-channel variant, the export gates, the site's signature) and the signed candidate is
scored on ONNX Runtime: that is the accuracy a site would serve.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

EXPORT_AT = 20
ABLATION_K = 2


class LastKBench:
    """What every last-k run shares: the default bundle (parent), its preprocessing and signing key."""

    def __init__(self, bundle: Path, trust: Path, signing_key: Path, threads: int) -> None:
        from edge_agent.config import TrainingConfig
        from genba import keys
        from genba.bundle import verify_directory
        from genba.runtime.config import RuntimeConfig
        from genba.runtime.model import BundleModel

        self.parent = verify_directory(bundle, [keys.load_public_key(trust)])
        self.runtime = RuntimeConfig(provider="cpu", intra_op_threads=threads, spin_wait=False)
        self.encode = BundleModel(self.parent, self.runtime).preprocessor.encode
        self.signing_key = signing_key
        self.public_key = keys.load_public_key(signing_key.with_name(signing_key.name + ".pub"))
        self.config = TrainingConfig()
        self.threads = threads
        self.train_seconds: list[float] = []
        self.export_seconds: list[float] = []

    def run(
        self,
        texts: Sequence[str],
        targets: np.ndarray,
        eval_texts: Sequence[str],
        eval_targets: np.ndarray,
        prior: Any,
        seed: int,
        *,
        k: int | None = None,
        export: bool = False,
        mode: str = "last-k",
        unlabelled: Sequence[str] | None = None,
    ) -> dict[str, Any]:
        """One fine-tuning run (``last-k``, or ``contrastive``: SetFit pairs, then a head); with
        ``unlabelled``, the encoder is adapted to those texts first (``--unlabelled adapt``)."""
        from edge_agent.training.adapt import adapt_encoder
        from edge_agent.training.contrastive import fine_tune_contrastive
        from edge_agent.training.last_k import fine_tune

        source = self._source()
        config = self.config if k is None else replace(self.config, last_k=k)
        adapt_s = 0.0
        if unlabelled is not None:
            adapt_s = adapt_encoder(source, self.encode, list(unlabelled), config, seed=seed)["seconds"]
        tune = fine_tune_contrastive if mode == "contrastive" else fine_tune
        tuned = tune(source, self.encode, list(texts), targets, prior, config, seed=seed)
        self.train_seconds.append(tuned.report["seconds"])
        result = {
            "torch_acc": self.torch_accuracy(source, tuned.head, eval_texts, eval_targets),
            "best_epoch": tuned.report.get("best_epoch"),
            "train_s": round(tuned.report["seconds"] + adapt_s, 3),
        }
        if export:
            result["onnx_acc"] = self._exported_accuracy(source, tuned, texts, eval_texts, eval_targets, seed)
        return result

    def _source(self) -> Any:
        from edge_agent.training.source import SourceModel, load_sentence_model, transformer_blocks
        from export.default_model import pretrained_model_dir

        path = pretrained_model_dir()
        model = load_sentence_model(path)
        return SourceModel(path, model, transformer_blocks(model, path), None, float("nan"))

    def default_accuracy(self, prior: Any, texts: Sequence[str], targets: np.ndarray) -> float:
        """IT's head on the untouched source model (torch): the baseline every run is measured against."""
        return self.torch_accuracy(self._source(), prior, texts, targets)

    def torch_accuracy(self, source: Any, head: Any, texts: Sequence[str], targets: np.ndarray) -> float:
        return float((np.argmax(self.torch_logits(source, head, texts), axis=1) == targets).mean())

    def torch_logits(self, source: Any, head: Any, texts: Sequence[str]) -> np.ndarray:
        """The head's logits over ``source``'s embeddings of ``texts`` (torch, in batches of 64)."""
        import torch

        source.model.eval()
        rows = []
        with torch.inference_mode():
            for start in range(0, len(texts), 64):
                embedding = source.embed(self.encode(list(texts[start : start + 64]))).numpy()
                rows.append(embedding @ head.weight.T + head.bias)
        return np.concatenate(rows)

    def _exported_accuracy(
        self,
        source: Any,
        tuned: Any,
        texts: Sequence[str],
        eval_texts: Sequence[str],
        eval_targets: np.ndarray,
        seed: int,
    ) -> float:
        from edge_agent.site import SiteFolder
        from edge_agent.training.candidate import CandidateSource
        from edge_agent.training.reexport import write_last_k_candidate
        from genba.bundle import verify_directory
        from genba.runtime.model import BundleModel
        from genba.versions import next_site_revision

        version = next_site_revision(self.parent.manifest.version, ())
        with tempfile.TemporaryDirectory(prefix="few-labels-last-k-") as work:
            started = time.perf_counter()
            out = Path(work) / "candidate"
            write_last_k_candidate(
                SiteFolder(Path(work) / "site"), self.parent, source, tuned, out, self.signing_key,
                texts=list(texts), origin=CandidateSource("bench", len(texts), seed, "last-k"),
                version=version, report={}, threads=self.threads,
            )  # fmt: skip
            self.export_seconds.append(time.perf_counter() - started)
            model = BundleModel(verify_directory(out, [self.public_key]), self.runtime)
            predictions = []
            for start in range(0, len(eval_texts), 64):
                probabilities, _, _ = model.predict_arrays(list(eval_texts[start : start + 64]))
                assert probabilities is not None
                predictions.append(np.argmax(probabilities, axis=1))
        return float((np.concatenate(predictions) == eval_targets).mean())

    def timing(self) -> dict[str, Any]:
        return {
            "fine_tune_s_median": round(statistics.median(self.train_seconds), 2)
            if self.train_seconds
            else None,
            "fine_tune_s_max": round(max(self.train_seconds), 2) if self.train_seconds else None,
            "reexport_s_median": round(statistics.median(self.export_seconds), 2)
            if self.export_seconds
            else None,
        }
