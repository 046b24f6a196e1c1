"""The labels site training may learn from: the TRAINING split only, checked before any work.

Held-out labels are what the rollout gates judge a candidate on, so they are never read
here: the only query is ``labelled_inputs("train")``. Everything is read through a
read-only connection, so the agent keeps serving and writing meanwhile (WAL).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge_agent.store import LabelledInput, SiteStore
from edge_agent.training.errors import (
    NoTrainingLabelsError,
    SingleClassError,
    UnknownLabelsError,
    WrongInputKindError,
)

TRAIN_SPLIT = "train"
#: Far above any site's operator labels; a bound keeps a damaged store from exhausting memory.
MAX_TRAINING_LABELS = 1_000_000


@dataclass(frozen=True)
class TrainingSet:
    """Training labels in input-id order (so the same labels always train the same head)."""

    items: tuple[LabelledInput, ...]
    labels: tuple[str, ...]  # the model's label list; indices refer to it

    @property
    def input_ids(self) -> list[int]:
        return [item.input_id for item in self.items]

    @property
    def label_indices(self) -> np.ndarray:
        index = {label: i for i, label in enumerate(self.labels)}
        return np.array([index[item.label] for item in self.items], dtype=np.int64)

    def class_counts(self) -> dict[str, int]:
        counts = Counter(item.label for item in self.items)
        return {label: counts.get(label, 0) for label in self.labels}

    def __len__(self) -> int:
        return len(self.items)


def read_training_labels(store: SiteStore, limit: int = MAX_TRAINING_LABELS) -> list[LabelledInput]:
    """Inputs whose latest label is in the training split; held-out labels are not read."""
    return store.labelled_inputs(TRAIN_SPLIT, limit=limit)


def training_set(items: Sequence[LabelledInput], labels: Sequence[str], input_kind: str) -> TrainingSet:
    """Check the labels against the model; raise a one-line TrainingError on the first problem."""
    if not items:
        raise NoTrainingLabelsError()
    kinds = sorted({item.kind for item in items} - {input_kind})
    if kinds:
        raise WrongInputKindError(kinds, input_kind)
    known = tuple(labels)
    unknown = sorted({item.label for item in items} - set(known))
    if unknown:
        raise UnknownLabelsError(unknown, known)
    present = Counter(item.label for item in items)
    if len(present) == 1:
        ((label, count),) = present.items()
        raise SingleClassError(label, count)
    return TrainingSet(items=tuple(sorted(items, key=lambda item: item.input_id)), labels=known)


def load_training_set(store_path: Path, labels: Sequence[str], input_kind: str) -> TrainingSet:
    """Open the store read-only (a newer schema raises StoreError), read and check the labels."""
    with SiteStore.read_only(store_path) as store:
        items = read_training_labels(store)
    return training_set(items, labels, input_kind)
