"""Embeddings of labelled inputs from the very backbone that serves, cached in the site store.

The cache key names everything that decides an embedding: the backbone graph, the
preprocessing files and the input spec, by hash. A head swap changes none of them, so a
candidate trained from a head-swapped parent reuses its parent's vectors, and a second
training run embeds only the inputs labelled since the first.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from edge_agent.answers import decode_payload, shortest_first
from edge_agent.store import LabelledInput, canonical_json
from genba.bundle import Manifest
from genba.errors import BundleFormatError
from genba.variants import DEFAULT, variants_of

DEFAULT_BATCH_SIZE = 32


class EmbeddingCache(Protocol):
    """What the cache needs from the site store (``SiteStore`` implements it)."""

    def get_embeddings(self, model_key: str, input_ids: Sequence[int]) -> dict[int, np.ndarray]: ...

    def put_embeddings(self, model_key: str, vectors: Mapping[int, np.ndarray]) -> int: ...


class Embedder(Protocol):
    """What embedding needs from a model (``genba.runtime.model.BundleModel`` implements it)."""

    def predict_arrays(self, items: Sequence[Any]) -> tuple[np.ndarray | None, np.ndarray | None, float]: ...


@dataclass(frozen=True)
class Embedded:
    """Vectors in the order of the items asked for, and how many had to be computed now."""

    vectors: np.ndarray  # [n, dim] float32
    new: int
    cached: int
    seconds: float


def backbone_key(manifest: Manifest, variant: str = DEFAULT) -> str:
    """The cache key of a bundle's embeddings from one variant's backbone (the one that serves).

    A hash of the input spec and every file but the heads and the other variants' graphs: a GPU
    site's fp16 vectors and a CPU site's int8 vectors never share a key, and a bundle without
    variants keeps the key it always had.
    """
    specs = variants_of(manifest)
    own = set(specs[variant].files) if variant in specs else set()
    skipped = {
        spec.file
        for each in specs.values()
        for role, spec in each.graphs.items()
        if role == "head" or spec.file not in own
    }
    parts: dict[str, Any] = {
        "input": manifest.input.to_json(),
        "files": {name: entry.sha256 for name, entry in manifest.files.items() if name not in skipped},
    }
    if DEFAULT not in specs:
        parts["variant"] = variant
    return "backbone:" + hashlib.sha256(canonical_json(parts).encode("utf-8")).hexdigest()


def cached_embeddings(
    cache: EmbeddingCache,
    model: Embedder,
    model_key: str,
    items: Sequence[LabelledInput],
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    decode: Callable[[str, bytes], Any] = decode_payload,
) -> Embedded:
    """Embed ``items`` with ``model``, taking what the cache holds and caching what it computes.

    Each batch is cached as soon as it is computed (one short write), so an interrupted run
    keeps its progress and the agent's writes never wait long.
    """
    start = time.perf_counter()
    ids = [item.input_id for item in items]
    found = cache.get_embeddings(model_key, ids)
    missing = shortest_first(item for item in items if item.input_id not in found)
    for offset in range(0, len(missing), batch_size):
        batch = missing[offset : offset + batch_size]
        vectors = _embed(model, [decode(item.kind, item.payload) for item in batch])
        computed = {item.input_id: vector for item, vector in zip(batch, vectors, strict=True)}
        cache.put_embeddings(model_key, computed)
        found.update(computed)
    matrix = np.stack([np.asarray(found[i], dtype=np.float32) for i in ids]) if ids else np.zeros((0, 0))
    return Embedded(
        vectors=matrix,
        new=len(missing),
        cached=len(ids) - len(missing),
        seconds=time.perf_counter() - start,
    )


def _embed(model: Embedder, values: list[Any]) -> np.ndarray:
    _, embedding, _ = model.predict_arrays(values)
    if embedding is None:
        raise BundleFormatError("the model has no embedding output; head training needs backbone + head")
    return np.asarray(embedding, dtype=np.float32)
