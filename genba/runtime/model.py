"""Run a verified bundle: backbone (embedding) then head (logits), or one graph."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from genba.bundle import VerifiedBundle
from genba.errors import BundleFormatError
from genba.runtime import binding
from genba.runtime.config import RuntimeConfig
from genba.runtime.placement import PlacementReport, measured
from genba.runtime.preprocess import Feeds, Preprocessor, TextPreprocessor, preprocessor_for
from genba.runtime.sessions import CUDA, active_provider, create_session
from genba.runtime.targets import serve

CLASSIFIER_TASKS = ("text-classification", "image-classification")


@dataclass(frozen=True)
class Prediction:
    """One answer: the label and score for classifiers, the embedding size otherwise."""

    latency_ms: float
    provider: str
    label: str | None = None
    score: float | None = None
    embedding_size: int | None = None
    scores: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"latency_ms": round(self.latency_ms, 3), "provider": self.provider}
        if self.label is not None:
            out.update(label=self.label, score=round(float(self.score or 0.0), 6))
        if self.embedding_size is not None:
            out["embedding_size"] = self.embedding_size
        return out


@dataclass(frozen=True)
class Prepared:
    """A batch's preprocessed inputs, with how long preprocessing took (it counts in the latency)."""

    feeds: Feeds
    count: int
    ms: float


class GraphSet:
    """ONNX Runtime sessions for one graph layout: ``model`` alone, or ``backbone`` [+ ``head``].

    ``io_binding`` says whether runs go through IO binding (see ``RuntimeConfig``
    and ``genba.runtime.binding``); status pages report it beside ``provider``.
    With ``probe`` inputs, sessions that land on CUDA are profiled for one run of them and
    ``placement`` tells how many nodes (and which compute operators) ORT put on the CPU.
    """

    def __init__(
        self, graphs: Mapping[str, bytes], config: RuntimeConfig, *, probe: Feeds | None = None
    ) -> None:
        self.layout = _layout_of(graphs)
        self.placement: PlacementReport | None = None
        profile_dir = tempfile.mkdtemp(prefix="genba-placement-") if probe is not None else None
        try:
            self._sessions = {
                role: create_session(data, config, _prefix(profile_dir, role))
                for role, data in graphs.items()
            }
            self.provider = active_provider(next(iter(self._sessions.values())))
            # The device only when every graph landed on CUDA: a head that fell back to CPU reads host memory.
            on_cuda = all(active_provider(s) == CUDA for s in self._sessions.values())
            self._device = binding.Placement("cuda" if on_cuda else "cpu", config.cuda_device_id)
            self._io_binding = config.io_binding == "on" or (config.io_binding == "auto" and on_cuda)
            if probe is not None and on_cuda:
                self.run_feeds(probe)
                self.placement = measured(list(self._sessions.values()), CUDA)
        finally:
            if profile_dir is not None:
                self._stop_profiling()  # whatever happened above: serving is never profiled
                shutil.rmtree(profile_dir, ignore_errors=True)

    def _stop_profiling(self) -> None:
        for session in getattr(self, "_sessions", {}).values():
            try:
                written = session.end_profiling()  # "" when profiling was off or already ended
            except RuntimeError:
                continue
            if written:
                Path(written).unlink(missing_ok=True)

    @property
    def io_binding(self) -> bool:
        return self._io_binding

    def run_feeds(self, feeds: Feeds) -> dict[str, np.ndarray]:
        """Run prepared inputs; returns ``embedding`` (split layouts) and ``logits`` (classifiers)."""
        if self._io_binding:
            return self._run_bound(feeds)
        if self.layout == "single":
            session = self._sessions["model"]
            names = [o.name for o in session.get_outputs()]
            return dict(zip(names, session.run(None, _inputs_for(session, feeds)), strict=True))
        backbone = self._sessions["backbone"]
        (embedding,) = backbone.run(["embedding"], _inputs_for(backbone, feeds))
        outputs = {"embedding": embedding}
        if "head" in self._sessions:
            (logits,) = self._sessions["head"].run(["logits"], {"embedding": embedding})
            outputs["logits"] = logits
        return outputs

    def _run_bound(self, feeds: Feeds) -> dict[str, np.ndarray]:
        if self.layout == "single":
            session = self._sessions["model"]
            return binding.run_single(session, _inputs_for(session, feeds), self._device)
        backbone = self._sessions["backbone"]
        return binding.run_split(
            backbone, self._sessions.get("head"), _inputs_for(backbone, feeds), self._device
        )


class BundleModel:
    """A verified bundle ready to run: its graphs' sessions plus its preprocessing.

    Graph bytes are read once and checked against the manifest hash before a
    session is made from those same bytes, so nothing can change in between.
    """

    def __init__(self, bundle: VerifiedBundle, config: RuntimeConfig | None = None) -> None:
        self.config = config or RuntimeConfig()
        self.manifest = bundle.manifest
        self.task: str = self.manifest.task
        self.labels: tuple[str, ...] = self.manifest.labels or ()
        spec = self.manifest.input.to_json()
        self.preprocessor: Preprocessor = preprocessor_for(bundle.path, spec, self.config.tokenizer_threads)
        self.served = serve(bundle, self.config, self.preprocessor.encode([_probe_item(spec)]))
        self.graphs = self.served.graphs
        self.provider = self.graphs.provider
        if isinstance(self.preprocessor, TextPreprocessor):
            self.preprocessor.threads = tokenizer_threads(self.config, self.provider)

    @property
    def variant(self) -> str:
        """The bundle variant being served: ``cpu``, ``cuda`` or ``default`` (a bundle without variants)."""
        return self.served.variant.name

    @property
    def is_classifier(self) -> bool:
        return self.task in CLASSIFIER_TASKS

    @property
    def io_binding(self) -> bool:
        """Whether runs go through IO binding (CUDA under ``auto``, or forced ``on``)."""
        return self.graphs.io_binding

    def run(self, items: Sequence[Any], pad_to: int | None = None) -> dict[str, np.ndarray]:
        return self.graphs.run_feeds(self.preprocessor.encode(items, pad_to=pad_to))

    def prepare(self, items: Sequence[Any]) -> Prepared:
        """Preprocess a batch ahead of running it (a micro-batcher overlaps this with inference)."""
        start = time.perf_counter()
        feeds = self.preprocessor.encode(items)
        return Prepared(feeds, len(items), (time.perf_counter() - start) * 1000.0)

    def predict_arrays(
        self, items: Sequence[Any], prepared: Prepared | None = None
    ) -> tuple[np.ndarray | None, np.ndarray | None, float]:
        """Answer a batch as arrays: ``(probabilities, embedding, latency_ms)``.

        ``probabilities`` is ``[n, classes]`` for classifiers and None otherwise;
        ``embedding`` is ``[n, size]``, or None for a single-graph classifier
        that has no embedding output. Latency covers preprocessing and
        inference of the whole batch. Serving uses this to compute margins
        without building a dict per item.
        """
        if prepared is not None and prepared.count != len(items):
            raise ValueError(f"prepared inputs are for {prepared.count} items, not {len(items)}")
        start = time.perf_counter()
        outputs = self.graphs.run_feeds(prepared.feeds) if prepared is not None else self.run(items)
        latency = (time.perf_counter() - start) * 1000.0 + (prepared.ms if prepared is not None else 0.0)
        probabilities = softmax(outputs["logits"]) if self.is_classifier else None
        return probabilities, outputs.get("embedding"), latency

    def predict(self, items: Sequence[Any]) -> list[Prediction]:
        """Answer a batch; latency covers preprocessing and inference of the whole batch."""
        probabilities, embedding, latency = self.predict_arrays(items)
        if probabilities is None:
            size = int(embedding.shape[-1]) if embedding is not None else None
            return [Prediction(latency, self.provider, embedding_size=size) for _ in items]
        return [self._classified(row, latency) for row in probabilities]

    def _classified(self, probabilities: np.ndarray, latency: float) -> Prediction:
        best = int(np.argmax(probabilities))
        scores = {label: float(p) for label, p in zip(self.labels, probabilities, strict=True)}
        return Prediction(
            latency, self.provider, label=self.labels[best], score=float(probabilities[best]), scores=scores
        )


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    return np.asarray(exp / exp.sum(axis=-1, keepdims=True))


def _layout_of(graphs: Mapping[str, Any]) -> str:
    if set(graphs) == {"model"}:
        return "single"
    if "backbone" in graphs and set(graphs) <= {"backbone", "head"}:
        return "split"
    raise BundleFormatError(f"bundle graph layout {sorted(graphs)} is not supported")


def _inputs_for(session: Any, feeds: Feeds) -> Feeds:
    wanted = [i.name for i in session.get_inputs()]
    missing = [name for name in wanted if name not in feeds]
    if missing:
        raise BundleFormatError(f"graph needs inputs {missing} that the preprocessing does not produce")
    return {name: feeds[name] for name in wanted}


def _prefix(folder: str | None, role: str) -> str | None:
    return os.path.join(folder, role) if folder is not None else None


def _probe_item(spec: Mapping[str, Any]) -> Any:
    """A representative input for the one profiled run that measures placement on CUDA."""
    if spec.get("kind") == "image":
        return np.full((int(spec["height"]), int(spec["width"]), 3), 128, dtype=np.uint8)
    return "placement check: surface scratch on housing, part 4411"


#: The most tokenizing threads chosen automatically: more gained nothing on a 16-core PC.
AUTO_TOKENIZER_THREADS = 8


def tokenizer_threads(config: RuntimeConfig, provider: str) -> int:
    """``config.tokenizer_threads``, or with 0 the automatic choice for the provider that serves."""
    if config.tokenizer_threads:
        return config.tokenizer_threads
    if provider != CUDA:
        return 1
    return max(1, min(AUTO_TOKENIZER_THREADS, (os.cpu_count() or 1) // 2))
