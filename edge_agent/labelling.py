"""The labelling queue: what to ask the operators about first."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any, Final

import numpy as np

from edge_agent.library import LoadedModel
from edge_agent.store import QueueItem, SiteStore
from genba.errors import PrunedInputError, UnknownItemError

#: The image formats the agent takes (``genba.runtime.preprocess``), by the bytes they start with.
_IMAGE_TYPES = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"BM", "image/bmp"),
    (b"II*\x00", "image/tiff"),
    (b"MM\x00*", "image/tiff"),
)

#: A window of answers (first and last prediction id) and how many labels are still wanted from it.
Focus = tuple[tuple[int, int], int]

#: Inputs whose ranking vectors are kept: more than the largest pool a queue ranks (4 x 500).
KEPT_VECTORS: Final = 8192
#: Inputs the model runs over at once when the queue ranks what serving has not seen (serving's
#: own largest batch, ``[batching] max_batch_size``, by default).
RANKING_BATCH: Final = 32


class RankingVectors:
    """Production's probabilities and embedding per answered input, as serving computed them, so
    that ranking the queue runs the model only over inputs it has not seen (after a restart, or
    older than what is kept), never again over the whole pool each time an operator's app polls."""

    def __init__(self, capacity: int = KEPT_VECTORS) -> None:
        self._capacity = capacity
        self._rows: OrderedDict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = OrderedDict()
        self._lock = threading.Lock()

    def put(
        self, model_id: int, input_ids: Sequence[int], probabilities: np.ndarray, embedding: np.ndarray
    ) -> None:
        with self._lock:
            for row, input_id in enumerate(input_ids):
                self._rows[(model_id, input_id)] = (probabilities[row].copy(), embedding[row].copy())
                self._rows.move_to_end((model_id, input_id))
            while len(self._rows) > self._capacity:
                self._rows.popitem(last=False)

    def get(self, model_id: int, input_ids: Sequence[int]) -> dict[int, tuple[np.ndarray, np.ndarray]]:
        with self._lock:
            return {i: self._rows[(model_id, i)] for i in input_ids if (model_id, i) in self._rows}


def labelling_queue(
    store: SiteStore,
    production: LoadedModel | None,
    limit: int,
    focus: Focus | None = None,
    candidate_id: int | None = None,
    vectors: RankingVectors | None = None,
) -> list[QueueItem]:
    """What to ask the operators about, in order: while a candidate (``candidate_id``) is judged,
    the inputs drawn where it and production disagree (marked ``disagreement``, oldest first: the
    accuracy gate reads them in order, ``edge_agent.store.paired_sample``); with a ``focus`` (a
    window drift was raised on), the labels still wanted from that window; then the audit sample's
    unlabelled items (marked ``audit``: drawn at random, whatever production answered, the KPI
    report's unbiased evidence); then the least certain. A report is asked for once, whichever
    list has it.

    The store ranks by the margin production had when it answered; a few times more than asked
    are embedded by production's backbone so the queue does not ask for the same report twice
    in other words (``edge_agent.selection``); ``vectors`` holds those serving already computed.
    """
    ranking = RankingVectors(0) if vectors is None else vectors
    judging = store.disagreement_queue(candidate_id, limit) if candidate_id is not None else []
    drifted = _ranked(store, production, ranking, min(limit, focus[1]), focus[0]) if focus else []
    audit = store.audit_queue(limit)
    first = _distinct([*judging, *drifted, *audit])
    if len(first) >= limit:  # no need to rank (and run production over) the least certain
        return first[:limit]
    return _distinct([*first, *_ranked(store, production, ranking, limit + len(first))])[:limit]


def _ranked(
    store: SiteStore,
    production: LoadedModel | None,
    vectors: RankingVectors,
    limit: int,
    window: tuple[int, int] | None = None,
) -> list[QueueItem]:
    if limit <= 0:
        return []
    pool = _distinct(store.uncertain_unlabelled(limit * 4, window))
    if production is None or len(pool) <= limit:
        return pool[:limit]
    from edge_agent.selection import select_for_labelling

    arrays = _pool_vectors(production, vectors, pool)
    if arrays is None:
        return pool[:limit]
    picked = select_for_labelling(*arrays, limit)
    # When what is left is all near-duplicates, fill up in margin order: an operator
    # asked for `limit` items, and a short queue would look like there is nothing to do.
    picked += [i for i in range(len(pool)) if i not in picked][: limit - len(picked)]
    return [pool[i] for i in picked]


def _pool_vectors(
    production: LoadedModel, vectors: RankingVectors, pool: list[QueueItem]
) -> tuple[np.ndarray, np.ndarray] | None:
    """Probabilities and embeddings of the pool, in its order; the model runs only over the inputs
    ``vectors`` lacks (and they are kept for the next time)."""
    from edge_agent.answers import decode_payload, shortest_first

    known = vectors.get(production.model_id, [item.input_id for item in pool])
    # Shortest first, a bounded batch at a time: one run over a 2,000-item pool would grow ONNX
    # Runtime's arena to that batch's size (gigabytes for a text model) and keep it for good.
    missing = shortest_first(item for item in pool if item.input_id not in known)
    for offset in range(0, len(missing), RANKING_BATCH):
        batch = missing[offset : offset + RANKING_BATCH]
        values = [decode_payload(item.kind, item.payload) for item in batch]
        probabilities, embedding, _ = production.model.predict_arrays(values)
        if probabilities is None or embedding is None:
            return None
        ids = [item.input_id for item in batch]
        known.update({i: (probabilities[row], embedding[row]) for row, i in enumerate(ids)})
        vectors.put(production.model_id, ids, probabilities, embedding)
    rows = [known[item.input_id] for item in pool]
    return np.stack([p for p, _ in rows]), np.stack([e for _, e in rows])


def queue_entry(item: QueueItem) -> dict[str, Any]:
    """What the API and the CLI show of a queued item: its text, never image bytes."""
    return {
        "input_id": item.input_id,
        "kind": item.kind,
        "text": item.payload.decode("utf-8") if item.kind == "text" else None,
        "label": item.label,
        "score": item.score,
        "margin": item.margin,
        "created_at": item.created_at,
        "audit": item.audit,
        "disagreement": item.disagreement,
    }


def _distinct(items: list[QueueItem]) -> list[QueueItem]:
    """The first of each identical report: asking for it twice yields one label's worth."""
    seen: set[bytes] = set()
    kept = []
    for item in items:
        if item.payload not in seen:
            seen.add(item.payload)
            kept.append(item)
    return kept


def stored_image(store: SiteStore, input_id: int) -> tuple[bytes, str]:
    """The image an operator is asked to label, as it was served, and its media type.

    Raises :class:`UnknownItemError` (404) for an input that does not exist or is a text, and
    :class:`PrunedInputError` (410) for an image retention has pruned: there is nothing left to show.
    """
    stored = store.get_input(input_id)
    if stored.kind != "image":
        raise UnknownItemError(
            f"input {input_id} is a {stored.kind}, not an image; the queue carries its text"
        )
    if not stored.payload:
        raise PrunedInputError(f"input {input_id}'s image was removed by retention; skip this item")
    return stored.payload, image_media_type(stored.payload)


def image_media_type(payload: bytes) -> str:
    if payload[:4] == b"RIFF" and payload[8:12] == b"WEBP":
        return "image/webp"
    return next(
        (kind for magic, kind in _IMAGE_TYPES if payload.startswith(magic)), "application/octet-stream"
    )
