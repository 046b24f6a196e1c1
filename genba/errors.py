"""Genba's error hierarchy: every failure a user can act on is a GenbaError.

Third-party exceptions are translated at the boundary (``raise ... from exc``).
The CLI prints ``str(error)`` as one line and exits with ``error.exit_code``.
"""

from __future__ import annotations

import re
from typing import Any, TypeVar


class GenbaError(Exception):
    """Root of every error Genba raises on purpose."""

    exit_code = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


def error_code(error_type: type[BaseException]) -> str:
    """The code an error travels under between the agent and its clients (``install_refused``)."""
    name = error_type.__name__.removesuffix("Error") or "Genba"
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


E = TypeVar("E", bound=GenbaError)


def located(error: E, where: str) -> E:
    """``error`` again, of the same type, its message prefixed with where it happened.

    ``where`` names the input: ``input file F, line 4`` or ``items[3]``.
    """
    moved = type(error).__new__(type(error))
    moved.__dict__.update(error.__dict__)
    moved.message = f"{where}: {error.message}"
    moved.args = (moved.message,)
    return moved


def shown(name: object) -> str:
    """A name from the input (a file, a path, a member) as it may stand in a one-line message.

    As it is when it prints on one line; quoted with escapes when it holds a line break,
    another control character or text that does not encode (a lone surrogate).
    """
    text = str(name)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return repr(text)
    return text if text.isprintable() else repr(text)


class UsageError(GenbaError):
    """Bad input from the user: wrong path, option, file or value. Exit code 2."""

    exit_code = 2


class ConfigError(UsageError):
    """A configuration that does not validate; lists every problem at once."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("invalid configuration: " + "; ".join(self.problems))


class InputFileError(UsageError):
    """A JSONL input, calibration or evaluation file, or an input in it, that cannot be read or parsed."""


class ImageTooLargeError(InputFileError):
    """A picture over the decoded size limit; the local API answers it with 413."""

    status = 413


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


class ProviderUnavailableError(RuntimeLoadError):
    """The provider policy cannot be met (``gpu`` without a working CUDA provider): no fallback."""


class PlacementError(RuntimeLoadError):
    """Under ``gpu``, compute operators of the graph would run on the CPU: refused, no silent slowdown."""


class AgentError(GenbaError):
    """The site agent refused or could not do what was asked. Exit code 7.

    ``status`` is the HTTP status the local API answers with for this error.
    """

    exit_code = 7
    status = 500


class AgentUnavailableError(AgentError):
    """The agent is not running, not reachable, or has no model to answer with."""

    status = 503


class ExplanationsBusyError(AgentUnavailableError):
    """As many explanations are being computed or waiting as the agent takes at once."""

    def __init__(self, limit: int) -> None:
        super().__init__(
            f"the agent is already computing or holding {limit} explanations (one at a time, so the line's "
            "predictions keep their cores); ask again in a moment"
        )


class NoModelError(AgentUnavailableError):
    """No production model is installed at this site yet."""


class AuthenticationError(AgentError):
    """A request without a valid token for this site."""

    status = 401


class PermissionDeniedError(AgentError):
    """A valid token whose role may not do what was asked."""

    status = 403


class InstallRefusedError(AgentError):
    """A bundle the site will not install: older than production, a duplicate, or the wrong kind."""

    status = 409


class RolloutError(AgentError):
    """A promotion or rollback that cannot happen in the current state (no candidate, no target)."""

    status = 409


class DiskFullError(AgentError):
    """No space left on the disk a site writes to (or the file-size limit reached).

    What needed the space was refused whole: nothing of it stays, and the model in production
    keeps serving. The local API answers 507 (Insufficient Storage); free space and retry.
    """

    status = 507


class StoreError(GenbaError):
    """The site store cannot be opened, migrated or written. Exit code 6."""

    exit_code = 6


class StoreFullError(StoreError):
    """The site store cannot be written because its disk is full: the transaction was rolled back
    whole, so the store stays consistent. The local API answers 507 (Insufficient Storage)."""

    status = 507


class UnknownItemError(UsageError):
    """An id or version that does not exist."""


class PrunedInputError(UnknownItemError):
    """A stored input whose payload retention has removed: nothing is left to show."""

    status = 410


class DuplicateItemError(UsageError):
    """An item that already exists, such as a model name and version installed twice."""


class ServingError(GenbaError, RuntimeError):
    """The serving path could not answer: the model broke its contract, or the agent is stopping.

    Exit code 1; ``status`` is the HTTP status a local API would answer with.
    """

    status = 500


class ShuttingDownError(ServingError):
    """A request arrived after the agent began shutting down."""

    status = 503

    def __init__(self, message: str = "the agent is shutting down and accepts no new requests") -> None:
        super().__init__(message)


class OverloadedError(ServingError):
    """More requests are waiting than the agent queues; the client should back off and retry."""

    status = 503

    def __init__(self, waiting: int) -> None:
        super().__init__(f"the agent is overloaded ({waiting} requests waiting); retry shortly")
        self.waiting = waiting


def install_command(extra: str) -> str:
    """How to install Genba's ``extra`` (a role) into the environment Genba runs in."""
    return f"pip install 'genba[{extra}]'"


class MissingExtraError(GenbaError):
    """A command whose role (a pyproject extra) is not installed on this machine. Exit code 8.

    The message is the whole line the CLI prints: the command, the extra and how to install it.
    """

    exit_code = 8

    def __init__(self, command: str, extra: str, missing: list[str]) -> None:
        super().__init__(
            f"{command} needs the {extra} extra: {install_command(extra)}"
            f" (not installed: {', '.join(missing)})"
        )
        self.command = command
        self.extra = extra
        self.missing = list(missing)


class PackagingError(GenbaError):
    """An offline kit (wheelhouse, USB kit) that cannot be built: pip could not resolve or download
    a role's wheels, or Genba's own wheel did not build."""


class KitIntegrityError(PackagingError):
    """A kit file that is missing, unlisted, a link, or whose sha256 differs from SHA256SUMS."""
