"""Explanations of stored predictions: occlusion on the production model, cached per model and input.

An operator asks why an input got its answer; the agent reads the input from the site store,
explains it with :func:`genba.runtime.explain.explain` on the production model's own sessions,
and keeps the result (the same model and input always give the same explanation) in a small
in-memory cache, so the app can show it again at no cost.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

from genba.errors import NoModelError, UsageError

if TYPE_CHECKING:
    from edge_agent.library import LoadedModel
    from edge_agent.store import SiteStore

#: Explanations kept in memory (the oldest go first).
CACHE_SIZE = 256


class Explanations:
    def __init__(self, size: int = CACHE_SIZE) -> None:
        self._size = size
        self._cache: OrderedDict[tuple[str, int], dict[str, Any]] = OrderedDict()
        self._lock = threading.Lock()

    def explain(self, store: SiteStore, loaded: LoadedModel | None, input_id: int) -> dict[str, Any]:
        """Why ``loaded`` (production) answers ``input_id`` as it does; the input is read from ``store``."""
        from edge_agent.answers import decode_payload
        from genba.runtime.explain import explain

        if loaded is None:
            raise NoModelError("no production model is serving; install one before asking for explanations")
        key = (loaded.identity.manifest_sha256, input_id)
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return {**self._cache[key], "cached": True}
        stored = store.get_input(input_id)
        if not stored.payload:
            raise UsageError(
                f"input {input_id} was removed by the retention policy; nothing is left to explain"
            )
        explanation = explain(loaded.model, decode_payload(stored.kind, stored.payload), stored.kind)
        document = {"input_id": input_id, "model": loaded.identity.label, **explanation.to_json()}
        with self._lock:
            self._cache[key] = document
            while len(self._cache) > self._size:
                self._cache.popitem(last=False)
        return {**document, "cached": False}
