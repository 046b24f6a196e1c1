"""Fuzz reading JSONL input files (``genba.inputs.read_jsonl``: what ``genba predict`` reads).

Lines are changed records (types, paths such as ``../`` or absolute, long names), changed bytes,
deeply nested JSON or random bytes; the pictures they name sit beside the file.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import genba_fuzz_samples as samples
import genba_fuzzing as fuzzing
import pytest
from hypothesis import strategies as st

from genba.errors import InputFileError
from genba.inputs import read_jsonl

RECORDS = (
    {"text": "scratch on the housing surface", "label": "scratch", "group": "line-2"},
    {"text": "no dent found, part ok", "label": "ok"},
    {"image": "a.png", "label": "dent", "group": "night"},
    {"image": "pictures/b.jpg"},
)
PATHS = (
    "../a.png",
    "/etc/passwd",
    "pictures",
    "a.png\n",
    "x" * 5000,
    "pictures/" * 200 + "a.png",
    "a.png\x00",
)


def _line() -> st.SearchStrategy[bytes]:
    records = st.sampled_from(RECORDS)
    return st.one_of(
        records.map(lambda record: json.dumps(record).encode()),
        records.flatmap(fuzzing.mutated_json).map(lambda record: json.dumps(record).encode()),
        st.sampled_from(PATHS).map(lambda path: json.dumps({"image": path, "label": "ok"}).encode()),
        records.flatmap(lambda record: fuzzing.mutated_bytes(json.dumps(record).encode())),
        st.integers(10, 100_000).map(fuzzing.nested),
        st.binary(max_size=64),
    )


@dataclass(frozen=True)
class JsonlCase:
    lines: list[bytes]
    separator: bytes
    require_labels: bool


def check(case: JsonlCase) -> None:
    with fuzzing.sandbox() as folder:
        (folder / "pictures").mkdir()
        (folder / "a.png").write_bytes(samples.picture("PNG", "RGB"))
        (folder / "pictures" / "b.jpg").write_bytes(samples.picture("JPEG", "RGB"))
        path = folder / "inputs.jsonl"
        path.write_bytes(case.separator.join(case.lines))
        fuzzing.expect_typed(lambda: read_jsonl(path, "input", case.require_labels), "read_jsonl")


TARGET = fuzzing.Target(
    "jsonl_inputs",
    st.builds(
        JsonlCase,
        st.lists(_line(), min_size=0, max_size=5),
        st.sampled_from((b"\n", b"\r\n", b"\x85", b"\n\n")),
        st.booleans(),
    ),
    check,
)


def test_reading_a_jsonl_file_answers_every_input_with_a_typed_error_or_examples() -> None:
    fuzzing.check_target(TARGET)


# ---------------------------------------------------------------------------- found by fuzzing


def _error(line: bytes) -> str:
    case = JsonlCase([line], b"\n", False)
    check(case)
    with fuzzing.sandbox() as folder:
        (folder / "inputs.jsonl").write_bytes(line)
        with pytest.raises(InputFileError) as caught:
            read_jsonl(folder / "inputs.jsonl")
    return str(caught.value)


def test_an_image_name_with_a_line_break_is_named_on_one_line() -> None:
    """Was a two-line message: the image path printed with its line break."""
    message = _error(b'{"image": "a.png\\n", "label": "ok"}')
    assert "a.png\\n" in message and "\n" not in message and message.endswith("relative to the file)")


def test_an_image_name_too_long_for_the_file_system_is_not_found() -> None:
    """Was OSError(ENAMETOOLONG) from checking whether the picture exists."""
    assert "line 1: image" in _error(json.dumps({"image": "x" * 5000, "label": "ok"}).encode())


def test_json_nested_too_deeply_is_refused_with_its_line() -> None:
    """Was RecursionError from the JSON parser."""
    assert _error(fuzzing.nested(100_000)).endswith("line 1: not valid JSON (nested too deeply)")


def test_the_unchanged_records_are_read() -> None:
    """The fuzzing starts from lines that read: the property is not met by refusing all."""
    with fuzzing.sandbox() as folder:
        (folder / "pictures").mkdir()
        (folder / "a.png").write_bytes(samples.picture("PNG", "RGB"))
        (folder / "pictures" / "b.jpg").write_bytes(samples.picture("JPEG", "RGB"))
        (folder / "inputs.jsonl").write_text("\n".join(json.dumps(record) for record in RECORDS))
        examples = read_jsonl(folder / "inputs.jsonl")
    assert [example.label for example in examples] == ["scratch", "ok", "dent", None]
