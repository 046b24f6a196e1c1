"""What a prediction request carries in and what the agent answers (no web framework here)."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

import numpy as np

from edge_agent.store import InputRecord, PredictionRecord


@dataclass(frozen=True)
class Item:
    """One input to answer. ``value`` is text, or a decoded image for image bundles."""

    kind: str
    value: Any
    raw: bytes
    groups: Mapping[str, str] = field(default_factory=dict)
    source: str = ""
    #: When the agent took the request, its body read (``time.perf_counter``): the caller's latency
    #: starts here.
    received: float = field(default_factory=time.perf_counter, compare=False)

    def record(self) -> InputRecord:
        return InputRecord(kind=self.kind, payload=self.raw, groups=dict(self.groups), source=self.source)


@dataclass(frozen=True)
class ModelAnswer:
    """One model's answer for one input."""

    label: str | None
    score: float | None
    margin: float | None
    scores: dict[str, float]
    model: dict[str, Any]
    stage: str
    latency_ms: float
    provider: str

    def record(self, model_id: int, served: bool, caller_latency_ms: float | None = None) -> PredictionRecord:
        return PredictionRecord(
            model_id=model_id,
            stage=self.stage,
            label=self.label,
            score=self.score,
            margin=self.margin,
            latency_ms=self.latency_ms,
            provider=self.provider,
            served=served,
            caller_latency_ms=caller_latency_ms,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "score": None if self.score is None else round(self.score, 6),
            "scores": {k: round(v, 6) for k, v in self.scores.items()},
            "model": self.model,
            "stage": self.stage,
            "provider": self.provider,
            "latency_ms": round(self.latency_ms, 3),
        }


@dataclass(frozen=True)
class Answer:
    input_id: int
    prediction_id: int
    production: ModelAnswer
    suggestion: ModelAnswer | None

    def to_json(self) -> dict[str, Any]:
        out = {"input_id": self.input_id, "prediction_id": self.prediction_id, **self.production.to_json()}
        out["suggestion"] = self.suggestion.to_json() if self.suggestion else None
        return out


def model_answers(
    probabilities: np.ndarray | None,
    labels: Sequence[str],
    count: int,
    *,
    model: dict[str, Any],
    stage: str,
    latency_ms: float,
    provider: str,
) -> list[ModelAnswer]:
    """Turn a batch of class probabilities into answers (label, score, margin top-1 minus top-2)."""
    if probabilities is None:
        return [ModelAnswer(None, None, None, {}, model, stage, latency_ms, provider) for _ in range(count)]
    ordered = np.sort(probabilities, axis=1)
    best = np.argmax(probabilities, axis=1)
    margins = ordered[:, -1] - (ordered[:, -2] if probabilities.shape[1] > 1 else 0.0)
    return [
        ModelAnswer(
            label=labels[int(best[row])],
            score=float(probabilities[row, best[row]]),
            margin=float(margins[row]),
            scores={label: float(p) for label, p in zip(labels, probabilities[row], strict=True)},
            model=model,
            stage=stage,
            latency_ms=latency_ms,
            provider=provider,
        )
        for row in range(count)
    ]


class StoredInput(Protocol):
    @property
    def input_id(self) -> int: ...
    @property
    def payload(self) -> bytes: ...


S = TypeVar("S", bound=StoredInput)


def shortest_first(items: Iterable[S]) -> list[S]:
    """Stored inputs by length, then id: batched in this order, similar lengths pad less, and the
    same inputs always batch the same way."""
    return sorted(items, key=lambda item: (len(item.payload), item.input_id))


def decode_payload(kind: str, payload: bytes, name: str = "the image") -> Any:
    """Stored bytes back into what the model takes: text, or a decoded image (``name`` in errors)."""
    if kind == "text":
        return payload.decode("utf-8")
    from genba.images import open_image

    return open_image(payload, name)
