"""``genba``: one entry point; each package registers its own subcommands.

Only argparse and the registering modules are imported here, so ``genba
--help`` stays fast; every handler imports what it needs when it runs.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import signal
import sys
import threading
from collections.abc import Sequence
from typing import Any, NoReturn

from genba import env as _env  # noqa: F401  (telemetry off, offline on: first, always)
from genba.errors import GenbaError, MissingExtraError
from genba.roles import missing_extra, require_role

#: Modules with a ``register(subparsers)`` function, in the order shown by --help.
COMMAND_MODULES = (
    "export.cli", "genba.commands", "server.cli", "edge_agent.cli", "gui.cli", "genba.package_commands",
    "genba.demo.cli",
)  # fmt: skip
USAGE_EXIT = 2


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line naming the problem (exit code 2)."""

    def error(self, message: str) -> NoReturn:
        self.exit(USAGE_EXIT, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def build_parser(command_modules: Sequence[str] = COMMAND_MODULES) -> argparse.ArgumentParser:
    """The ``genba`` parser with the subcommands of ``command_modules`` (the operator app's desktop
    program registers ``gui.cli`` alone: packaging/gui/genba_gui.py)."""
    parser = OneLineParser(
        prog="genba",
        description="Genba: export, ship, serve and improve models on the shop floor, offline.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=OneLineParser)
    subparsers.required = True
    for module_name in command_modules:
        importlib.import_module(module_name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None, command_modules: Sequence[str] = COMMAND_MODULES) -> int:
    parser = build_parser(command_modules)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    _quiet_libraries(args.verbose)
    name = " ".join(part for part in ("genba", args.command, getattr(args, "action", None)) if part)
    interrupted, previous = _watch_interrupts()
    try:
        require_role(name)
        try:
            return int(args.handler(args) or 0)
        except ImportError as error:
            hint = missing_extra(name, error)
            if hint is None:
                raise
            raise hint from error
    except MissingExtraError as error:
        print(error, file=sys.stderr)  # one line that names the command already
        return error.exit_code
    except GenbaError as error:
        if interrupted.is_set():
            # Ctrl-C reaches the whole process group: a child (an agent) it stopped may surface as
            # an error in a worker thread before the interrupt does. The user asked to stop.
            print(f"{name}: interrupted", file=sys.stderr)
            return 130
        print(f"{name}: error: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print(f"{name}: interrupted", file=sys.stderr)
        return 130
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)


def _quiet_libraries(verbose: bool) -> None:
    """Third-party progress chatter goes to the log only when asked for."""
    level = logging.INFO if verbose else logging.ERROR
    for name in ("optimum", "transformers", "torch.onnx", "onnxruntime", "sentence_transformers"):
        logging.getLogger(name).setLevel(level)
    import warnings

    if not verbose:
        warnings.filterwarnings("ignore")


def _watch_interrupts() -> tuple[threading.Event, Any]:
    """An event set when SIGINT arrives (the signal still raises KeyboardInterrupt as usual), and
    the handler it replaced, for the caller to put back."""
    interrupted = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        return interrupted, None  # signal handlers can only be installed from the main thread

    def on_interrupt(signum: int, frame: Any) -> None:
        interrupted.set()
        signal.default_int_handler(signum, frame)

    return interrupted, signal.signal(signal.SIGINT, on_interrupt)


if __name__ == "__main__":
    sys.exit(main())
