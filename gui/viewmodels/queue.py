"""The review queue's content: the loaded items, the one being looked at, and how far the operator is."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from edge_agent.service.client import QueueEntry
from gui.viewmodels.inspect import MAX_SHORTCUTS, Choice

#: Items asked for at a time: a sitting's worth, short enough that progress is visible.
QUEUE_SIZE = 20


@dataclass(frozen=True)
class QueueItemView:
    input_id: int
    text: str | None  # None for an image: the queue tab asks for its bytes on its own (input_image)
    label: str  # the model's answer when it was served, "" when it gave none
    confidence_pct: int | None
    choices: tuple[Choice, ...]
    audit: bool = False  # drawn at random (audit sample, or where a candidate disagrees): label as seen
    kind: str = "text"

    @property
    def is_image(self) -> bool:
        return self.kind == "image"

    @classmethod
    def of(cls, entry: QueueEntry, labels: Sequence[str]) -> QueueItemView:
        answer = entry.label or ""
        return cls(
            input_id=entry.input_id,
            text=entry.text,
            label=answer,
            confidence_pct=None if entry.score is None else int(round(entry.score * 100)),
            choices=choices_for(labels, answer),
            audit=entry.audit or entry.disagreement,
            kind=entry.kind,
        )

    def choice_for_key(self, key: str) -> Choice | None:
        return next((c for c in self.choices if c.key and c.key == key), None)


def choices_for(labels: Sequence[str], answer: str) -> tuple[Choice, ...]:
    """Keys 1–9 in label order, as Inspect numbers them, so the same key means the same label."""
    return tuple(
        Choice(str(i + 1) if i < MAX_SHORTCUTS else "", label, label == answer)
        for i, label in enumerate(labels)
    )


def labels_for(production_labels: Sequence[str], entries: Sequence[QueueEntry]) -> list[str]:
    """Production's labels; without them (no status yet), the answers the queued items carry."""
    if production_labels:
        return list(production_labels)
    return sorted({entry.label for entry in entries if entry.label})


class ReviewSession:
    """One loaded queue, walked front to back: each item is labelled or skipped once."""

    def __init__(self, entries: Sequence[QueueEntry], labels: Sequence[str]) -> None:
        known = labels_for(labels, entries)
        self.items = [QueueItemView.of(entry, known) for entry in entries]
        self.position = 0
        self.labelled = 0
        self.corrected = 0
        self.skipped = 0

    @property
    def total(self) -> int:
        return len(self.items)

    @property
    def current(self) -> QueueItemView | None:
        return self.items[self.position] if self.position < self.total else None

    @property
    def done(self) -> bool:
        return self.current is None

    def record(self, label: str) -> None:
        """The current item was labelled ``label``; the next one comes."""
        item = self.current
        if item is None:
            return
        self.labelled += 1
        self.corrected += int(label != item.label)
        self.position += 1

    def skip(self) -> None:
        if self.current is not None:
            self.skipped += 1
            self.position += 1
