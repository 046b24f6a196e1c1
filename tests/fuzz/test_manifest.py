"""Fuzz the manifest parser: ``Manifest.from_json`` on changed manifests, ``read_manifest`` on bytes.

A manifest the parser accepts must be written back exactly as read (what signatures rely on).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import genba_fuzz_samples as samples
import genba_fuzzing as fuzzing
import pytest
from hypothesis import strategies as st

from genba import bundle
from genba.errors import IntegrityError
from genba.manifest import Manifest


def _valid() -> dict[str, Any]:
    return dict(json.loads(samples.bundle_files()["manifest.json"]))


def _inputs() -> st.SearchStrategy[tuple[str, Any]]:
    valid = samples.bundle_files()["manifest.json"]
    return st.one_of(
        st.tuples(st.just("json"), fuzzing.mutated_json(_valid())),
        st.tuples(st.just("bytes"), fuzzing.mutated_bytes(valid)),
        st.tuples(st.just("bytes"), st.integers(10, 100_000).map(fuzzing.nested)),
        st.tuples(st.just("bytes"), st.sampled_from((b'{"format_version": NaN}', b"[]", b"", b"\xff\xfe"))),
        st.tuples(st.just("bytes"), st.binary(max_size=256)),
    )


def _parsed_as_written(document: Any) -> None:
    manifest = fuzzing.expect_typed(lambda: Manifest.from_json(document), "Manifest.from_json")
    if manifest is not None and manifest.to_json() != document:
        raise fuzzing.Crash("Manifest.from_json accepted a manifest that to_json does not write back as read")


def _as_bytes(document: Any) -> bytes:
    try:
        return bundle.canonical_bytes(document)
    except (TypeError, ValueError):  # not a mapping, or text with lone surrogates: not canonical
        return json.dumps(document).encode()


def _read(raw: bytes) -> None:
    with fuzzing.sandbox() as root:
        (root / bundle.MANIFEST_NAME).write_bytes(raw)
        fuzzing.expect_typed(lambda: bundle.read_manifest(Path(root)), "read_manifest")


def check(case: tuple[str, Any]) -> None:
    kind, value = case
    if kind == "json":
        if isinstance(value, dict):
            _parsed_as_written(value)
        _read(_as_bytes(value))
    else:
        _read(value)


TARGET = fuzzing.Target("manifest", _inputs(), check)


def test_the_manifest_parser_answers_every_input_with_a_typed_error_or_a_manifest() -> None:
    fuzzing.check_target(TARGET)


# ---------------------------------------------------------------------------- found by fuzzing


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(fuzzing.nested(100_000), id="nested 100,000 deep (was RecursionError)"),
        pytest.param(b'{"format_version": NaN}', id="NaN (was ValueError from the canonical check)"),
        pytest.param(b'{"model": {"name": "\\ud800"}}', id="lone surrogate (was UnicodeEncodeError)"),
    ],
)
def test_a_manifest_json_no_canonical_manifest_can_be_is_refused_as_damaged(raw: bytes) -> None:
    check(("bytes", raw))
    with fuzzing.sandbox() as root:
        (root / bundle.MANIFEST_NAME).write_bytes(raw)
        with pytest.raises(IntegrityError, match="manifest.json is corrupt|manifest.json was modified"):
            bundle.read_manifest(root)


def test_the_unchanged_manifest_parses_and_is_written_back_as_read() -> None:
    """The fuzzing starts from a manifest that parses: the property is not met by refusing all."""
    assert Manifest.from_json(_valid()).to_json() == _valid()
