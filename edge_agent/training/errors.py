"""Errors of site training: each one line that says what to do. Nothing is written when one is raised."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from export.head_swap import NotHeadSwappableError  # noqa: F401  (site training raises it too)
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


class TrainingModeError(TrainingError):
    def __init__(self, mode: str) -> None:
        from edge_agent.training_modes import TRAINING_MODES

        super().__init__(f"training mode must be one of {', '.join(TRAINING_MODES)}, not {mode!r}")


class TooFewPairsError(TrainingError):
    def __init__(self, counts: dict[int, int], per_class: int) -> None:
        having = sum(1 for n in counts.values() if n >= per_class)
        super().__init__(
            f"contrastive training needs {per_class} or more training labels in each of 2 or more classes "
            f"({having} class{'es' if having != 1 else ''} have that many): label more items, "
            "or use --mode head"
        )


class UnlabelledOptionError(TrainingError):
    """``--unlabelled`` asked for what this mode, model or store cannot do."""


class AutoDeclinedError(TrainingError):
    """``--mode auto`` found no mode the labels show better than production; nothing was trained."""

    @classmethod
    def not_shown_better(
        cls, labels: int, folds: int, production: int, best: str, right: int, evidence: dict[str, Any]
    ) -> AutoDeclinedError:
        return cls(
            f"--mode auto trained nothing: {labels} labels in {folds}-fold cross-validation do not "
            f"show any mode better than production ({production} right; best {best}, {right}; "
            f"where only one was right, "
            f"{best} {evidence['mode_only']} and production {evidence['production_only']}, "
            f"p = {evidence['p_value']:.3g}, needs <= {evidence['level']:.3g}): label more items, "
            "or name a mode with --mode"
        )

    @classmethod
    def none_can_train(cls, skipped: dict[str, str]) -> AutoDeclinedError:
        why = "; ".join(f"{mode}: {reason}" for mode, reason in skipped.items())
        return cls(
            f"--mode auto trained nothing: no mode it may try can train this model ({why}): "
            "add head to [training] auto_modes in agent.toml, or name a mode with --mode"
        )

    @classmethod
    def too_few(cls, labels: int) -> AutoDeclinedError:
        return cls(
            f"--mode auto trained nothing: {labels} labels leave none to judge a mode on (a class "
            "needs 2 or more to lend one): label more items, or name a mode with --mode"
        )


class SourceModelMissingError(TrainingError):
    def __init__(self, path: Path) -> None:
        super().__init__(
            f"last-k training needs the torch model the production bundle was exported from, and "
            f"{path} is not there: set [training] source_model in agent.toml to that folder"
        )


class UnsupportedSourceError(TrainingError):
    def __init__(self, path: Path, why: str) -> None:
        super().__init__(
            f"training the encoder cannot fine-tune {path}: {why}; use --mode head for this model"
        )


class SourceMismatchError(TrainingError):
    def __init__(self, path: Path, cosine: float, limit: float) -> None:
        super().__init__(
            f"the source model {path} does not compute the production backbone (mean cosine "
            f"{cosine:.4f} < {limit}): set [training] source_model to the folder this bundle "
            "was exported from"
        )


class SiteWeightsMissingError(TrainingError):
    def __init__(self, name: str, version: object, path: Path) -> None:
        super().__init__(
            f"production model {name} v{version} was fine-tuned at this site, but its weights {path} "
            "are gone: train in head mode, or roll back to a model IT exported"
        )
