"""The fuzzing harness shared by tests/fuzz (small budget, in ``make test``) and bench/fuzz.py.

A target is a hypothesis strategy of inputs and a check that feeds one input to a reader. The
property every check holds a reader to: it succeeds, or it raises a ``GenbaError`` whose message
is one non-empty line. Anything else (a ``KeyError``, an ``OSError``, a Pillow error, a
``RecursionError``, an input that runs past ``INPUT_TIMEOUT_S``) is a :class:`Crash`.

The budget comes from ``GENBA_FUZZ_EXAMPLES`` (default small); runs are derandomized, so the
suite tries the same inputs on every machine and a failure reproduces.

Loaded by path (tests/fuzz/conftest.py registers it as ``genba_fuzzing``): tests/ is no package.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import shutil
import signal
import struct
import tempfile
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

from genba.errors import GenbaError

EXAMPLES_VARIABLE = "GENBA_FUZZ_EXAMPLES"
DEFAULT_EXAMPLES = 100
#: One input taking longer than this is a hang (a reader stuck on a FIFO, a decode that never ends).
INPUT_TIMEOUT_S = 5.0
T = TypeVar("T")


class Crash(AssertionError):
    """A reader broke the property: an untyped exception, a multi-line message, a hang, a stray write."""


class Hang(Exception):
    """One input ran past ``INPUT_TIMEOUT_S``."""


@dataclass(frozen=True)
class Target:
    """One reader to fuzz: ``inputs`` draws a case, ``check(case)`` feeds it and raises Crash."""

    name: str
    inputs: st.SearchStrategy[Any]
    check: Callable[[Any], None]


@dataclass
class TargetResult:
    inputs: int = 0
    crashes: int = 0
    kinds: dict[str, int] = field(default_factory=dict)  # crash signature -> inputs that hit it
    first: dict[str, str] = field(default_factory=dict)  # crash signature -> its first input and message
    accepted: int = 0  # reader calls that succeeded: the inputs reach past the first check
    refused: int = 0  # reader calls that raised a typed one-line error


def examples_from_environment() -> int:
    return int(os.environ.get(EXAMPLES_VARIABLE, DEFAULT_EXAMPLES))


def fuzz_settings(examples: int) -> settings:
    return settings(
        max_examples=examples,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
        print_blob=False,
    )


def check_target(target: Target, examples: int | None = None) -> None:
    """The test form: hypothesis shrinks the first crash and reports its input."""

    @fuzz_settings(examples or examples_from_environment())
    @given(target.inputs)
    def probe(case: Any) -> None:
        note(f"input: {case!r}"[:4000])
        target.check(case)

    probe()


def run_target(target: Target, examples: int) -> TargetResult:
    """The runner's form: every input is tried, every crash counted (not shrunk)."""
    result = TargetResult()
    before = dict(OUTCOMES)

    @fuzz_settings(examples)
    @given(target.inputs)
    def probe(case: Any) -> None:
        result.inputs += 1
        try:
            target.check(case)
        except Crash as crash:
            result.crashes += 1
            kind = _signature(crash)
            result.kinds[kind] = result.kinds.get(kind, 0) + 1
            result.first.setdefault(kind, f"{crash} <- {case!r}"[:3000])

    probe()
    result.accepted = OUTCOMES["accepted"] - before["accepted"]
    result.refused = OUTCOMES["refused"] - before["refused"]
    return result


def _signature(crash: Crash) -> str:
    cause = crash.__cause__
    if cause is None:
        return str(crash).split(":")[0]
    frame = traceback.extract_tb(cause.__traceback__)[-1]
    return f"{type(cause).__name__} at {Path(frame.filename).name}:{frame.lineno}"


# ---------------------------------------------------------------------------- the property

#: How the reader calls of this process ended, for the runner's report.
OUTCOMES = {"accepted": 0, "refused": 0}


def expect_typed(call: Callable[[], T], what: str) -> T | None:
    """``call()``'s result, or None when it raised a typed one-line error; a Crash otherwise."""
    try:
        with _time_limit(INPUT_TIMEOUT_S):
            answer = call()
        OUTCOMES["accepted"] += 1
        return answer
    except GenbaError as error:
        message = str(error)
        if not message.strip() or "\n" in message or "\r" in message:
            raise Crash(
                f"{what}: {type(error).__name__} with a message that is not one line: {message!r}"
            ) from error
        OUTCOMES["refused"] += 1
        return None
    except Crash:
        raise
    except BaseException as exc:
        if isinstance(exc, KeyboardInterrupt):
            raise
        raise Crash(f"{what}: {type(exc).__name__}: {exc!r}"[:2000]) from exc


@contextlib.contextmanager
def _time_limit(seconds: float) -> Iterator[None]:
    def _expired(signum: int, frame: Any) -> None:
        raise Hang(f"no answer within {seconds} s")

    previous = signal.signal(signal.SIGALRM, _expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def tree(root: Path) -> dict[str, bytes | str]:
    """Every entry under ``root``: files by content, links by target, folders as ``<dir>``."""
    found: dict[str, bytes | str] = {}
    for path in sorted(root.rglob("*")):
        name = path.relative_to(root).as_posix()
        if path.is_symlink():
            found[name] = "-> " + os.readlink(path)
        elif path.is_dir():
            found[name] = "<dir>"
        elif path.is_file():
            found[name] = path.read_bytes()
        else:
            found[name] = "<special>"
    return found


def expect_only(root: Path, allowed: set[str], what: str) -> None:
    """Nothing under ``root`` but the top-level entries ``allowed`` (and what is inside them)."""
    stray = sorted(p.name for p in root.iterdir() if p.name not in allowed)
    if stray:
        raise Crash(f"{what}: left {stray} behind in {root} (only {sorted(allowed)} may be there)")


# ---------------------------------------------------------------------------- scratch folders

_SCRATCH: list[Path] = []


def scratch_root() -> Path:
    """One folder per process for samples and sandboxes, removed at exit."""
    if not _SCRATCH:
        root = Path(tempfile.mkdtemp(prefix="genba-fuzz-"))
        atexit.register(shutil.rmtree, root, True)
        _SCRATCH.append(root)
    return _SCRATCH[0]


@contextlib.contextmanager
def sandbox() -> Iterator[Path]:
    """A fresh folder for one input; ``tempfile`` writes inside it too, so strays are seen."""
    root = Path(tempfile.mkdtemp(prefix="case-", dir=scratch_root()))
    scratch = root / "tmp"
    scratch.mkdir()
    previous = tempfile.tempdir
    tempfile.tempdir = str(scratch)
    try:
        yield root
    finally:
        tempfile.tempdir = previous
        shutil.rmtree(root, ignore_errors=True)


# ---------------------------------------------------------------------------- byte mutations

INTERESTING = (0, 1, 0x7F, 0x80, 0xFF, 0x7FFF, 0xFFFF, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 15000)


@st.composite
def mutated_bytes(draw: st.DrawFn, original: bytes, max_edits: int = 4) -> bytes:
    """``original`` with a few edits: flipped bits, cut, inserted, deleted or overwritten bytes."""
    data = bytearray(original)
    for _ in range(draw(st.integers(1, max_edits))):
        edit = draw(st.sampled_from(("flip", "truncate", "insert", "delete", "overwrite", "integer")))
        at = draw(st.integers(0, len(data)))
        if edit == "flip" and data:
            at = min(at, len(data) - 1)
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif edit == "truncate":
            del data[at:]
        elif edit == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=64))
        elif edit == "delete":
            del data[at : at + draw(st.integers(1, 64))]
        elif edit == "overwrite":
            chunk = draw(st.binary(min_size=1, max_size=16))
            data[at : at + len(chunk)] = chunk
        elif edit == "integer":
            value = draw(st.sampled_from(INTERESTING))
            packed = struct.pack(draw(st.sampled_from((">I", "<I"))), value)
            data[at : at + 4] = packed
    return bytes(data)


def nested(depth: int, opener: bytes = b"[") -> bytes:
    """JSON nested ``depth`` deep: a parser that recurses runs out of stack."""
    closer = b"]" if opener == b"[" else b"}"
    inner = opener * depth if opener == b"[" else b'{"a":' * depth
    return inner + b"1" + closer * depth


# ---------------------------------------------------------------------------- JSON mutations

JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
    | st.sampled_from(("", "../x", "/etc/passwd", "a\nb", "\x00", "NaN", "-1", "1e999", "\ud800"))
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=6,
)


def json_paths(document: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path to a value inside ``document`` (dict keys and list indexes)."""
    paths = [prefix]
    if isinstance(document, dict):
        for key, value in document.items():
            paths += json_paths(value, (*prefix, key))
    elif isinstance(document, list):
        for index, value in enumerate(document):
            paths += json_paths(value, (*prefix, index))
    return paths


@st.composite
def mutated_json(draw: st.DrawFn, original: Any, max_edits: int = 3) -> Any:
    """A deep copy of ``original`` with values replaced, deleted, retyped or keys added."""
    document = json.loads(json.dumps(original))
    for _ in range(draw(st.integers(1, max_edits))):
        path = draw(st.sampled_from(json_paths(document)))
        document = _edit(draw, document, path)
    return document


def _edit(draw: st.DrawFn, document: Any, path: tuple[Any, ...]) -> Any:
    edit = draw(st.sampled_from(("replace", "delete", "add", "wrap", "retype")))
    if not path:
        return draw(JSON_VALUES) if edit == "replace" else document
    parent = document
    for step in path[:-1]:
        parent = parent[step]
    key, value = path[-1], parent[path[-1]]
    if edit == "delete":
        del parent[key]
    elif edit == "add" and isinstance(value, dict):
        value[draw(st.text(max_size=8))] = draw(JSON_VALUES)
    elif edit == "wrap":
        parent[key] = [value]
    elif edit == "retype":
        parent[key] = draw(st.sampled_from((str(value), None, [], {}, True, -1, 2**64, 0.5)))
    else:
        parent[key] = draw(JSON_VALUES)
    return document
