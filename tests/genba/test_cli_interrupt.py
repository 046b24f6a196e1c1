"""Ctrl-C wins over the errors it causes: the CLI reports an interrupt as one (exit 130)."""

from __future__ import annotations

import argparse
import signal

import pytest

from genba import cli
from genba.errors import AgentUnavailableError


def test_an_error_after_ctrl_c_is_reported_as_the_interrupt(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def command(args: argparse.Namespace) -> int:
        try:
            signal.raise_signal(signal.SIGINT)  # Ctrl-C, swallowed on the way (a library's cleanup)
        except KeyboardInterrupt:
            pass
        raise AgentUnavailableError("the agent for site-a is not running")  # the child it stopped

    parser = cli.build_parser()
    monkeypatch.setattr(cli, "build_parser", lambda *_modules: _with_handler(parser, command))
    previous = signal.getsignal(signal.SIGINT)
    try:
        assert cli.main(["bundle", "info", "x"]) == 130
    finally:
        signal.signal(signal.SIGINT, previous)
    assert "interrupted" in capsys.readouterr().err


def test_the_same_error_without_ctrl_c_keeps_its_exit_code(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def command(args: argparse.Namespace) -> int:
        raise AgentUnavailableError("the agent for site-a is not running")

    parser = cli.build_parser()
    monkeypatch.setattr(cli, "build_parser", lambda *_modules: _with_handler(parser, command))
    previous = signal.getsignal(signal.SIGINT)
    try:
        assert cli.main(["bundle", "info", "x"]) == AgentUnavailableError.exit_code
    finally:
        signal.signal(signal.SIGINT, previous)
    assert "not running" in capsys.readouterr().err


def _with_handler(parser: argparse.ArgumentParser, handler: object) -> argparse.ArgumentParser:
    original = parser.parse_args

    def parse(argv: object = None) -> argparse.Namespace:
        args = original(argv)  # type: ignore[arg-type]
        args.handler = handler
        return args

    parser.parse_args = parse  # type: ignore[method-assign, assignment]
    return parser
