"""Genba's error hierarchy: every failure a user can act on is a GenbaError.

Third-party exceptions are translated at the boundary (``raise ... from exc``).
The CLI prints ``str(error)`` as one line and exits with ``error.exit_code``.
"""

from __future__ import annotations

from typing import Any


class GenbaError(Exception):
    """Root of every error Genba raises on purpose."""

    exit_code = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class UsageError(GenbaError):
    """Bad input from the user: wrong path, option, file or value. Exit code 2."""

    exit_code = 2


class ConfigError(UsageError):
    """A configuration that does not validate; lists every problem at once."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("invalid configuration: " + "; ".join(self.problems))


class InputFileError(UsageError):
    """A JSONL input, calibration or evaluation file that cannot be read or parsed."""


class ModelSourceError(UsageError):
    """A model directory that is missing, not a model, or not exportable."""


class UnsupportedArchitectureError(ModelSourceError):
    """The model's architecture has no ONNX export path."""


class OutputPathError(UsageError):
    """The output location cannot be written."""


class BundleError(GenbaError):
    """A bundle that cannot be read, is malformed, or fails verification."""

    exit_code = 3


class BundleFormatError(BundleError):
    """The bundle's layout or manifest is malformed."""


class IntegrityError(BundleError):
    """A file's hash does not match, or a file is missing or unlisted."""


class SignatureError(BundleError):
    """The signature is missing, invalid or made by an untrusted key.

    Messages say "invalid" and never which byte differed.
    """


class ArchiveError(BundleError):
    """A bundle archive holds something unsafe (absolute path, ``..``, link, oversize member)."""


class KeyFileError(UsageError):
    """A key file that cannot be read or is not the expected kind of key."""


class ExportError(GenbaError):
    """The export pipeline failed while converting or quantizing a model."""

    exit_code = 4


class GateFailedError(ExportError):
    """A validation gate failed: the export produced no bundle.

    ``report`` holds the full validation report, so the caller can print why.
    """

    def __init__(self, message: str, report: dict[str, Any]) -> None:
        super().__init__(message)
        self.report = report


class RuntimeLoadError(GenbaError):
    """ONNX Runtime could not create a session with the requested provider."""

    exit_code = 5
