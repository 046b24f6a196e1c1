"""Errors of site training: each one line that says what to do. Nothing is written when one is raised."""

from __future__ import annotations

from collections.abc import Sequence

from genba.errors import UsageError


class TrainingError(UsageError):
    """Site training cannot run with what the site has (labels, model, options). Exit code 2."""


class NoTrainingLabelsError(TrainingError):
    def __init__(self) -> None:
        super().__init__("no training labels yet: label some items from the queue first")


class SingleClassError(TrainingError):
    def __init__(self, label: str, count: int) -> None:
        super().__init__(
            f"all {count} training labels are {label!r}, a single class: "
            "label items of at least one other class before training"
        )
        self.label = label


class UnknownLabelsError(TrainingError):
    def __init__(self, unknown: Sequence[str], known: Sequence[str]) -> None:
        names = ", ".join(repr(label) for label in unknown)
        super().__init__(
            f"training labels {names} are not among the model's labels ({', '.join(known)}): "
            "relabel those items, or install a model that knows those classes"
        )
        self.unknown = tuple(unknown)


class WrongInputKindError(TrainingError):
    def __init__(self, found: Sequence[str], expected: str) -> None:
        super().__init__(
            f"training labels are on {', '.join(found)} inputs but the production model takes {expected}: "
            "label inputs of the kind the model serves"
        )


class NoProductionModelError(TrainingError):
    def __init__(self) -> None:
        super().__init__(
            "no production model is installed at this site: install one with 'genba agent install' "
            "before training"
        )


class NotHeadSwappableError(TrainingError):
    def __init__(self, layout: Sequence[str]) -> None:
        super().__init__(
            f"the production model is one graph ({', '.join(layout)}), not backbone + head: "
            "head training needs a two-graph bundle; use last-k training or re-export it split"
        )


class TrainingModeError(TrainingError):
    def __init__(self, mode: str) -> None:
        if mode == "last-k":
            message = "last-k training is not available yet; use --mode head"
        else:
            message = f"training mode must be 'head' (or 'last-k'), not {mode!r}"
        super().__init__(message)
