from __future__ import annotations

from pathlib import Path

import pytest

from genba.errors import InputFileError
from genba.inputs import read_jsonl


def test_text_and_image_lines_are_read(tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl"
    path.write_text('{"text": "dent", "label": "dent", "group": "line-1"}\n\n{"image": "a.png"}\n')
    (tmp_path / "a.png").write_bytes(b"")  # read_jsonl checks it exists; decoding comes later
    first, second = read_jsonl(path)
    assert (first.text, first.label, first.group) == ("dent", "dent", "line-1")
    assert second.image == tmp_path / "a.png" and second.label is None


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json}\n", "line 1: not valid JSON"),
        ('["text"]\n', "expected a JSON object"),
        ('{"label": "x"}\n', "exactly one of"),
        ('{"text": "a", "image": "b"}\n', "exactly one of"),
        ('{"text": 3}\n', "'text' must be a string"),
        ("\n\n", "holds no examples"),
    ],
)
def test_bad_lines_name_the_file_and_line(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(content)
    with pytest.raises(InputFileError, match=message):
        read_jsonl(path, "eval")


def test_eval_data_must_be_labelled(tmp_path: Path) -> None:
    path = tmp_path / "eval.jsonl"
    path.write_text('{"text": "ok", "label": "ok"}\n{"text": "no label"}\n')
    with pytest.raises(InputFileError, match="line 2: has no 'label'"):
        read_jsonl(path, "eval", require_labels=True)


def test_missing_and_binary_files_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(InputFileError, match="not found"):
        read_jsonl(tmp_path / "missing.jsonl", "calibration")
    binary = tmp_path / "bin.jsonl"
    binary.write_bytes(b"\xff\xfe\x00\x81")
    with pytest.raises(InputFileError, match="cannot be read"):
        read_jsonl(binary, "calibration")
