"""The Inspect tab's content: an answer, the choices an operator has, and an explanation's colours."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from edge_agent.service.client import ModelAnswer, PredictResult
from edge_agent.service.schemas import ExplanationResponse

#: Keys 1–9 pick a label: gloves and barcode scanners need no mouse.
MAX_SHORTCUTS = 9


@dataclass(frozen=True)
class Choice:
    key: str  # "1" … "9", or "" past the ninth label
    label: str
    is_answer: bool


@dataclass(frozen=True)
class AnswerView:
    input_id: int
    label: str
    confidence_pct: int
    model: str  # "genba-default-minilm v3"
    stage: str
    provider: str
    latency_ms: float
    suggestion: str | None  # the pilot candidate's label, when it has one
    suggestion_pct: int | None
    choices: tuple[Choice, ...]

    @classmethod
    def of(cls, answer: PredictResult, labels: Sequence[str]) -> AnswerView:
        known = list(labels) or sorted(answer.scores)
        pilot = answer.suggestion
        return cls(
            input_id=answer.input_id,
            label=answer.label or "",
            confidence_pct=_pct(answer.score),
            model=_model(answer),
            stage=answer.stage,
            provider=_provider(answer),
            latency_ms=round(answer.latency_ms, 1),
            suggestion=pilot.label if pilot else None,
            suggestion_pct=_pct(pilot.score) if pilot else None,
            choices=tuple(
                Choice(str(i + 1) if i < MAX_SHORTCUTS else "", label, label == answer.label)
                for i, label in enumerate(known)
            ),
        )

    def choice_for_key(self, key: str) -> Choice | None:
        return next((c for c in self.choices if c.key and c.key == key), None)


class DecisionClock:
    """Seconds from an answer being shown to the operator's decision (the report's operator effort)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._shown: float | None = None

    def shown(self) -> None:
        self._shown = self._clock()

    def decided(self) -> float | None:
        if self._shown is None:
            return None
        seconds, self._shown = self._clock() - self._shown, None
        return round(max(seconds, 0.0), 2)


def word_strengths(explanation: ExplanationResponse) -> list[tuple[str, float]]:
    """Each word with its weight scaled to [-1, 1] by the largest magnitude (0 when all are 0)."""
    words = [(word.text, word.weight) for word in explanation.words or []]
    largest = max((abs(weight) for _, weight in words), default=0.0)
    return [(text, weight / largest if largest else 0.0) for text, weight in words]


def heatmap_strengths(explanation: ExplanationResponse) -> list[list[float]]:
    """The image heat map scaled to [-1, 1] the same way."""
    grid = [list(row) for row in explanation.heatmap or []]
    largest = max((abs(v) for row in grid for v in row), default=0.0)
    return [[v / largest if largest else 0.0 for v in row] for row in grid]


def strength_rgba(strength: float) -> tuple[int, int, int, int]:
    """Orange for words that support the answer, blue for words against it; alpha by strength."""
    alpha = int(round(min(abs(strength), 1.0) * 200))
    return (230, 126, 34, alpha) if strength >= 0 else (52, 120, 219, alpha)


def _pct(score: float | None) -> int:
    return int(round((score or 0.0) * 100))


def _model(answer: ModelAnswer) -> str:
    return f"{answer.model.name} v{answer.model.version_label}"


def _provider(answer: PredictResult) -> str:
    """``CUDA · cuda``: where the answer was computed and which of the bundle's variants computed it."""
    provider = answer.provider.removesuffix("ExecutionProvider")
    variant = answer.model.variant
    return f"{provider} · {variant}" if variant else provider
